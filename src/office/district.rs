//! Reading what the office kept (`office::ingest`): the inputs of a period
//! rebuilt per school, node and day, the district report (sums made in
//! SQL, merged with the report code so k-anonymity applies once to the
//! district's sums), and each school's last report.
//!
//! Uses: `office::ingest` (the tables and day numbers), `stats::report`.
//! Used by: `web` (district reports, the console), `cli` (`report district`).

use super::ingest::{day_number, day_text, ensure_schema};
use crate::stats::report::{self, Report, Stage};
use rusqlite::{Connection, params};

/// A kept day's row, as the reports need it.
struct DayRow {
    source: i64,
    school: String,
    node: String,
    day: i64,
    name: String,
    timezone: String,
    k: u64,
    totals: report::Totals,
    reviews: report::Reviews,
}

fn day_rows(
    db: &Connection,
    from: i64,
    to: i64,
    schools: Option<&[String]>,
) -> rusqlite::Result<Vec<DayRow>> {
    let mut statement = db.prepare_cached(
        "SELECT d.source, s.school, s.node, d.day, d.school_name, d.timezone, d.k,
                d.queries, d.allowed, d.blocked, d.safe_search, d.reviews
         FROM ingest_days d JOIN ingest_sources s ON s.id = d.source
         WHERE d.day BETWEEN ?1 AND ?2 ORDER BY s.school, s.node, d.day",
    )?;
    let rows = statement.query_map(params![from, to], |row| {
        let reviews: String = row.get(11)?;
        Ok(DayRow {
            source: row.get(0)?,
            school: row.get(1)?,
            node: row.get(2)?,
            day: row.get(3)?,
            name: row.get(4)?,
            timezone: row.get(5)?,
            k: row.get::<_, i64>(6)?.max(0) as u64,
            totals: report::Totals {
                queries: row.get::<_, i64>(7)?.max(0) as u64,
                allowed: row.get::<_, i64>(8)?.max(0) as u64,
                blocked: row.get::<_, i64>(9)?.max(0) as u64,
                safe_search: row.get::<_, i64>(10)?.max(0) as u64,
            },
            reviews: serde_json::from_str(&reviews).unwrap_or_default(),
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if schools.is_none_or(|wanted| wanted.contains(&row.school)) {
            out.push(row);
        }
    }
    Ok(out)
}

/// A kept cell: (section, key, label, count).
type KeptCell = (i64, String, String, u64);

/// The cells per (source, day) in the period.
fn cells(
    db: &Connection,
    from: i64,
    to: i64,
) -> rusqlite::Result<std::collections::HashMap<(i64, i64), Vec<KeptCell>>> {
    let mut statement = db.prepare_cached(
        "SELECT c.source, c.day, l.section, l.key, l.label, c.count
         FROM ingest_cells c JOIN ingest_labels l ON l.id = c.label
         WHERE c.day BETWEEN ?1 AND ?2",
    )?;
    let mut map: std::collections::HashMap<(i64, i64), Vec<_>> = Default::default();
    let rows = statement.query_map(params![from, to], |row| {
        Ok((
            (row.get::<_, i64>(0)?, row.get::<_, i64>(1)?),
            (
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?.max(0) as u64,
            ),
        ))
    })?;
    for row in rows {
        let (at, cell) = row?;
        map.entry(at).or_default().push(cell);
    }
    Ok(map)
}

fn lists_of(
    db: &Connection,
    source: i64,
) -> (Vec<report::ListVersion>, Vec<report::TakedownInForce>) {
    db.query_row(
        "SELECT lists, takedowns FROM ingest_lists WHERE source = ?1",
        params![source],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )
    .map(|(lists, takedowns)| {
        (
            serde_json::from_str(&lists).unwrap_or_default(),
            serde_json::from_str(&takedowns).unwrap_or_default(),
        )
    })
    .unwrap_or_default()
}

/// A merge input from kept numbers: `sections` are (section, key, label,
/// count) cells, `days` the daily rows.
#[allow(clippy::too_many_arguments)]
fn rebuilt(
    school: &str,
    name: &str,
    timezone: &str,
    k: u64,
    from: &str,
    to: &str,
    totals: report::Totals,
    reviews: report::Reviews,
    sections: &[KeptCell],
    days: Vec<report::Day>,
    domains: Vec<report::DomainCount>,
    sources: Vec<report::Source>,
    (lists, takedowns): (Vec<report::ListVersion>, Vec<report::TakedownInForce>),
) -> Report {
    let cells = |section: i64| {
        let mut summed: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for (s, key, label, count) in sections {
            if *s == section {
                *summed.entry((key.clone(), label.clone())).or_default() += count;
            }
        }
        summed
            .into_iter()
            .map(|((key, label), count)| report::Cell {
                key,
                label,
                count: report::Count::Exact(count),
            })
            .collect()
    };
    Report {
        format: report::REPORT_FORMAT.to_string(),
        stage: Stage::MergeInput,
        schools: vec![report::SchoolRef {
            id: school.to_string(),
            name: name.to_string(),
        }],
        from: from.to_string(),
        to: to.to_string(),
        timezone: timezone.to_string(),
        k_anonymity: k,
        generated_at: jiff::Timestamp::now().to_string(),
        totals,
        blocked_by_category: cells(0),
        blocked_by_band: cells(1),
        daily: days,
        top_blocked_domains: domains,
        reviews,
        lists,
        takedowns,
        sources,
    }
}

/// The kept inputs of local days `from..=to`, of `schools` (all when
/// `None`), in (school, node, day) order: one merge input per school, node
/// and day, rebuilt from the kept numbers (its top blocked domains are the
/// day's [`DOMAINS_PER_DAY`](super::ingest::DOMAINS_PER_DAY) most blocked).
pub fn inputs(
    db: &Connection,
    from: &str,
    to: &str,
    schools: Option<&[String]>,
) -> Result<Vec<Report>, rusqlite::Error> {
    ensure_schema(db)?;
    let (first, last) = (day_number(from), day_number(to));
    let cells = cells(db, first, last)?;
    let mut domains: std::collections::HashMap<(i64, i64), Vec<report::DomainCount>> =
        Default::default();
    {
        let mut statement = db.prepare_cached(
            "SELECT d.source, d.day, n.name, d.count FROM ingest_domains d
             JOIN ingest_domain_names n ON n.id = d.domain WHERE d.day BETWEEN ?1 AND ?2",
        )?;
        let rows = statement.query_map(params![first, last], |row| {
            Ok((
                (row.get::<_, i64>(0)?, row.get::<_, i64>(1)?),
                report::DomainCount {
                    domain: row.get(2)?,
                    count: row.get::<_, i64>(3)?.max(0) as u64,
                },
            ))
        })?;
        for row in rows {
            let (at, domain) = row?;
            domains.entry(at).or_default().push(domain);
        }
    }
    let mut lists: std::collections::HashMap<i64, _> = Default::default();
    let mut out = Vec::new();
    for row in day_rows(db, first, last, schools)? {
        let date = day_text(row.day);
        let versions = lists
            .entry(row.source)
            .or_insert_with(|| lists_of(db, row.source))
            .clone();
        out.push(rebuilt(
            &row.school,
            &row.name,
            &row.timezone,
            row.k,
            &date,
            &date,
            row.totals.clone(),
            row.reviews.clone(),
            cells.get(&(row.source, row.day)).map_or(&[][..], |c| c),
            vec![report::Day {
                date: date.clone(),
                queries: report::Count::Exact(row.totals.queries),
                blocked: report::Count::Exact(row.totals.blocked),
            }],
            domains.remove(&(row.source, row.day)).unwrap_or_default(),
            vec![report::Source {
                database: row.node.clone(),
                school: row.school.clone(),
                from: date.clone(),
                to: date.clone(),
            }],
            versions,
        ));
    }
    Ok(out)
}

/// The district report of local days `from..=to` for `schools` (all when
/// `None`): per school the sums of its kept days (every node), merged with
/// the report code, so k-anonymity and complementary suppression apply once
/// to the district's sums. Sums are made in SQL: a year of a province is
/// one pass over the kept numbers.
pub fn district_report(
    db: &Connection,
    from: &str,
    to: &str,
    schools: Option<&[String]>,
) -> Result<report::Merged, DistrictError> {
    for date in [from, to] {
        date.parse::<jiff::civil::Date>()
            .map_err(|_| DistrictError::BadDate(date.to_string()))?;
    }
    ensure_schema(db)?;
    let (first, last) = (day_number(from), day_number(to));
    let rows = day_rows(db, first, last, schools)?;
    if rows.is_empty() {
        return Err(DistrictError::Nothing {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let wanted: std::collections::HashSet<i64> = rows.iter().map(|r| r.source).collect();
    // Cells summed per source over the period.
    let mut sections: std::collections::HashMap<i64, Vec<KeptCell>> = Default::default();
    {
        let mut statement = db.prepare_cached(
            "SELECT c.source, l.section, l.key, l.label, SUM(c.count)
             FROM ingest_cells c JOIN ingest_labels l ON l.id = c.label
             WHERE c.day BETWEEN ?1 AND ?2 GROUP BY c.source, c.label",
        )?;
        let found = statement.query_map(params![first, last], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                (
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?.max(0) as u64,
                ),
            ))
        })?;
        for row in found {
            let (source, cell) = row?;
            if wanted.contains(&source) {
                sections.entry(source).or_default().push(cell);
            }
        }
    }
    // The district's blocked domains, summed over every wanted source in
    // one GROUP BY (the sources as a JSON array for SQLite's json_each).
    let mut domains: std::collections::HashMap<String, u64> = Default::default();
    {
        let sources = serde_json::to_string(&wanted.iter().collect::<Vec<_>>()).unwrap_or_default();
        let mut statement = db.prepare_cached(
            "SELECT n.name, SUM(d.count) FROM ingest_domains d
             JOIN ingest_domain_names n ON n.id = d.domain
             WHERE d.day BETWEEN ?1 AND ?2 AND d.source IN (SELECT value FROM json_each(?3))
             GROUP BY d.domain",
        )?;
        let found = statement.query_map(params![first, last, sources], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?;
        for row in found {
            let (name, count) = row?;
            domains.insert(name, count);
        }
    }
    // One merge input per school: its nodes and days summed.
    let mut per_school: std::collections::BTreeMap<String, Vec<&DayRow>> = Default::default();
    for row in &rows {
        per_school.entry(row.school.clone()).or_default().push(row);
    }
    let mut reports = Vec::new();
    for (school, days) in &per_school {
        let mut totals = report::Totals::default();
        let mut reviews = report::Reviews::default();
        let mut daily: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
        let mut cells = Vec::new();
        let mut sources: std::collections::BTreeMap<(String, i64), (i64, i64)> = Default::default();
        for row in days {
            totals.queries += row.totals.queries;
            totals.allowed += row.totals.allowed;
            totals.blocked += row.totals.blocked;
            totals.safe_search += row.totals.safe_search;
            reviews.requested += row.reviews.requested;
            reviews.accepted += row.reviews.accepted;
            reviews.rejected += row.reviews.rejected;
            reviews.pending += row.reviews.pending;
            let day = daily.entry(row.day).or_default();
            day.0 += row.totals.queries;
            day.1 += row.totals.blocked;
            let span = sources
                .entry((row.node.clone(), row.source))
                .or_insert((row.day, row.day));
            span.0 = span.0.min(row.day);
            span.1 = span.1.max(row.day);
        }
        for (_, source) in sources.keys() {
            if let Some(found) = sections.remove(source) {
                cells.extend(found);
            }
        }
        let latest = days.last().expect("a school has a row");
        let source_list = sources
            .iter()
            .map(|((node, _), (a, b))| report::Source {
                database: node.clone(),
                school: school.clone(),
                from: day_text(*a),
                to: day_text(*b),
            })
            .collect();
        let domain_list = if reports.is_empty() {
            std::mem::take(&mut domains)
                .into_iter()
                .map(|(domain, count)| report::DomainCount { domain, count })
                .collect()
        } else {
            Vec::new()
        };
        reports.push(rebuilt(
            school,
            &latest.name,
            &latest.timezone,
            latest.k,
            from,
            to,
            totals,
            reviews,
            &cells,
            daily
                .into_iter()
                .map(|(day, (queries, blocked))| report::Day {
                    date: day_text(day),
                    queries: report::Count::Exact(queries),
                    blocked: report::Count::Exact(blocked),
                })
                .collect(),
            domain_list,
            source_list,
            lists_of(db, latest.source),
        ));
    }
    let mut merged = report::merge(&reports).map_err(|e| DistrictError::Merge(e.to_string()))?;
    merged.report.from = from.to_string();
    merged.report.to = to.to_string();
    Ok(merged)
}

#[derive(Debug, thiserror::Error)]
pub enum DistrictError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("no school sent statistics for {from} to {to}")]
    Nothing { from: String, to: String },
    #[error("{0}")]
    Merge(String),
    #[error("office database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// Per school and node: the last day received and when (the office
/// console's "last report").
pub fn last_received(
    db: &Connection,
) -> Result<Vec<(String, String, String, i64)>, rusqlite::Error> {
    ensure_schema(db)?;
    let mut statement = db.prepare(
        "SELECT s.school, s.node, MAX(d.day), MAX(d.received_at)
         FROM ingest_days d JOIN ingest_sources s ON s.id = d.source
         GROUP BY s.school, s.node ORDER BY s.school, s.node",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            day_text(row.get::<_, i64>(2)?),
            row.get::<_, i64>(3)?,
        ))
    })?;
    rows.collect()
}
