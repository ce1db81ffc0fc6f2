//! Reports for the authorities: what was filtered at one school over a
//! period, as JSON, CSV or HTML (Vietnamese headings with English).
//!
//! Privacy (see `docs/privacy.md`): only aggregates; cells between 1 and
//! k-1 are shown as "<k", with complementary suppression so a hidden cell
//! cannot be recomputed from the published total; top blocked domains below
//! k are left out. Totals are exact, so district merges add up.
//!
//! Every report is made in two steps: the exact counts ([`Counts`]) are
//! gathered (from the database, or by summing merge inputs), then
//! [`publish`] applies k-anonymity to them. A merge input
//! ([`Stage::MergeInput`], `edudns report --for-merge`) skips the second
//! step, so that the replicas of one school can be summed exactly and the
//! sum published by the same code as a single node's report.

use crate::config::{Config, School};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One published number: exact, or hidden ("<10", "≥123" after a merge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Count {
    Exact(u64),
    Hidden(String),
}

impl Count {
    pub fn exact(&self) -> Option<u64> {
        match self {
            Count::Exact(n) => Some(*n),
            Count::Hidden(_) => None,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::Hidden(text) => f.write_str(text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub key: String,
    pub label: String,
    pub count: Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub date: String,
    pub queries: Count,
    pub blocked: Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCount {
    pub domain: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub queries: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub safe_search: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviews {
    pub requested: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVersion {
    pub category: String,
    pub list: String,
    pub entries: u64,
    pub sha256: String,
    pub loaded_at: String,
}

/// What a report is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// For publication: k-anonymity applied. Absent from the JSON, so
    /// reports made before merge inputs existed read (and verify) as final.
    #[default]
    Final,
    /// Input of `edudns report merge` only: exact counts, nothing hidden,
    /// every tracked blocked domain. Refused by everything that publishes.
    MergeInput,
}

impl Stage {
    pub fn is_final(&self) -> bool {
        *self == Stage::Final
    }
}

/// The rows a report counts: one school's statistics in one database
/// (identified by [`super::store::database_id`]) over a period. A merged
/// report lists the sources of all its inputs, so that the same rows are
/// never counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub database: String,
    pub school: String,
    pub from: String,
    pub to: String,
}

impl Source {
    /// Whether the two count some of the same rows.
    fn overlaps(&self, other: &Source) -> bool {
        self.database == other.database
            && self.school == other.school
            && self.from <= other.to
            && other.from <= self.to
    }
}

/// The report. Field order is the order of the JSON; the signature covers
/// its canonical (sorted-key) form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    /// `"merge-input"` for `--for-merge` reports; absent when final.
    #[serde(default, skip_serializing_if = "Stage::is_final")]
    pub stage: Stage,
    pub schools: Vec<SchoolRef>,
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub k_anonymity: u64,
    pub generated_at: String,
    pub totals: Totals,
    pub blocked_by_category: Vec<Cell>,
    pub blocked_by_band: Vec<Cell>,
    pub daily: Vec<Day>,
    pub top_blocked_domains: Vec<DomainCount>,
    pub reviews: Reviews,
    pub lists: Vec<ListVersion>,
    /// Takedown entries in force during the period and when they took effect.
    #[serde(default)]
    pub takedowns: Vec<TakedownInForce>,
    /// What was counted (absent from reports made before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakedownInForce {
    pub domain: String,
    pub reference: String,
    pub date: String,
    pub applied_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRef {
    pub id: String,
    pub name: String,
}

/// Format identifier written in every report.
pub const REPORT_FORMAT: &str = "edudns-report/1";

/// Top blocked domains a published report lists at most.
pub const TOP_DOMAINS: usize = 20;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown school {0:?}")]
    UnknownSchool(String),
    #[error("{0:?} is not a date: write YYYY-MM-DD")]
    BadDate(String),
    #[error("the period ends before it starts")]
    EmptyPeriod,
    #[error("statistics database: {0}")]
    Database(#[from] rusqlite::Error),
}

fn local_midnight(date: jiff::civil::Date, school: &School) -> i64 {
    date.to_datetime(jiff::civil::Time::midnight())
        .to_zoned_datetime(school.timezone.clone())
        .map_or(0, |z| z.timestamp().as_second())
}

fn local_date(unix: i64, school: &School) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned_datetime(school.timezone.clone())
                .date()
                .to_string()
        })
        .unwrap_or_default()
}

/// A number before publication: exact, or (`hidden`) only a lower bound
/// because a merge input had already hidden part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub label: String,
    pub n: u64,
    pub hidden: bool,
}

impl Tally {
    fn labelled(label: &str) -> Self {
        Tally {
            label: label.to_string(),
            ..Tally::default()
        }
    }

    fn add(&mut self, count: &Count) {
        match count.exact() {
            Some(n) => self.n += n,
            None => self.hidden = true,
        }
    }

    /// The number as it stands, without k-anonymity.
    fn count(&self) -> Count {
        if self.hidden {
            Count::Hidden(format!("≥{}", self.n))
        } else {
            Count::Exact(self.n)
        }
    }
}

/// The numbers of a report before k-anonymity, keyed by category, band,
/// date (queries, blocked) and listed domain.
#[derive(Debug, Clone, Default)]
struct Counts {
    by_category: BTreeMap<String, Tally>,
    by_band: BTreeMap<String, Tally>,
    daily: BTreeMap<String, (Tally, Tally)>,
    domains: BTreeMap<String, u64>,
}

/// Builds the published report of `school` for local dates `from..=to`
/// ([`build_stage`] with [`Stage::Final`]).
pub fn build(
    db: &Connection,
    config: &Config,
    school_id: &str,
    from: &str,
    to: &str,
    k: u64,
) -> Result<Report, ReportError> {
    build_stage(db, config, school_id, from, to, k, Stage::Final)
}

/// Builds the report of `school` for local dates `from..=to`: published,
/// or a merge input (`edudns report --for-merge`), which has the numbers a
/// published one would have, exact, and every tracked blocked domain; its
/// `k` is the one the merge applies to the sum.
pub fn build_stage(
    db: &Connection,
    config: &Config,
    school_id: &str,
    from: &str,
    to: &str,
    k: u64,
    stage: Stage,
) -> Result<Report, ReportError> {
    let school = config
        .schools
        .iter()
        .find(|s| s.id == school_id)
        .ok_or_else(|| ReportError::UnknownSchool(school_id.to_string()))?;
    let parse = |d: &str| {
        d.parse::<jiff::civil::Date>()
            .map_err(|_| ReportError::BadDate(d.to_string()))
    };
    let (from_date, to_date) = (parse(from)?, parse(to)?);
    if to_date < from_date {
        return Err(ReportError::EmptyPeriod);
    }
    let start = local_midnight(from_date, school);
    let end = local_midnight(to_date.tomorrow().unwrap_or(to_date), school);
    let (first_hour, last_hour) = (start.div_euclid(3600), (end - 1).div_euclid(3600));

    let category_label = |id: &str| {
        config
            .categories
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_string(), |c| c.name.clone())
    };
    let band_label = |id: &str| {
        config
            .bands
            .iter()
            .find(|b| b.id == id)
            .map_or_else(|| id.to_string(), |b| b.name.clone())
    };
    let mut totals = Totals::default();
    let mut counts = Counts::default();
    let mut statement = db.prepare(
        "SELECT hour, band, category, verdict, SUM(count) FROM hourly
         WHERE school = ?1 AND hour BETWEEN ?2 AND ?3 GROUP BY hour, band, category, verdict",
    )?;
    let rows = statement.query_map(params![school_id, first_hour, last_hour], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (hour, band, category, verdict, count) = row?;
        let count = count.max(0) as u64;
        let date = local_date(hour * 3600, school);
        let day = counts
            .daily
            .entry(date.clone())
            .or_insert_with(|| (Tally::labelled(&date), Tally::labelled(&date)));
        day.0.n += count;
        totals.queries += count;
        match verdict.as_str() {
            "blocked" => {
                totals.blocked += count;
                day.1.n += count;
                let label = category_label(&category);
                counts
                    .by_category
                    .entry(category)
                    .or_insert_with(|| Tally::labelled(&label))
                    .n += count;
                let label = band_label(&band);
                counts
                    .by_band
                    .entry(band)
                    .or_insert_with(|| Tally::labelled(&label))
                    .n += count;
            }
            "safe_search" => totals.safe_search += count,
            _ => totals.allowed += count,
        }
    }
    // Every day of the period appears, zero or not.
    let mut date = from_date;
    while date <= to_date {
        let text = date.to_string();
        counts
            .daily
            .entry(text.clone())
            .or_insert_with(|| (Tally::labelled(&text), Tally::labelled(&text)));
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }

    let mut top = db.prepare(
        "SELECT domain, SUM(count) FROM top_blocked WHERE school = ?1 AND day BETWEEN ?2 AND ?3
         GROUP BY domain",
    )?;
    for row in top.query_map(params![school_id, from, to], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })? {
        let (domain, n) = row?;
        counts.domains.insert(domain, n.max(0) as u64);
    }

    let mut reviews = Reviews::default();
    let mut statement = db.prepare("SELECT status, COUNT(*) FROM reviews WHERE school = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY status")?;
    for row in statement.query_map(params![school_id, from, to], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })? {
        let (status, n) = row?;
        let n = n.max(0) as u64;
        reviews.requested += n;
        match status.as_str() {
            "accepted" => reviews.accepted += n,
            "rejected" => reviews.rejected += n,
            _ => reviews.pending += n,
        }
    }

    let lists = list_versions(db, start, end)?;
    let mut statement = db.prepare("SELECT domain, reference, date, applied_at FROM takedowns WHERE applied_at < ?1 ORDER BY applied_at, domain")?;
    let takedowns = statement
        .query_map(params![end], |r| {
            Ok(TakedownInForce {
                domain: r.get(0)?,
                reference: r.get(1)?,
                date: r.get(2)?,
                applied_at: jiff::Timestamp::from_second(r.get(3)?)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let sources = super::store::database_id(db)
        .map(|database| Source {
            database,
            school: school.id.clone(),
            from: from.to_string(),
            to: to.to_string(),
        })
        .into_iter()
        .collect();
    let mut report = Report {
        format: REPORT_FORMAT.to_string(),
        stage,
        schools: vec![SchoolRef {
            id: school.id.clone(),
            name: school.name.clone(),
        }],
        from: from.to_string(),
        to: to.to_string(),
        timezone: school.timezone_name.clone(),
        k_anonymity: k,
        generated_at: jiff::Timestamp::now().to_string(),
        totals,
        blocked_by_category: Vec::new(),
        blocked_by_band: Vec::new(),
        daily: Vec::new(),
        top_blocked_domains: Vec::new(),
        reviews,
        lists,
        takedowns,
        sources,
    };
    publish(&mut report, counts);
    Ok(report)
}

/// Fills the numbers of `report` from `counts`: with k-anonymity
/// (`report.k_anonymity`) when the report is final, exact when it is a merge
/// input. [`build`] and [`merge`] both end here, so a merge of exact inputs
/// equals, cell for cell, the report one node would have made.
fn publish(report: &mut Report, counts: Counts) {
    let k = report.k_anonymity;
    let publishing = report.stage.is_final();
    // Categories and bands largest first, days in date order; the order
    // matters to complementary suppression (it hides the first smallest).
    let group = |tallies: BTreeMap<String, Tally>, largest_first: bool| -> Vec<Cell> {
        let mut cells: Vec<(String, Tally)> = tallies.into_iter().collect();
        if largest_first {
            cells.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(&b.0)));
        }
        if publishing {
            suppress_cells(cells, k)
        } else {
            cells
                .into_iter()
                .map(|(key, tally)| Cell {
                    key,
                    count: tally.count(),
                    label: tally.label,
                })
                .collect()
        }
    };
    report.blocked_by_category = group(counts.by_category, true);
    report.blocked_by_band = group(counts.by_band, true);
    let (queries, blocked): (BTreeMap<_, _>, BTreeMap<_, _>) = counts
        .daily
        .into_iter()
        .map(|(date, (q, b))| ((date.clone(), q), (date, b)))
        .unzip();
    report.daily = group(queries, false)
        .into_iter()
        .zip(group(blocked, false))
        .map(|(q, b)| Day {
            date: q.key,
            queries: q.count,
            blocked: b.count,
        })
        .collect();
    let mut top: Vec<DomainCount> = counts
        .domains
        .into_iter()
        .filter(|(_, n)| !publishing || *n >= k)
        .map(|(domain, count)| DomainCount { domain, count })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
    if publishing {
        top.truncate(TOP_DOMAINS);
    }
    report.top_blocked_domains = top;
}

/// The list versions in force during `[start, end)`: the last one loaded
/// before the period for each list, and every one loaded during it.
fn list_versions(
    db: &Connection,
    start: i64,
    end: i64,
) -> Result<Vec<ListVersion>, rusqlite::Error> {
    let mut statement = db.prepare(
        "SELECT loaded_at, category, list, entries, sha256 FROM list_versions WHERE loaded_at < ?1 ORDER BY loaded_at",
    )?;
    let rows = statement.query_map(params![end], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut before: BTreeMap<(String, String), ListVersion> = BTreeMap::new();
    let mut during = Vec::new();
    for row in rows {
        let (at, category, list, entries, sha256) = row?;
        let version = ListVersion {
            category: category.clone(),
            list: list.clone(),
            entries: entries.max(0) as u64,
            sha256,
            loaded_at: jiff::Timestamp::from_second(at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        };
        if at < start {
            before.insert((category, list), version);
        } else if !during.contains(&version) {
            during.push(version);
        }
    }
    let mut out: Vec<ListVersion> = before.into_values().collect();
    for version in during {
        if !out
            .iter()
            .any(|v| v.sha256 == version.sha256 && v.list == version.list)
        {
            out.push(version);
        }
    }
    Ok(out)
}

/// Cells 1..k-1 become "<k"; if exactly one cell of the group is hidden, the
/// next smallest is hidden too (complementary suppression), so the hidden
/// value cannot be recovered from the published total. A cell a merge input
/// had already hidden stays hidden as "≥n" (its known lower bound).
pub fn suppress_cells(cells: Vec<(String, Tally)>, k: u64) -> Vec<Cell> {
    let hidden_text = format!("<{k}");
    let mut hide: Vec<bool> = cells
        .iter()
        .map(|(_, t)| t.hidden || (t.n > 0 && t.n < k))
        .collect();
    if hide.iter().filter(|h| **h).count() == 1
        && cells.len() > 1
        && let Some((index, _)) = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| !hide[*i])
            .min_by_key(|(_, c)| c.1.n)
    {
        hide[index] = true;
    }
    cells
        .into_iter()
        .zip(hide)
        .map(|((key, tally), hidden)| Cell {
            key,
            count: if tally.hidden {
                tally.count()
            } else if hidden {
                Count::Hidden(hidden_text.clone())
            } else {
                Count::Exact(tally.n)
            },
            label: tally.label,
        })
        .collect()
}

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Inputs `first` and `second` (indexes) count the same statistics.
    #[error("{why}")]
    CountedTwice {
        first: usize,
        second: usize,
        why: String,
    },
}

/// What a merge could not do exactly, for the person merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeWarning {
    /// Input `input` had hidden this cell: the merged number is a lower bound.
    Hidden {
        input: usize,
        section: &'static str,
        key: String,
        shown: String,
    },
    /// Inputs `first` and `second` of `school` cover different but
    /// overlapping periods: not what replicas of one period give.
    Period {
        school: String,
        first: usize,
        second: usize,
    },
}

