//! The console's overview: what the office's schools sent, per day and per
//! school, with the reports' k-anonymity. The aggregation is pure functions
//! of merge inputs (one school, one node, one day each): the office's kept
//! inputs for the district ([`district`]), or a node's own days built the
//! same way for its school (the caller builds them, `web::admin::dashboard`).
//!
//! Per day, the blocked queries per category and per band are summed over
//! the inputs of that day and published with [`report::suppress_cells`]
//! (cells 1..k-1 hidden, with complementary suppression), each day and
//! each group on its own, as a one-day report would publish them. Keys
//! seen on some day of the period appear on every day (zero where there was
//! nothing), and every day of the period appears. Top blocked domains are
//! summed over the period and only those counted at least k times listed.
//!
//! Per school, beside its last report: its nodes' latest heartbeats
//! ([`super::heartbeat`]): whether the filter is up, the last policy fetch.

use super::district::{inputs, last_received};
use super::heartbeat::{self, Kept};
use super::ingest::ensure_schema;
use crate::stats::report::{self, Count, ListVersion, Report, TOP_DOMAINS, Tally};
use jiff::civil::Date;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// Longest period the overview answers for (days).
pub const MAX_DAYS: i64 = 366;

/// Days in the default period.
pub const DEFAULT_DAYS: i64 = 30;

/// The time zone of the office's "yesterday" (the daily send's heartbeat).
pub const OFFICE_TIMEZONE: &str = "Asia/Ho_Chi_Minh";

/// A heartbeat older than this says nothing of the filter now (the nodes
/// send one an hour).
pub const HEARTBEAT_FRESH_SECONDS: i64 = 2 * 3600;

/// Characters of a policy ETag shown (its quotes left out).
const ETAG_SHOWN: usize = 12;

/// One published number of one day: `count` is null when hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = DashboardCell)]
pub struct DayCell {
    /// Blocked queries, or null when hidden (between 1 and k-1, or hidden
    /// with such a cell by complementary suppression).
    pub count: Option<u64>,
    /// Category or band id.
    pub key: String,
    pub label: String,
}

/// Blocked queries of one local day per category and per band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = DashboardDay)]
pub struct DayCells {
    pub by_band: Vec<DayCell>,
    pub by_category: Vec<DayCell>,
    /// YYYY-MM-DD, the school's local date.
    pub date: String,
}

/// A blocked domain counted at least k times in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = DashboardDomain)]
pub struct DomainTotal {
    pub count: u64,
    pub domain: String,
}

/// A list version a school's latest input names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = DashboardListVersion)]
pub struct ListSummary {
    pub category: String,
    pub entries: u64,
    pub list: String,
    /// The first 12 hex digits of the list's SHA-256.
    pub sha256: String,
}

/// What the office knows of one school's reporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = DistrictSchool)]
pub struct SchoolStatus {
    /// A heartbeat came within the last 2 hours, and every node that sent
    /// one in that time said its filter is up (lists loaded, an upstream
    /// answering); false without a heartbeat (an older node, or none running).
    pub filter_up: bool,
    /// When the school's last heartbeat arrived (RFC 3339), or null.
    pub heartbeat_at: Option<String>,
    pub id: String,
    /// The last day received (the school's local date), or null.
    pub last_day: Option<String>,
    /// The last `[central]` policy fetch that worked on any of the school's
    /// nodes, as their heartbeats say (RFC 3339), or null.
    pub last_policy_fetch: Option<String>,
    /// When the last input arrived (RFC 3339), or null.
    pub last_received_at: Option<String>,
    /// The list versions of the school's latest input (every node's).
    pub list_versions: Vec<ListSummary>,
    pub name: String,
    /// Nodes (statistics databases) that sent for the school.
    pub nodes: usize,
    /// The first characters of the ETag of the policy that fetch got, or null.
    pub policy_etag: Option<String>,
    /// The last day received is yesterday or the day before (or later) in
    /// Asia/Ho_Chi_Minh: the daily send is the heartbeat; false for a
    /// school that stopped, or never sent.
    pub reporting: bool,
}

/// The district's overview of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct District {
    pub blocked_by_day: Vec<DayCells>,
    pub schools: Vec<SchoolStatus>,
    pub top_blocked_domains: Vec<DomainTotal>,
}

