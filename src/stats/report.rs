//! Reports for the authorities: what was filtered at one school over a
//! period, as JSON, CSV or HTML (Vietnamese headings with English).
//!
//! Privacy (see `docs/privacy.md`): only aggregates; cells between 1 and
//! k-1 are shown as "<k", with complementary suppression so a hidden cell
//! cannot be recomputed from the published total; top blocked domains below
//! k are left out. Totals are exact, so district merges add up.

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

/// The report. Field order is the order of the JSON and of the signature's
/// canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
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

/// Builds the report of `school` for local dates `from..=to`.
pub fn build(
    db: &Connection,
    config: &Config,
    school_id: &str,
    from: &str,
    to: &str,
    k: u64,
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

    let mut totals = Totals::default();
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_band: BTreeMap<String, u64> = BTreeMap::new();
    let mut daily: BTreeMap<String, (u64, u64)> = BTreeMap::new();
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
        let day = daily.entry(local_date(hour * 3600, school)).or_default();
        day.0 += count;
        totals.queries += count;
        match verdict.as_str() {
            "blocked" => {
                totals.blocked += count;
                day.1 += count;
                *by_category.entry(category).or_default() += count;
                *by_band.entry(band).or_default() += count;
            }
            "safe_search" => totals.safe_search += count,
            _ => totals.allowed += count,
        }
    }
    // Every day of the period appears, zero or not.
    let mut date = from_date;
    while date <= to_date {
        daily.entry(date.to_string()).or_default();
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }

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
    let mut blocked_by_category: Vec<(String, String, u64)> = by_category
        .into_iter()
        .map(|(k, v)| (category_label(&k), k, v))
        .collect();
    let mut blocked_by_band: Vec<(String, String, u64)> = by_band
        .into_iter()
        .map(|(k, v)| (band_label(&k), k, v))
        .collect();
    blocked_by_category.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    blocked_by_band.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));

    let mut top = db.prepare(
        "SELECT domain, SUM(count) AS n FROM top_blocked WHERE school = ?1 AND day BETWEEN ?2 AND ?3
         GROUP BY domain HAVING n >= ?4 ORDER BY n DESC, domain LIMIT 20",
    )?;
    let top_blocked_domains = top
        .query_map(params![school_id, from, to, k as i64], |row| {
            Ok(DomainCount {
                domain: row.get(0)?,
                count: row.get::<_, i64>(1)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

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
    let mut report = Report {
        format: REPORT_FORMAT.to_string(),
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
        blocked_by_category: suppress_cells(blocked_by_category, k),
        blocked_by_band: suppress_cells(blocked_by_band, k),
        daily: Vec::new(),
        top_blocked_domains,
        reviews,
        lists,
        takedowns,
    };
    let days: Vec<(String, String, u64)> = daily
        .iter()
        .map(|(d, (_, b))| (d.clone(), d.clone(), *b))
        .collect();
    let queries: Vec<(String, String, u64)> = daily
        .iter()
        .map(|(d, (q, _))| (d.clone(), d.clone(), *q))
        .collect();
    let blocked = suppress_cells(days, k);
    let queries = suppress_cells(queries, k);
    report.daily = blocked
        .into_iter()
        .zip(queries)
        .map(|(b, q)| Day {
            date: b.key,
            queries: q.count,
            blocked: b.count,
        })
        .collect();
    report.daily.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(report)
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
/// value cannot be recovered from the published total.
pub fn suppress_cells(cells: Vec<(String, String, u64)>, k: u64) -> Vec<Cell> {
    let hidden_text = format!("<{k}");
    let mut hide: Vec<bool> = cells.iter().map(|c| c.2 > 0 && c.2 < k).collect();
    if hide.iter().filter(|h| **h).count() == 1
        && cells.len() > 1
        && let Some((index, _)) = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| !hide[*i])
            .min_by_key(|(_, c)| c.2)
    {
        hide[index] = true;
    }
    cells
        .into_iter()
        .zip(hide)
        .map(|((label, key, value), hidden)| Cell {
            key,
            label,
            count: if hidden {
                Count::Hidden(hidden_text.clone())
            } else {
                Count::Exact(value)
            },
        })
        .collect()
}

/// Sums verified reports of several schools into one district report.
/// Totals add up exactly; a cell hidden in any school stays hidden ("≥ n").
pub fn merge(reports: &[Report]) -> Option<Report> {
    let first = reports.first()?;
    let mut merged = Report {
        schools: Vec::new(),
        from: reports.iter().map(|r| r.from.clone()).min()?,
        to: reports.iter().map(|r| r.to.clone()).max()?,
        generated_at: jiff::Timestamp::now().to_string(),
        k_anonymity: reports.iter().map(|r| r.k_anonymity).max()?,
        totals: Totals::default(),
        blocked_by_category: Vec::new(),
        blocked_by_band: Vec::new(),
        daily: Vec::new(),
        top_blocked_domains: Vec::new(),
        reviews: Reviews::default(),
        lists: Vec::new(),
        takedowns: Vec::new(),
        ..first.clone()
    };
    let sum_cells = |cells: Vec<&Cell>| -> Vec<Cell> {
        let mut by_key: BTreeMap<String, (String, u64, bool)> = BTreeMap::new();
        for cell in cells {
            let entry = by_key
                .entry(cell.key.clone())
                .or_insert((cell.label.clone(), 0, false));
            match cell.count.exact() {
                Some(n) => entry.1 += n,
                None => entry.2 = true,
            }
        }
        by_key
            .into_iter()
            .map(|(key, (label, n, hidden))| Cell {
                key,
                label,
                count: if hidden {
                    Count::Hidden(format!("≥{n}"))
                } else {
                    Count::Exact(n)
                },
            })
            .collect()
    };
    let mut days: BTreeMap<String, (Vec<&Count>, Vec<&Count>)> = BTreeMap::new();
    let mut domains: BTreeMap<String, u64> = BTreeMap::new();
    for report in reports {
        merged.schools.extend(report.schools.iter().cloned());
        merged.totals.queries += report.totals.queries;
        merged.totals.allowed += report.totals.allowed;
        merged.totals.blocked += report.totals.blocked;
        merged.totals.safe_search += report.totals.safe_search;
        merged.reviews.requested += report.reviews.requested;
        merged.reviews.accepted += report.reviews.accepted;
        merged.reviews.rejected += report.reviews.rejected;
        merged.reviews.pending += report.reviews.pending;
        for day in &report.daily {
            let entry = days.entry(day.date.clone()).or_default();
            entry.0.push(&day.queries);
            entry.1.push(&day.blocked);
        }
        for d in &report.top_blocked_domains {
            *domains.entry(d.domain.clone()).or_default() += d.count;
        }
        for list in &report.lists {
            if !merged.lists.contains(list) {
                merged.lists.push(list.clone());
            }
        }
        for entry in &report.takedowns {
            if !merged.takedowns.iter().any(|t| t.domain == entry.domain) {
                merged.takedowns.push(entry.clone());
            }
        }
    }
    merged.blocked_by_category = sum_cells(
        reports
            .iter()
            .flat_map(|r| &r.blocked_by_category)
            .collect(),
    );
    merged.blocked_by_band = sum_cells(reports.iter().flat_map(|r| &r.blocked_by_band).collect());
    let sum = |counts: &[&Count]| -> Count {
        let exact: u64 = counts.iter().filter_map(|c| c.exact()).sum();
        if counts.iter().any(|c| c.exact().is_none()) {
            Count::Hidden(format!("≥{exact}"))
        } else {
            Count::Exact(exact)
        }
    };
    merged.daily = days
        .into_iter()
        .map(|(date, (q, b))| Day {
            date,
            queries: sum(&q),
            blocked: sum(&b),
        })
        .collect();
    let mut top: Vec<DomainCount> = domains
        .into_iter()
        .map(|(domain, count)| DomainCount { domain, count })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
    top.truncate(20);
    merged.top_blocked_domains = top;
    Some(merged)
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
