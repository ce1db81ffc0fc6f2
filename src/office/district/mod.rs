//! Reading what the office kept (`office::ingest`): the inputs of a period
//! rebuilt per school, node and day, the district report (sums made in
//! SQL, merged with the report code so k-anonymity applies once to the
//! district's sums), and each school's last report.
//!
//! Uses: `office::ingest` (the tables and day numbers), `stats::report`.
//! Used by: `web` (district reports, the console), `cli` (`report district`).

use super::ingest::{day_number, day_text, ensure_schema, flush_rollups, month_of, month_start};
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
    let rows = day_rows(db, first, last, schools)?;
    let mut domains: std::collections::HashMap<(i64, i64), Vec<report::DomainCount>> =
        Default::default();
    {
        let mut statement = db.prepare_cached(
            "SELECT d.day, n.name, d.count FROM ingest_domains d
             JOIN ingest_domain_names n ON n.id = d.domain
             WHERE d.source = ?1 AND d.day BETWEEN ?2 AND ?3",
        )?;
        let sources: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.source).collect();
        for source in sources {
            let found = statement.query_map(params![source, first, last], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    report::DomainCount {
                        domain: row.get(1)?,
                        count: row.get::<_, i64>(2)?.max(0) as u64,
                    },
                ))
            })?;
            for row in found {
                let (day, domain) = row?;
                domains.entry((source, day)).or_default().push(domain);
            }
        }
    }
    let mut lists: std::collections::HashMap<i64, _> = Default::default();
    let mut out = Vec::new();
    for row in rows {
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

/// A period as whole calendar months (read from the roll-ups) and the
/// days before and after them (read day by day).
#[derive(Debug, PartialEq, Eq)]
struct Split {
    months: Option<(i64, i64)>,
    days: Vec<(i64, i64)>,
}

fn split(first: i64, last: i64) -> Split {
    let (m0, m1) = (month_of(first), month_of(last));
    let whole_from = if month_start(m0) == first { m0 } else { m0 + 1 };
    let whole_to = if month_start(m1 + 1) - 1 == last {
        m1
    } else {
        m1 - 1
    };
    if whole_from > whole_to {
        return Split {
            months: None,
            days: vec![(first, last)],
        };
    }
    let mut days = Vec::new();
    if first < month_start(whole_from) {
        days.push((first, month_start(whole_from) - 1));
    }
    if last >= month_start(whole_to + 1) {
        days.push((month_start(whole_to + 1), last));
    }
    Split {
        months: Some((whole_from, whole_to)),
        days,
    }
}

/// One source's sums over a period.
#[derive(Default)]
struct Sums {
    /// The first and last day kept.
    span: Option<(i64, i64)>,
    totals: report::Totals,
    reviews: report::Reviews,
    cells: Vec<KeptCell>,
}

fn add_sums(into: &mut Sums, row: &rusqlite::Row) -> rusqlite::Result<()> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
    };
    let (first, last): (i64, i64) = (row.get(1)?, row.get(2)?);
    into.span = Some(
        into.span
            .map_or((first, last), |(a, b)| (a.min(first), b.max(last))),
    );
    into.totals.queries += n(3)?;
    into.totals.allowed += n(4)?;
    into.totals.blocked += n(5)?;
    into.totals.safe_search += n(6)?;
    into.reviews.requested += n(7)?;
    into.reviews.accepted += n(8)?;
    into.reviews.rejected += n(9)?;
    into.reviews.pending += n(10)?;
    Ok(())
}