/// A merged report and what was not exact about it.
#[derive(Debug, Clone)]
pub struct Merged {
    pub report: Report,
    pub warnings: Vec<MergeWarning>,
}

/// Refuses inputs that count the same rows: the same report twice (a copy
/// under another name, or re-signed), or two reports of the same school from
/// the same statistics database over overlapping days.
fn check_counted_once(reports: &[Report]) -> Result<(), MergeError> {
    for (second, b) in reports.iter().enumerate() {
        for (first, a) in reports[..second].iter().enumerate() {
            let twice = |why: String| MergeError::CountedTwice { first, second, why };
            if a == b {
                return Err(twice("the same report is given twice".into()));
            }
            if let Some(source) = a
                .sources
                .iter()
                .find(|x| b.sources.iter().any(|y| x.overlaps(y)))
            {
                return Err(twice(format!(
                    "both count school {} from statistics database {} over the same days",
                    source.school, source.database
                )));
            }
        }
    }
    Ok(())
}

/// Whether two periods share some days without being the same period (the
/// replicas of a school should cover the same days; consecutive periods of
/// one school, a month and the next, are fine).
fn overlaps_partly(a: &Report, b: &Report) -> bool {
    (&a.from, &a.to) != (&b.from, &b.to) && a.from <= b.to && b.from <= a.to
}