/// Why a period is refused; the text names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{name}: {value:?} is not a date (YYYY-MM-DD)")]
    BadDate { name: &'static str, value: String },
    #[error("to: {to} is before from: {from}")]
    Reversed { from: String, to: String },
    #[error("from, to: the period is at most {MAX_DAYS} days ({from} to {to} is {days})")]
    TooLong { from: String, to: String, days: i64 },
}

/// The period of `from` and `to` (each optional): by default the
/// [`DEFAULT_DAYS`] days ending `default_to`, or starting `from`, or ending `to`.
pub fn period(
    from: Option<&str>,
    to: Option<&str>,
    default_to: Date,
) -> Result<(Date, Date), PeriodError> {
    let parse = |name: &'static str, value: Option<&str>| -> Result<Option<Date>, PeriodError> {
        value
            .map(|v| {
                v.parse::<Date>().map_err(|_| PeriodError::BadDate {
                    name,
                    value: v.to_string(),
                })
            })
            .transpose()
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    let back = |d: Date| d.checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1));
    let ahead = |d: Date| d.checked_add(jiff::Span::new().days(DEFAULT_DAYS - 1));
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, ahead(f).unwrap_or(f).min(default_to.max(f))),
        (None, Some(t)) => (back(t).unwrap_or(t), t),
        (None, None) => (back(default_to).unwrap_or(default_to), default_to),
    };
    if to < from {
        return Err(PeriodError::Reversed {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let days = days_between(from, to);
    if days > MAX_DAYS {
        return Err(PeriodError::TooLong {
            from: from.to_string(),
            to: to.to_string(),
            days,
        });
    }
    Ok((from, to))
}

/// Days of `from..=to`.
fn days_between(from: Date, to: Date) -> i64 {
    from.until(to)
        .map_or(0, |span| i64::from(span.get_days()) + 1)
}

/// Each date of `from..=to`.
fn dates(from: Date, to: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        out.push(day);
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out
}

fn add(tally: &mut Tally, count: &Count) {
    match count.exact() {
        Some(n) => tally.n += n,
        None => tally.hidden = true,
    }
}

/// One group's cells of one day, published: suppression over the cells
/// with something in them (largest first, as a report orders them), then
/// every key of the period in key order, zero where the day had nothing.
fn publish_day(
    tallies: BTreeMap<String, Tally>,
    keys: &BTreeMap<String, String>,
    k: u64,
) -> Vec<DayCell> {
    let mut counted: Vec<(String, Tally)> = tallies
        .into_iter()
        .filter(|(_, t)| t.n > 0 || t.hidden)
        .collect();
    counted.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(&b.0)));
    let published: BTreeMap<String, Option<u64>> = report::suppress_cells(counted, k)
        .into_iter()
        .map(|cell| (cell.key, cell.count.exact()))
        .collect();
    keys.iter()
        .map(|(key, label)| DayCell {
            count: published.get(key).copied().unwrap_or(Some(0)),
            key: key.clone(),
            label: label.clone(),
        })
        .collect()
}

/// Blocked queries per day of `from..=to`, per category and per band,
/// summed over `reports` (merge inputs of one day each; an input is
/// counted on its `from` date) with k-anonymity applied to each day's cells.
pub fn blocked_by_day(reports: &[Report], from: Date, to: Date, k: u64) -> Vec<DayCells> {
    type Groups = (BTreeMap<String, Tally>, BTreeMap<String, Tally>);
    let mut days: BTreeMap<String, Groups> = dates(from, to)
        .into_iter()
        .map(|d| (d.to_string(), Groups::default()))
        .collect();
    let (mut categories, mut bands) = (BTreeMap::new(), BTreeMap::new());
    for report in reports {
        let Some((by_category, by_band)) = days.get_mut(&report.from) else {
            continue;
        };
        for (cells, tallies, labels) in [
            (&report.blocked_by_category, by_category, &mut categories),
            (&report.blocked_by_band, by_band, &mut bands),
        ] {
            for cell in cells {
                labels
                    .entry(cell.key.clone())
                    .or_insert_with(|| cell.label.clone());
                let tally = tallies.entry(cell.key.clone()).or_default();
                tally.label.clone_from(&cell.label);
                add(tally, &cell.count);
            }
        }
    }
    days.into_iter()
        .map(|(date, (by_category, by_band))| DayCells {
            by_band: publish_day(by_band, &bands, k),
            by_category: publish_day(by_category, &categories, k),
            date,
        })
        .collect()
}