/// The district report of local days `from..=to` for `schools` (all when
/// `None`): per school the sums of its kept days (every node), merged with
/// the report code, so k-anonymity and complementary suppression apply once
/// to the district's sums. Whole calendar months are read from the
/// roll-ups `office::ingest` keeps, the days around them day by day: a
/// year of a province is twelve months of sums (docs/performance.md,
/// "Office ingest").
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
    flush_rollups(db)?;
    let (first, last) = (day_number(from), day_number(to));
    let period = split(first, last);
    // The wanted sources: (school, node) by id.
    let mut wanted: std::collections::HashMap<i64, (String, String)> = Default::default();
    {
        let mut statement = db.prepare_cached("SELECT id, school, node FROM ingest_sources")?;
        let found = statement.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?))
        })?;
        for row in found {
            let (id, school, node): (i64, String, String) = row?;
            if schools.is_none_or(|w| w.contains(&school)) {
                wanted.insert(id, (school, node));
            }
        }
    }
    let ids = serde_json::to_string(&wanted.keys().collect::<Vec<_>>()).unwrap_or_default();
    // Totals per source: whole months, then the days around them.
    let mut sums: std::collections::HashMap<i64, Sums> = Default::default();
    let mut read_sums = |sql: &str, a: i64, b: i64| -> rusqlite::Result<()> {
        let mut statement = db.prepare_cached(sql)?;
        let mut rows = statement.query(params![a, b, ids])?;
        while let Some(row) = rows.next()? {
            add_sums(sums.entry(row.get(0)?).or_default(), row)?;
        }
        Ok(())
    };
    if let Some((a, b)) = period.months {
        read_sums(
            "SELECT source, MIN(first_day), MAX(last_day), SUM(queries), SUM(allowed), SUM(blocked),
                 SUM(safe_search), SUM(requested), SUM(accepted), SUM(rejected), SUM(pending)
             FROM ingest_month_days
             WHERE month BETWEEN ?1 AND ?2 AND source IN (SELECT value FROM json_each(?3))
             GROUP BY source",
            a,
            b,
        )?;
    }
    for &(a, b) in &period.days {
        read_sums(
            "SELECT source, MIN(day), MAX(day), SUM(queries), SUM(allowed), SUM(blocked),
                 SUM(safe_search), SUM(json_extract(reviews, '$.requested')),
                 SUM(json_extract(reviews, '$.accepted')), SUM(json_extract(reviews, '$.rejected')),
                 SUM(json_extract(reviews, '$.pending'))
             FROM ingest_days
             WHERE day BETWEEN ?1 AND ?2 AND source IN (SELECT value FROM json_each(?3))
             GROUP BY source",
            a,
            b,
        )?;
    }
    if sums.is_empty() {
        return Err(DistrictError::Nothing {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    // Cells per source, likewise.
    {
        let mut read_cells = |sql: &str, a: i64, b: i64| -> rusqlite::Result<()> {
            let mut statement = db.prepare_cached(sql)?;
            let mut rows = statement.query(params![a, b])?;
            while let Some(row) = rows.next()? {
                if let Some(into) = sums.get_mut(&row.get(0)?) {
                    into.cells.push((
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get::<_, i64>(4)?.max(0) as u64,
                    ));
                }
            }
            Ok(())
        };
        if let Some((a, b)) = period.months {
            read_cells(
                "SELECT c.source, l.section, l.key, l.label, SUM(c.count)
                 FROM ingest_month_cells c JOIN ingest_labels l ON l.id = c.label
                 WHERE c.month BETWEEN ?1 AND ?2 GROUP BY c.source, c.label",
                a,
                b,
            )?;
        }
        for &(a, b) in &period.days {
            read_cells(
                "SELECT c.source, l.section, l.key, l.label, SUM(c.count)
                 FROM ingest_cells c JOIN ingest_labels l ON l.id = c.label
                 WHERE c.day BETWEEN ?1 AND ?2 GROUP BY c.source, c.label",
                a,
                b,
            )?;
        }
    }
    // The district's daily series and blocked domains: for the whole
    // office from its roll-ups, for some schools from their sources' days.
    let mut daily: Vec<report::Day> = Vec::new();
    {
        let mut statement;
        let mut rows = if schools.is_none() {
            statement = db.prepare_cached(
                "SELECT day, queries, blocked FROM ingest_office_days
                 WHERE day BETWEEN ?1 AND ?2 ORDER BY day",
            )?;
            statement.query(params![first, last])?
        } else {
            statement = db.prepare_cached(
                "SELECT day, SUM(queries), SUM(blocked) FROM ingest_days
                 WHERE day BETWEEN ?1 AND ?2 AND source IN (SELECT value FROM json_each(?3))
                 GROUP BY day ORDER BY day",
            )?;
            statement.query(params![first, last, ids])?
        };
        while let Some(row) = rows.next()? {
            daily.push(report::Day {
                date: day_text(row.get(0)?),
                queries: report::Count::Exact(row.get::<_, i64>(1)?.max(0) as u64),
                blocked: report::Count::Exact(row.get::<_, i64>(2)?.max(0) as u64),
            });
        }
    }
    let mut domains: std::collections::HashMap<String, u64> = Default::default();
    {
        // `sources`: the wanted sources for a query by source (?3).
        let mut read_domains =
            |sql: &str, a: i64, b: i64, sources: Option<&str>| -> rusqlite::Result<()> {
                let mut statement = db.prepare_cached(sql)?;
                let mut rows = match sources {
                    Some(ids) => statement.query(params![a, b, ids])?,
                    None => statement.query(params![a, b])?,
                };
                while let Some(row) = rows.next()? {
                    *domains.entry(row.get(0)?).or_default() += row.get::<_, i64>(1)?.max(0) as u64;
                }
                Ok(())
            };
        // Summed by domain id first, named after.
        let named = |sum: &str| {
            format!(
                "SELECT n.name, s.count FROM ({sum}) s JOIN ingest_domain_names n ON n.id = s.domain"
            )
        };
        if schools.is_none() {
            if let Some((a, b)) = period.months {
                read_domains(
                    &named(
                        "SELECT domain, SUM(count) AS count FROM ingest_month_domains
                         WHERE month BETWEEN ?1 AND ?2 GROUP BY domain",
                    ),
                    a,
                    b,
                    None,
                )?;
            }
            for &(a, b) in &period.days {
                read_domains(
                    &named(
                        "SELECT domain, SUM(count) AS count FROM ingest_office_day_domains
                         WHERE day BETWEEN ?1 AND ?2 GROUP BY domain",
                    ),
                    a,
                    b,
                    None,
                )?;
            }
        } else {
            read_domains(
                &named(
                    "SELECT domain, SUM(count) AS count FROM ingest_domains
                     WHERE source IN (SELECT value FROM json_each(?3)) AND day BETWEEN ?1 AND ?2
                     GROUP BY domain",
                ),
                first,
                last,
                Some(&ids),
            )?;
        }
    }
    // Each source's latest kept day in the period: the school's name, time
    // zone and k as it last sent them.
    let mut latest: std::collections::HashMap<i64, (i64, String, String, u64)> = Default::default();
    {
        let mut statement = db.prepare_cached(
            "SELECT day, school_name, timezone, k FROM ingest_days
             WHERE source = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day DESC LIMIT 1",
        )?;
        for source in sums.keys() {
            let row = statement.query_row(params![source, first, last], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)?.max(0) as u64,
                ))
            })?;
            latest.insert(*source, row);
        }
    }
    // One merge input per school: its nodes summed. The district's daily
    // series and domains go with the first (they are summed by the merge).
    let mut per_school: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
    for source in sums.keys() {
        per_school
            .entry(wanted[source].0.as_str())
            .or_default()
            .push(*source);
    }
    let mut reports = Vec::new();
    for (school, mut sources) in per_school {
        sources.sort_by_key(|s| &wanted[s].1);
        let mut totals = report::Totals::default();
        let mut reviews = report::Reviews::default();
        let mut cells = Vec::new();
        let mut source_list = Vec::new();
        for source in &sources {
            let s = &sums[source];
            totals.queries += s.totals.queries;
            totals.allowed += s.totals.allowed;
            totals.blocked += s.totals.blocked;
            totals.safe_search += s.totals.safe_search;
            reviews.requested += s.reviews.requested;
            reviews.accepted += s.reviews.accepted;
            reviews.rejected += s.reviews.rejected;
            reviews.pending += s.reviews.pending;
            cells.extend(s.cells.iter().cloned());
            let (a, b) = s.span.unwrap_or((first, last));
            source_list.push(report::Source {
                database: wanted[source].1.clone(),
                school: school.to_string(),
                from: day_text(a),
                to: day_text(b),
            });
        }
        let newest = sources
            .iter()
            .max_by_key(|s| latest[s].0)
            .expect("a school has a source");
        let (_, name, timezone, k) = &latest[newest];
        let first_input = reports.is_empty();
        reports.push(rebuilt(
            school,
            name,
            timezone,
            *k,
            from,
            to,
            totals,
            reviews,
            &cells,
            if first_input {
                std::mem::take(&mut daily)
            } else {
                Vec::new()
            },
            if first_input {
                std::mem::take(&mut domains)
                    .into_iter()
                    .map(|(domain, count)| report::DomainCount { domain, count })
                    .collect()
            } else {
                Vec::new()
            },
            source_list,
            lists_of(db, *newest),
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

#[cfg(test)]
mod tests;