/// Sums verified reports into one published report.
///
/// Inputs naming the same school id are that school's **replicas** (servers
/// sharing its traffic, each with its own database): the school is listed
/// once and the numbers of all its replicas are summed. Inputs of different
/// schools make a district report. Merge inputs (`--for-merge`) carry exact
/// counts and k-anonymity is applied to the sum by the code that publishes a
/// single report, so the merge equals, cell for cell, the report of one
/// node that had answered every query. A cell already hidden in a final
/// input stays hidden as "≥n" and is named in a warning. Inputs that count
/// the same rows twice are refused ([`MergeError::CountedTwice`]).
pub fn merge(reports: &[Report]) -> Result<Merged, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    check_counted_once(reports)?;
    let mut merged = Report {
        format: REPORT_FORMAT.to_string(),
        stage: Stage::Final,
        schools: Vec::new(),
        from: reports
            .iter()
            .map(|r| r.from.clone())
            .min()
            .unwrap_or_default(),
        to: reports
            .iter()
            .map(|r| r.to.clone())
            .max()
            .unwrap_or_default(),
        timezone: first.timezone.clone(),
        k_anonymity: reports.iter().map(|r| r.k_anonymity).max().unwrap_or(0),
        generated_at: jiff::Timestamp::now().to_string(),
        totals: Totals::default(),
        blocked_by_category: Vec::new(),
        blocked_by_band: Vec::new(),
        daily: Vec::new(),
        top_blocked_domains: Vec::new(),
        reviews: Reviews::default(),
        lists: Vec::new(),
        takedowns: Vec::new(),
        sources: Vec::new(),
    };
    let mut counts = Counts::default();
    let mut warnings = Vec::new();
    for (input, report) in reports.iter().enumerate() {
        for school in &report.schools {
            let replica_of = reports[..input]
                .iter()
                .position(|r| r.schools.iter().any(|s| s.id == school.id));
            match replica_of {
                None => merged.schools.push(school.clone()),
                Some(other) if overlaps_partly(&reports[other], report) => {
                    warnings.push(MergeWarning::Period {
                        school: school.id.clone(),
                        first: other,
                        second: input,
                    })
                }
                Some(_) => {}
            }
        }
        let (t, r) = (&report.totals, &report.reviews);
        merged.totals.queries += t.queries;
        merged.totals.allowed += t.allowed;
        merged.totals.blocked += t.blocked;
        merged.totals.safe_search += t.safe_search;
        merged.reviews.requested += r.requested;
        merged.reviews.accepted += r.accepted;
        merged.reviews.rejected += r.rejected;
        merged.reviews.pending += r.pending;

        let mut add = |section: &'static str, tally: &mut Tally, key: &str, count: &Count| {
            tally.add(count);
            if let Count::Hidden(shown) = count {
                warnings.push(MergeWarning::Hidden {
                    input,
                    section,
                    key: key.to_string(),
                    shown: shown.clone(),
                });
            }
        };
        for (section, cells, tallies) in [
            (
                "blocked_by_category",
                &report.blocked_by_category,
                &mut counts.by_category,
            ),
            (
                "blocked_by_band",
                &report.blocked_by_band,
                &mut counts.by_band,
            ),
        ] {
            for cell in cells {
                let tally = tallies
                    .entry(cell.key.clone())
                    .or_insert_with(|| Tally::labelled(&cell.label));
                add(section, tally, &cell.key, &cell.count);
            }
        }
        for day in &report.daily {
            let (queries, blocked) = counts
                .daily
                .entry(day.date.clone())
                .or_insert_with(|| (Tally::labelled(&day.date), Tally::labelled(&day.date)));
            add("daily.queries", queries, &day.date, &day.queries);
            add("daily.blocked", blocked, &day.date, &day.blocked);
        }
        for d in &report.top_blocked_domains {
            *counts.domains.entry(d.domain.clone()).or_default() += d.count;
        }
        // A list version is the same whichever replica loaded it: listed
        // once, with the earliest load time.
        for list in &report.lists {
            match merged.lists.iter_mut().find(|v| {
                (&v.category, &v.list, &v.sha256) == (&list.category, &list.list, &list.sha256)
            }) {
                Some(known) if list.loaded_at < known.loaded_at => {
                    known.loaded_at = list.loaded_at.clone()
                }
                Some(_) => {}
                None => merged.lists.push(list.clone()),
            }
        }
        for entry in &report.takedowns {
            if !merged.takedowns.iter().any(|t| t.domain == entry.domain) {
                merged.takedowns.push(entry.clone());
            }
        }
        for source in &report.sources {
            if !merged.sources.contains(source) {
                merged.sources.push(source.clone());
            }
        }
    }
    publish(&mut merged, counts);
    Ok(Merged {
        report: merged,
        warnings,
    })
}