/// The domains blocked at least `k` times over `reports`, most first, at
/// most [`TOP_DOMAINS`].
pub fn top_domains(reports: &[Report], k: u64) -> Vec<DomainTotal> {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for report in reports {
        for d in &report.top_blocked_domains {
            *sums.entry(&d.domain).or_default() += d.count;
        }
    }
    let mut top: Vec<DomainTotal> = sums
        .into_iter()
        .filter(|(_, n)| *n >= k)
        .map(|(domain, count)| DomainTotal {
            count,
            domain: domain.to_string(),
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
    top.truncate(TOP_DOMAINS);
    top
}

/// What one node's latest day named (`ingest_lists`), for a school's row:
/// the school's name as that day's input gave it and the list versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestDay {
    pub school: String,
    pub name: String,
    pub lists: Vec<ListVersion>,
}

/// Each school's latest day, one row per node that sent that day, in
/// (school, node) order: one query over `ingest_lists` (each node's latest
/// day) and the names of those days, whatever the number of schools.
pub fn latest_days(db: &Connection) -> rusqlite::Result<Vec<LatestDay>> {
    ensure_schema(db)?;
    let mut statement = db.prepare_cached(
        "WITH latest AS (
             SELECT s.school AS school, MAX(l.day) AS day
             FROM ingest_lists l JOIN ingest_sources s ON s.id = l.source
             GROUP BY s.school
         )
         SELECT s.school, d.school_name, l.lists
         FROM ingest_lists l
         JOIN ingest_sources s ON s.id = l.source
         JOIN latest ON latest.school = s.school AND latest.day = l.day
         LEFT JOIN ingest_days d ON d.source = l.source AND d.day = l.day
         ORDER BY s.school, s.node",
    )?;
    let rows = statement.query_map([], |row| {
        let school: String = row.get(0)?;
        let lists: String = row.get(2)?;
        Ok(LatestDay {
            name: row
                .get::<_, Option<String>>(1)?
                .unwrap_or_else(|| school.clone()),
            school,
            lists: serde_json::from_str(&lists).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// What the office received, for [`school_statuses`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// [`last_received`]'s rows: (school, node, last day, received at).
    pub days: &'a [(String, String, String, i64)],
    /// Each school's last day ([`latest_days`]).
    pub latest: &'a [LatestDay],
    /// Every node's latest heartbeat ([`heartbeat::latest`]).
    pub heartbeats: &'a [Kept],
}

/// The RFC 3339 text of a Unix time.
fn rfc3339(seconds: i64) -> Option<String> {
    jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

/// Every school: those of `known` (id, name: the office's configuration),
/// then any other that sent something, with what `received` says of it. A
/// school reports when its last day is yesterday or the day before
/// `today`; its filter is up when its heartbeats of the last 2 hours
/// before `now` (Unix time) say so.
pub fn school_statuses(
    known: &[(String, String)],
    received: Received,
    today: Date,
    now: i64,
) -> Vec<SchoolStatus> {
    let Received {
        days: received,
        latest,
        heartbeats,
    } = received;
    let mut ids: Vec<String> = known.iter().map(|(id, _)| id.clone()).collect();
    let others: BTreeSet<&String> = received
        .iter()
        .map(|(school, ..)| school)
        .chain(heartbeats.iter().map(|h| &h.school))
        .collect();
    for id in others {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let oldest_reporting = today
        .checked_sub(jiff::Span::new().days(2))
        .unwrap_or(today);
    ids.into_iter()
        .map(|id| {
            let rows: Vec<_> = received.iter().filter(|r| r.0 == id).collect();
            let last_day = rows.iter().map(|r| r.2.clone()).max();
            let last_received_at = rows.iter().map(|r| r.3).max().and_then(rfc3339);
            let days: Vec<&LatestDay> = latest.iter().filter(|d| d.school == id).collect();
            let mut list_versions: Vec<ListSummary> = Vec::new();
            for list in days.iter().flat_map(|d| &d.lists) {
                let summary = ListSummary {
                    category: list.category.clone(),
                    entries: list.entries,
                    list: list.list.clone(),
                    sha256: list.sha256.chars().take(12).collect(),
                };
                if !list_versions.contains(&summary) {
                    list_versions.push(summary);
                }
            }
            let name = known
                .iter()
                .find(|(known, _)| *known == id)
                .map(|(_, name)| name.clone())
                .or_else(|| days.first().map(|d| d.name.clone()))
                .unwrap_or_else(|| id.clone());
            let reporting = last_day
                .as_deref()
                .and_then(|d| d.parse::<Date>().ok())
                .is_some_and(|d| d >= oldest_reporting);
            let beats: Vec<&Kept> = heartbeats.iter().filter(|h| h.school == id).collect();
            let fresh: Vec<&&Kept> = beats
                .iter()
                .filter(|h| now - h.received_at <= HEARTBEAT_FRESH_SECONDS)
                .collect();
            let fetched = beats
                .iter()
                .filter(|h| h.last_policy_fetch.is_some())
                .max_by_key(|h| h.last_policy_fetch);
            SchoolStatus {
                filter_up: !fresh.is_empty() && fresh.iter().all(|h| h.filter_up),
                heartbeat_at: beats.iter().map(|h| h.received_at).max().and_then(rfc3339),
                id,
                last_day,
                last_policy_fetch: fetched.and_then(|h| h.last_policy_fetch).and_then(rfc3339),
                last_received_at,
                list_versions,
                name,
                nodes: rows.len(),
                policy_etag: fetched.and_then(|h| h.policy_etag.as_deref()).map(|etag| {
                    etag.trim_start_matches("W/")
                        .trim_matches('"')
                        .chars()
                        .take(ETAG_SHOWN)
                        .collect()
                }),
                reporting,
            }
        })
        .collect()
}

/// The district's overview of `from..=to` from the office's kept inputs
/// and heartbeats: every school (`known` and any that sent), the days, the
/// top domains. `today` is the office's date, `now` its Unix time.
pub fn district(
    db: &Connection,
    known: &[(String, String)],
    from: Date,
    to: Date,
    k: u64,
    today: Date,
    now: i64,
) -> Result<District, rusqlite::Error> {
    let days = last_received(db)?;
    let latest = latest_days(db)?;
    let heartbeats = heartbeat::latest(db)?;
    let period = inputs(db, &from.to_string(), &to.to_string(), None)?;
    let received = Received {
        days: &days,
        latest: &latest,
        heartbeats: &heartbeats,
    };
    Ok(District {
        blocked_by_day: blocked_by_day(&period, from, to, k),
        schools: school_statuses(known, received, today, now),
        top_blocked_domains: top_domains(&period, k),
    })
}

/// Today's date in the office's time zone ([`OFFICE_TIMEZONE`]).
pub fn office_today() -> Date {
    let tz = jiff::tz::TimeZone::get(OFFICE_TIMEZONE).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned_datetime(tz).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::report::{Cell, DomainCount, ListVersion, REPORT_FORMAT, SchoolRef, Stage};

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn cells(pairs: &[(&str, u64)]) -> Vec<Cell> {
        pairs
            .iter()
            .map(|(key, n)| Cell {
                key: key.to_string(),
                label: format!("label {key}"),
                count: Count::Exact(*n),
            })
            .collect()
    }

    /// A merge input of `school` for `day`.
    fn input(
        school: &str,
        day: &str,
        categories: &[(&str, u64)],
        bands: &[(&str, u64)],
        domains: &[(&str, u64)],
    ) -> Report {
        Report {
            format: REPORT_FORMAT.into(),
            stage: Stage::MergeInput,
            schools: vec![SchoolRef {
                id: school.into(),
                name: format!("Trường {school}"),
            }],
            from: day.into(),
            to: day.into(),
            timezone: OFFICE_TIMEZONE.into(),
            k_anonymity: 10,
            generated_at: String::new(),
            totals: Default::default(),
            blocked_by_category: cells(categories),
            blocked_by_band: cells(bands),
            daily: Vec::new(),
            top_blocked_domains: domains
                .iter()
                .map(|(d, n)| DomainCount {
                    domain: d.to_string(),
                    count: *n,
                })
                .collect(),
            reviews: Default::default(),
            lists: vec![ListVersion {
                category: "gambling".into(),
                list: "lists/gambling.txt".into(),
                entries: 2,
                sha256: "0123456789abcdef0123".into(),
                loaded_at: String::new(),
            }],
            takedowns: Vec::new(),
            sources: Vec::new(),
        }
    }

    fn counts(day: &DayCells) -> Vec<(&str, Option<u64>)> {
        day.by_category
            .iter()
            .map(|c| (c.key.as_str(), c.count))
            .collect()
    }

    #[test]
    fn each_day_is_summed_over_schools_and_published_with_k() {
        let reports = [
            input(
                "s1",
                "2026-12-01",
                &[("gambling", 40), ("social", 6)],
                &[("young", 40), ("teen", 6)],
                &[],
            ),
            input(
                "s2",
                "2026-12-01",
                &[("gambling", 25), ("social", 6)],
                &[("young", 25), ("teen", 6)],
                &[],
            ),
            input(
                "s1",
                "2026-12-03",
                &[("gambling", 40), ("deny_list", 30), ("social", 3)],
                &[("young", 70), ("teen", 3)],
                &[],
            ),
            // Outside the period: not counted.
            input("s1", "2026-11-30", &[("gambling", 99)], &[], &[]),
        ];
        let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-04"), 10);
        assert_eq!(
            days.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(),
            ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"],
            "every day of the period"
        );
        // 6 + 6 is shown: k applies to the district's sum, not to each school.
        assert_eq!(
            counts(&days[0]),
            [
                ("deny_list", Some(0)),
                ("gambling", Some(65)),
                ("social", Some(12))
            ]
        );
        // A day without data is there, every key zero.
        assert_eq!(
            counts(&days[1]),
            [
                ("deny_list", Some(0)),
                ("gambling", Some(0)),
                ("social", Some(0))
            ]
        );
        // social 3 is hidden, and the smallest other cell with it
        // (complementary suppression), so 3 cannot be had from the total.
        assert_eq!(
            counts(&days[2]),
            [
                ("deny_list", None),
                ("gambling", Some(40)),
                ("social", None)
            ]
        );
        assert_eq!(days[2].by_category[1].label, "label gambling");
        let bands: Vec<_> = days[2]
            .by_band
            .iter()
            .map(|c| (c.key.as_str(), c.count))
            .collect();
        assert_eq!(bands, [("teen", None), ("young", None)], "two cells: both");
        assert!(days[3].by_band.iter().all(|c| c.count == Some(0)));
    }

    #[test]
    fn a_day_with_only_one_small_cell_hides_it_alone() {
        let reports = [input("s1", "2026-12-01", &[("social", 4)], &[], &[])];
        let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-01"), 10);
        assert_eq!(counts(&days[0]), [("social", None)]);
        // k = 1 hides nothing.
        let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-01"), 1);
        assert_eq!(counts(&days[0]), [("social", Some(4))]);
    }

    #[test]
    fn top_domains_are_summed_and_those_under_k_left_out() {
        let reports = [
            input(
                "s1",
                "2026-12-01",
                &[],
                &[],
                &[("casino.example", 8), ("bet.example", 4)],
            ),
            input("s2", "2026-12-02", &[], &[], &[("casino.example", 5)]),
            input("s2", "2026-12-02", &[], &[], &[("deny.example", 10)]),
        ];
        let top = top_domains(&reports, 10);
        assert_eq!(
            top.iter()
                .map(|d| (d.domain.as_str(), d.count))
                .collect::<Vec<_>>(),
            [("casino.example", 13), ("deny.example", 10)]
        );
        let many: Vec<Report> = (0..30)
            .map(|i| {
                input(
                    "s1",
                    "2026-12-01",
                    &[],
                    &[],
                    &[(&format!("d{i:02}.example"), 50 + i)],
                )
            })
            .collect();
        let top = top_domains(&many, 10);
        assert_eq!(top.len(), TOP_DOMAINS);
        assert_eq!(top[0].domain, "d29.example");
    }

    #[test]
    fn schools_without_inputs_are_listed_as_not_reporting() {
        let known = [
            ("s1".to_string(), "Trường Một".to_string()),
            ("s3".to_string(), "Trường Ba".to_string()),
        ];
        let at = 1_796_000_000;
        let received = [
            ("s1".into(), "node-a".into(), "2026-12-06".into(), at),
            ("s1".into(), "node-b".into(), "2026-12-05".into(), at + 60),
            ("s2".into(), "node-c".into(), "2026-12-04".into(), at),
        ];
        let latest: Vec<LatestDay> = [
            input("s1", "2026-12-06", &[], &[], &[]),
            input("s2", "2026-12-04", &[], &[], &[]),
        ]
        .into_iter()
        .map(|r| LatestDay {
            school: r.schools[0].id.clone(),
            name: r.schools[0].name.clone(),
            lists: r.lists,
        })
        .collect();
        let today = date("2026-12-07");
        let now = at + 86_400;
        let with = |heartbeats| Received {
            days: &received,
            latest: &latest,
            heartbeats,
        };
        let schools = school_statuses(&known, with(&[]), today, now);
        let ids: Vec<_> = schools.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            ["s1", "s3", "s2"],
            "the configured ones, then the others"
        );
        let s1 = &schools[0];
        assert_eq!(s1.name, "Trường Một");
        assert_eq!(s1.last_day.as_deref(), Some("2026-12-06"));
        assert_eq!(
            s1.last_received_at.as_deref(),
            Some(
                jiff::Timestamp::from_second(at + 60)
                    .unwrap()
                    .to_string()
                    .as_str()
            )
        );
        assert_eq!((s1.nodes, s1.reporting), (2, true));
        assert_eq!(s1.list_versions.len(), 1, "the same version once");
        assert_eq!(s1.list_versions[0].sha256, "0123456789ab");
        let s3 = &schools[1];
        assert_eq!(
            (s3.last_day.as_deref(), s3.nodes, s3.reporting),
            (None, 0, false)
        );
        assert!(s3.last_received_at.is_none() && s3.list_versions.is_empty());
        // s2's last day is three days ago: stopped; its name from its input.
        let s2 = &schools[2];
        assert_eq!((s2.name.as_str(), s2.reporting), ("Trường s2", false));
        // The day before yesterday still counts.
        let schools = school_statuses(&known, with(&[]), date("2026-12-06"), now);
        assert!(schools[2].reporting);
        // Without heartbeats (older nodes) the last report is still there.
        assert!(!s1.filter_up && s1.heartbeat_at.is_none() && s1.last_policy_fetch.is_none());

        let beat = |school: &str, node: &str, ago: i64, up: bool, fetched: Option<i64>| Kept {
            school: school.into(),
            node: node.into(),
            received_at: now - ago,
            started_at: now - 86_400,
            last_policy_fetch: fetched,
            version: "0.1.0".into(),
            filter_up: up,
            policy_etag: fetched.map(|t| format!("\"{t:x}-0123456789abcdef\"")),
            lists: 2,
        };
        let heartbeats = [
            // s1: node-a up now; node-b down, but three hours ago: stale.
            beat("s1", "node-a", 600, true, Some(now - 900)),
            beat("s1", "node-b", 3 * 3600, false, Some(now - 4 * 3600)),
            // s2: up, but its last heartbeat is three hours old.
            beat("s2", "node-c", 3 * 3600, true, None),
            // s4: heartbeats, no day sent yet.
            beat("s4", "node-d", 60, false, None),
        ];
        let schools = school_statuses(&known, with(&heartbeats), today, now);
        let ids: Vec<_> = schools.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s3", "s2", "s4"]);
        let s1 = &schools[0];
        assert!(s1.filter_up, "the stale heartbeat of node-b does not count");
        assert_eq!(s1.heartbeat_at, rfc3339(now - 600));
        assert_eq!(s1.last_policy_fetch, rfc3339(now - 900), "the latest fetch");
        assert_eq!(
            s1.policy_etag,
            Some(format!("{:x}-012", now - 900)),
            "12 characters, no quotes"
        );
        assert_eq!(s1.last_day.as_deref(), Some("2026-12-06"));
        assert!(!schools[1].filter_up, "s3: no heartbeat");
        assert!(!schools[2].filter_up, "s2: none within 2 hours");
        assert_eq!(schools[2].heartbeat_at, rfc3339(now - 3 * 3600));
        let s4 = &schools[3];
        assert_eq!(
            (s4.filter_up, s4.nodes, s4.last_day.as_deref()),
            (false, 0, None)
        );
        assert!(s4.heartbeat_at.is_some());
        // One fresh heartbeat saying down makes the school's filter down.
        let heartbeats = [
            beat("s1", "node-a", 600, true, None),
            beat("s1", "node-b", 60, false, None),
        ];
        let schools = school_statuses(&known, with(&heartbeats), today, now);
        assert!(!schools[0].filter_up);
    }

    #[test]
    fn latest_days_are_each_schools_last_day_per_node_in_one_query() {
        let db = Connection::open_in_memory().unwrap();
        ensure_schema(&db).unwrap();
        let list = |sha: &str| {
            serde_json::to_string(&[ListVersion {
                category: "gambling".into(),
                list: "lists/gambling.txt".into(),
                entries: 2,
                sha256: sha.into(),
                loaded_at: String::new(),
            }])
            .unwrap()
        };
        // s1: node-a and node-b sent day 20; node-c stopped at day 18.
        // s2: one node, day 19, renamed since day 10.
        for (id, school, node, day, name, sha) in [
            (1, "s1", "node-a", 20, "Trường Một", "aaaa"),
            (2, "s1", "node-b", 20, "Trường Một", "bbbb"),
            (3, "s1", "node-c", 18, "Trường Một (cũ)", "cccc"),
            (4, "s2", "node-d", 19, "Trường Hai", "dddd"),
        ] {
            db.execute(
                "INSERT INTO ingest_sources (id, school, node) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, school, node],
            )
            .unwrap();
            for (d, n) in [(day, name), (10, "Tên cũ")] {
                db.execute(
                    "INSERT INTO ingest_days (source, day, received_at, sha256, school_name, timezone,
                         k, queries, allowed, blocked, safe_search, reviews)
                     VALUES (?1, ?2, 0, '', ?3, 'UTC', 10, 0, 0, 0, 0, '{}')",
                    rusqlite::params![id, d, n],
                )
                .unwrap();
            }
            db.execute(
                "INSERT INTO ingest_lists (source, day, lists, takedowns) VALUES (?1, ?2, ?3, '[]')",
                rusqlite::params![id, day, list(sha)],
            )
            .unwrap();
        }
        let latest = latest_days(&db).unwrap();
        let got: Vec<(&str, &str, &str)> = latest
            .iter()
            .map(|d| {
                (
                    d.school.as_str(),
                    d.name.as_str(),
                    d.lists[0].sha256.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s1", "Trường Một", "aaaa"),
                ("s1", "Trường Một", "bbbb"),
                ("s2", "Trường Hai", "dddd"),
            ],
            "node-c's older day is not the school's latest"
        );
    }

    #[test]
    fn periods_default_to_thirty_days_and_errors_name_the_parameter() {
        let today = date("2026-12-07");
        assert_eq!(period(None, None, today), Ok((date("2026-11-08"), today)));
        assert_eq!(
            period(None, Some("2026-12-01"), today),
            Ok((date("2026-11-02"), date("2026-12-01")))
        );
        assert_eq!(
            period(Some("2026-12-01"), None, today),
            Ok((date("2026-12-01"), today))
        );
        let bad = period(Some("2026-13-01"), None, today).unwrap_err();
        assert!(bad.to_string().starts_with("from: "), "{bad}");
        let bad = period(None, Some("yesterday"), today).unwrap_err();
        assert!(bad.to_string().starts_with("to: "), "{bad}");
        let bad = period(Some("2026-12-05"), Some("2026-12-01"), today).unwrap_err();
        assert!(matches!(bad, PeriodError::Reversed { .. }), "{bad}");
        let bad = period(Some("2024-01-01"), Some("2026-01-01"), today).unwrap_err();
        assert!(bad.to_string().contains("at most 366 days"), "{bad}");
        assert!(period(Some("2025-01-01"), Some("2025-12-31"), today).is_ok());
    }
}
