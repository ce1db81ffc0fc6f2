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
mod tests;