/// CSV: one row per number, `section,key,label,value`.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from("section,key,label,value\n");
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let schools: Vec<&str> = report.schools.iter().map(|s| s.id.as_str()).collect();
    let _ = writeln!(out, "period,from,Từ ngày / From,{}", report.from);
    let _ = writeln!(out, "period,to,Đến ngày / To,{}", report.to);
    let _ = writeln!(
        out,
        "school,id,Trường / School,{}",
        field(&schools.join(" "))
    );
    for (key, label, value) in [
        ("queries", "Tổng truy vấn / Queries", report.totals.queries),
        ("allowed", "Cho phép / Allowed", report.totals.allowed),
        ("blocked", "Bị chặn / Blocked", report.totals.blocked),
        (
            "safe_search",
            "Tìm kiếm an toàn / Safe search",
            report.totals.safe_search,
        ),
    ] {
        let _ = writeln!(out, "totals,{key},{},{value}", field(label));
    }
    for cell in &report.blocked_by_category {
        let _ = writeln!(
            out,
            "blocked_by_category,{},{},{}",
            field(&cell.key),
            field(&cell.label),
            cell.count
        );
    }
    for cell in &report.blocked_by_band {
        let _ = writeln!(
            out,
            "blocked_by_band,{},{},{}",
            field(&cell.key),
            field(&cell.label),
            cell.count
        );
    }
    for day in &report.daily {
        let _ = writeln!(
            out,
            "daily_queries,{},{},{}",
            day.date, day.date, day.queries
        );
        let _ = writeln!(
            out,
            "daily_blocked,{},{},{}",
            day.date, day.date, day.blocked
        );
    }
    for d in &report.top_blocked_domains {
        let _ = writeln!(
            out,
            "top_blocked_domains,{},{},{}",
            field(&d.domain),
            field(&d.domain),
            d.count
        );
    }
    for (key, value) in [
        ("requested", report.reviews.requested),
        ("accepted", report.reviews.accepted),
        ("rejected", report.reviews.rejected),
        ("pending", report.reviews.pending),
    ] {
        let _ = writeln!(out, "reviews,{key},{key},{value}");
    }
    for list in &report.lists {
        let _ = writeln!(
            out,
            "lists,{},{},{}",
            field(&list.sha256),
            field(&format!("{} ({})", list.list, list.category)),
            list.entries
        );
    }
    for t in &report.takedowns {
        let _ = writeln!(
            out,
            "takedowns,{},{},{}",
            field(&t.domain),
            field(&format!("{} {}", t.reference, t.date)),
            field(&t.applied_at)
        );
    }
    out
}

