//! Building a school's report from the statistics database: the hourly
//! roll-ups, top blocked domains, reviews, list versions and takedowns of a
//! period of local dates, gathered exactly and then published.

use super::publish::{Counts, Tally, publish};
use super::types::{
    ListVersion, REPORT_FORMAT, Report, Reviews, SchoolRef, Source, Stage, TakedownInForce, Totals,
};
use crate::config::{Config, School};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

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
    let sources = crate::stats::store::database_id(db)
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