pub use super::report_html::to_html;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ListRoot, validate};
    use crate::stats::store::Store;
    use std::path::Path;

    const CONFIG: &str = r#"
[upstream]
servers = ["192.0.2.53"]
[blocking]
sinkhole_ipv4 = "10.0.0.1"
[[category]]
id = "gambling"
name = "Cờ bạc / Gambling"
[[category]]
id = "social"
[[band]]
id = "young"
block = ["gambling", "social"]
[[band]]
id = "teen"
block = ["gambling"]
[[school]]
id = "s1"
name = "Trường Một"
networks = ["10.0.0.0/8"]
"#;

    const DAY1: &str = "2026-03-02T02:00:00Z"; // 09:00 on 2 March in Hà Nội
    const DAY2: &str = "2026-03-03T02:00:00Z";

    /// (replica, time, band, category, verdict, count): what three replicas
    /// of school s1 counted. Every replica's gambling and social cells are
    /// below k = 10; the sum's social cell still is, deny_list is not.
    const MIX: &[(usize, &str, &str, &str, &str, i64)] = &[
        (0, DAY1, "young", "gambling", "blocked", 4),
        (0, DAY1, "young", "social", "blocked", 2),
        (0, DAY1, "teen", "gambling", "blocked", 6),
        (0, DAY1, "young", "none", "allowed", 20),
        (0, DAY2, "young", "gambling", "blocked", 3),
        (1, DAY1, "young", "gambling", "blocked", 5),
        (1, DAY1, "teen", "gambling", "blocked", 3),
        (1, DAY1, "young", "none", "safe_search", 2),
        (1, DAY2, "young", "deny_list", "blocked", 6),
        (2, DAY1, "young", "gambling", "blocked", 3),
        (2, DAY2, "teen", "gambling", "blocked", 5),
        (2, DAY2, "young", "deny_list", "blocked", 5),
        (2, DAY1, "teen", "none", "allowed", 7),
    ];

    /// (replica, local day, domain, blocks) for the top blocked domains.
    const DOMAINS: &[(usize, &str, &str, i64)] = &[
        (0, "2026-03-02", "bet.example", 4),
        (1, "2026-03-02", "bet.example", 5),
        (2, "2026-03-02", "bet.example", 3),
        (0, "2026-03-02", "casino.example", 9),
        (1, "2026-03-02", "casino.example", 3),
        (2, "2026-03-03", "casino.example", 5),
        (0, "2026-03-02", "social.example", 2),
        (1, "2026-03-03", "deny.example", 6),
        (2, "2026-03-03", "deny.example", 5),
    ];

    fn build_for_merge(
        db: &Connection,
        config: &Config,
        school: &str,
        from: &str,
        to: &str,
    ) -> Result<Report, ReportError> {
        build_stage(db, config, school, from, to, 10, Stage::MergeInput)
    }

    fn config() -> Config {
        validate::parse(CONFIG, Path::new("t.toml"), ListRoot::Embedded).unwrap()
    }

    fn unix(time: &str) -> i64 {
        time.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    /// Three replica databases and one "single node" database that counted
    /// everything the three did.
    fn databases(dir: &Path) -> (Vec<Store>, Store) {
        let replicas: Vec<Store> = (0..3)
            .map(|i| Store::open(&dir.join(format!("replica{i}.sqlite"))).unwrap())
            .collect();
        let single = Store::open(&dir.join("single.sqlite")).unwrap();
        for (replica, time, band, category, verdict, count) in MIX {
            for store in [&replicas[*replica], &single] {
                store
                    .connection()
                    .execute(
                        "INSERT INTO hourly (hour, school, band, category, verdict, count) VALUES (?1, 's1', ?2, ?3, ?4, ?5)
                         ON CONFLICT (hour, school, band, category, verdict) DO UPDATE SET count = count + excluded.count",
                        params![unix(time) / 3600, band, category, verdict, count],
                    )
                    .unwrap();
            }
        }
        for (replica, day, domain, count) in DOMAINS {
            for store in [&replicas[*replica], &single] {
                store
                    .connection()
                    .execute(
                        "INSERT INTO top_blocked (day, school, domain, count) VALUES (?1, 's1', ?2, ?3)
                         ON CONFLICT (day, school, domain) DO UPDATE SET count = count + excluded.count",
                        params![day, domain, count],
                    )
                    .unwrap();
            }
        }
        for (replica, status) in ["pending", "accepted", "rejected"].iter().enumerate() {
            for store in [&replicas[replica], &single] {
                store
                    .connection()
                    .execute(
                        "INSERT INTO reviews (created_at, day, school, band, domain, category, status)
                         VALUES (?1, '2026-03-02', 's1', 'young', ?2, 'social', ?3)",
                        params![unix(DAY1), format!("r{replica}.example"), status],
                    )
                    .unwrap();
            }
        }
        // The same list, loaded a few seconds apart by each node.
        let list = [(
            "gambling".to_string(),
            "lists/gambling.txt".to_string(),
            2,
            "ab".repeat(32),
        )];
        single.record_lists(unix(DAY1) - 86_400, &list).unwrap();
        for (i, store) in replicas.iter().enumerate() {
            store
                .record_lists(unix(DAY1) - 86_400 + 5 * i as i64, &list)
                .unwrap();
        }
        (replicas, single)
    }

    /// A report without what differs from run to run and node to node.
    fn numbers(mut report: Report) -> Report {
        report.generated_at.clear();
        report.sources.clear();
        report
    }

    fn cell<'a>(cells: &'a [Cell], key: &str) -> &'a Count {
        &cells.iter().find(|c| c.key == key).unwrap().count
    }

    #[test]
    fn merging_replica_inputs_equals_the_report_of_one_node() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, single) = databases(dir.path());
        let config = config();
        let (from, to) = ("2026-03-02", "2026-03-03");
        let inputs: Vec<Report> = replicas
            .iter()
            .map(|s| build_for_merge(s.connection(), &config, "s1", from, to).unwrap())
            .collect();
        // A merge input is exact, small cells and rare domains included.
        assert_eq!(inputs[0].stage, Stage::MergeInput);
        assert_eq!(
            cell(&inputs[0].blocked_by_category, "social"),
            &Count::Exact(2)
        );
        assert_eq!(cell(&inputs[0].blocked_by_band, "teen"), &Count::Exact(6));
        assert!(
            inputs[0]
                .top_blocked_domains
                .iter()
                .any(|d| d.domain == "social.example" && d.count == 2)
        );

        let merged = merge(&inputs).unwrap();
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
        let one_node = build(single.connection(), &config, "s1", from, to, 10).unwrap();
        assert_eq!(numbers(merged.report.clone()), numbers(one_node));

        // What that equality covers: the school once, the sum published
        // with k-anonymity (social 2 hidden, deny_list 11 hidden with it by
        // complementary suppression, gambling 29 exact).
        let report = &merged.report;
        assert_eq!(report.stage, Stage::Final);
        assert_eq!(report.schools.len(), 1);
        assert_eq!(report.sources.len(), 3);
        assert_eq!(
            report.lists.len(),
            1,
            "one list version, not one per replica"
        );
        assert_eq!(report.totals.blocked, 29 + 2 + 11);
        assert_eq!(report.totals.allowed, 27);
        assert_eq!(report.totals.safe_search, 2);
        assert_eq!(
            cell(&report.blocked_by_category, "gambling"),
            &Count::Exact(29)
        );
        assert_eq!(
            cell(&report.blocked_by_category, "social"),
            &Count::Hidden("<10".into())
        );
        assert_eq!(
            cell(&report.blocked_by_category, "deny_list"),
            &Count::Hidden("<10".into())
        );
        assert_eq!(cell(&report.blocked_by_band, "teen"), &Count::Exact(14));
        assert_eq!(
            report
                .daily
                .iter()
                .map(|d| (d.queries.clone(), d.blocked.clone()))
                .collect::<Vec<_>>(),
            vec![
                (Count::Exact(52), Count::Exact(23)),
                (Count::Exact(19), Count::Exact(19))
            ]
        );
        assert_eq!(
            report
                .top_blocked_domains
                .iter()
                .map(|d| (d.domain.as_str(), d.count))
                .collect::<Vec<_>>(),
            vec![
                ("casino.example", 17),
                ("bet.example", 12),
                ("deny.example", 11)
            ]
        );
        assert_eq!(
            (
                report.reviews.requested,
                report.reviews.pending,
                report.reviews.accepted,
                report.reviews.rejected
            ),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn merging_final_replica_reports_is_not_exact_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, _) = databases(dir.path());
        let config = config();
        let finals: Vec<Report> = replicas
            .iter()
            .map(|s| {
                build(
                    s.connection(),
                    &config,
                    "s1",
                    "2026-03-02",
                    "2026-03-03",
                    10,
                )
                .unwrap()
            })
            .collect();
        let merged = merge(&finals).unwrap();
        // Each replica hid its gambling cell: 13 + 8 + 8 = 29 can't be known.
        assert_eq!(
            cell(&merged.report.blocked_by_category, "gambling"),
            &Count::Hidden("≥0".into())
        );
        assert_eq!(merged.report.schools.len(), 1);
        assert!(merged.warnings.contains(&MergeWarning::Hidden {
            input: 1,
            section: "blocked_by_category",
            key: "gambling".into(),
            shown: "<10".into(),
        }));
        assert_eq!(
            merged.report.totals.blocked, 42,
            "totals stay exact all the same"
        );
    }

    #[test]
    fn the_same_rows_are_never_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, _) = databases(dir.path());
        let config = config();
        let db = replicas[0].connection();
        let report = build_for_merge(db, &config, "s1", "2026-03-02", "2026-03-03").unwrap();
        let twice = |reports: &[Report]| match merge(reports) {
            Err(MergeError::CountedTwice { first, second, .. }) => Some((first, second)),
            _ => None,
        };
        assert_eq!(twice(&[report.clone(), report.clone()]), Some((0, 1)));
        // Made again from the same database (another generated_at).
        let mut again = build_for_merge(db, &config, "s1", "2026-03-03", "2026-03-05").unwrap();
        again.generated_at = "later".into();
        assert_eq!(
            twice(&[report.clone(), again]),
            Some((0, 1)),
            "days overlap"
        );
        // A report without sources (made before they existed) given twice.
        let mut old = report.clone();
        old.sources.clear();
        assert_eq!(twice(&[old.clone(), old]), Some((0, 1)));
        // The next days of the same database, or another replica, are fine.
        let next = build_for_merge(db, &config, "s1", "2026-03-04", "2026-03-05").unwrap();
        let other = build_for_merge(
            replicas[1].connection(),
            &config,
            "s1",
            "2026-03-02",
            "2026-03-03",
        )
        .unwrap();
        let merged = merge(&[report, next, other]).unwrap();
        assert_eq!(merged.report.to, "2026-03-05");
        assert_eq!(merged.report.schools.len(), 1);
    }

    #[test]
    fn final_reports_keep_the_json_of_reports_made_before_stages() {
        let dir = tempfile::tempdir().unwrap();
        let (_, single) = databases(dir.path());
        let mut report = build(
            single.connection(),
            &config(),
            "s1",
            "2026-03-02",
            "2026-03-02",
            10,
        )
        .unwrap();
        report.sources.clear();
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("stage").is_none() && json.get("sources").is_none());
        // An old report (no stage, no sources) reads as final and writes back
        // the same JSON, so its signature still verifies.
        let read: Report = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read.stage, Stage::Final);
        assert_eq!(serde_json::to_value(&read).unwrap(), json);
        let input = build_for_merge(
            single.connection(),
            &config(),
            "s1",
            "2026-03-02",
            "2026-03-02",
        )
        .unwrap();
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["stage"], "merge-input");
        assert_eq!(json["sources"][0]["school"], "s1");
    }
}
