//! The office's side of the statistics upload: each school node's signed
//! merge input for one closed day is checked and kept in the office's
//! database; district reports are merged from what was kept.
//!
//! An input is accepted when
//! - it is a merge input (`stage = "merge-input"`) of exactly one school,
//!   the school of the token that sent it, for exactly one day;
//! - that day is not in the future (one day of slack for time zones);
//! - it is signed with one of the school's registered public keys
//!   (`<stats.key_dir>/<school>.pub` or `<school>.<replica>.pub`);
//! - it names the database (node) its rows come from.
//!
//! The same school, node and day is kept once: the identical input again is
//! answered "duplicate" (a node that did not hear the first answer sends
//! it again), a different input for a day already kept is refused as a
//! conflict (a replayed or forged second version never replaces the first).
//!
//! Uses: `stats` (the report types, signatures, merge). Used by: `web`
//! (`POST /api/v1/ingest`, district reports), `cli` (district reports).

use crate::stats::report::{self, Report, Stage};
use crate::stats::sign::{self, SignedReport};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The office's table of received inputs (created on first use).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ingested (
    school TEXT NOT NULL,
    node TEXT NOT NULL,            -- the sending database's id
    day TEXT NOT NULL,             -- the school's local date, YYYY-MM-DD
    received_at INTEGER NOT NULL,  -- Unix time
    sha256 TEXT NOT NULL,          -- of the signed input as received
    input TEXT NOT NULL,           -- the signed merge input, JSON
    PRIMARY KEY (school, node, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ingested_by_day ON ingested (day, school);
";

/// What the office received, for `/metrics` (`edudns_ingest_total`).
#[derive(Debug, Default)]
pub struct IngestFigures {
    pub stored: std::sync::atomic::AtomicU64,
    pub duplicate: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
}

/// Why an input was refused; the text is the API's answer.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a merge input: send `edudns report --for-merge` output (stage \"merge-input\")")]
    NotMergeInput,
    #[error("the input must hold exactly one school, it holds {0}")]
    NotOneSchool(usize),
    #[error("a token of school {token} cannot send statistics of school {input}")]
    OtherSchool { token: String, input: String },
    #[error("the input must cover exactly one day, it covers {from} to {to}")]
    NotOneDay { from: String, to: String },
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("{day} is in the future (today is {today})")]
    Future { day: String, today: String },
    #[error("the input does not name the database its rows come from (sources)")]
    NoSource,
    #[error("signature refused: {0}")]
    Signature(String),
    #[error(
        "school {school}, node {node}, {day} was received already with other content: the first copy is kept"
    )]
    Conflict {
        school: String,
        node: String,
        day: String,
    },
}

/// What became of an accepted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// The same input was kept already: counted once.
    Duplicate,
}

/// One kept input's identity, for the answer and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub school: String,
    pub node: String,
    pub day: String,
    pub stored: Stored,
}

/// Checks `body` (a signed merge input, as JSON) sent with a token of
/// `token_school`, and keeps it. `today` is the office's date.
pub fn accept(
    db: &Connection,
    body: &[u8],
    token_school: &str,
    key_dir: &Path,
    today: jiff::civil::Date,
) -> Result<Result<Receipt, Refused>, rusqlite::Error> {
    db.execute_batch(SCHEMA)?;
    let signed: SignedReport = match serde_json::from_slice(body) {
        Ok(signed) => signed,
        Err(e) => {
            return Ok(Err(Refused::Signature(format!(
                "the body is not a signed report: {e}"
            ))));
        }
    };
    let checked = match check(&signed, token_school, key_dir, today) {
        Ok(checked) => checked,
        Err(refused) => return Ok(Err(refused)),
    };
    let (school, node, day) = checked;
    let digest = hex(&Sha256::digest(
        serde_json::to_vec(&signed).unwrap_or_default(),
    ));
    let kept: Option<String> = db
        .query_row(
            "SELECT sha256 FROM ingested WHERE school = ?1 AND node = ?2 AND day = ?3",
            params![school, node, day],
            |row| row.get(0),
        )
        .optional()?;
    let stored = match kept {
        Some(kept) if kept == digest => Stored::Duplicate,
        Some(_) => return Ok(Err(Refused::Conflict { school, node, day })),
        None => {
            db.execute(
                "INSERT INTO ingested (school, node, day, received_at, sha256, input)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    school,
                    node,
                    day,
                    jiff::Timestamp::now().as_second(),
                    digest,
                    serde_json::to_string(&signed).unwrap_or_default()
                ],
            )?;
            Stored::New
        }
    };
    Ok(Ok(Receipt {
        school,
        node,
        day,
        stored,
    }))
}

/// (school, node, day) of a valid input, or why it is refused.
fn check(
    signed: &SignedReport,
    token_school: &str,
    key_dir: &Path,
    today: jiff::civil::Date,
) -> Result<(String, String, String), Refused> {
    let report = &signed.report;
    if report.stage != Stage::MergeInput {
        return Err(Refused::NotMergeInput);
    }
    let [school] = report.schools.as_slice() else {
        return Err(Refused::NotOneSchool(report.schools.len()));
    };
    if school.id != token_school {
        return Err(Refused::OtherSchool {
            token: token_school.to_string(),
            input: school.id.clone(),
        });
    }
    if report.from != report.to {
        return Err(Refused::NotOneDay {
            from: report.from.clone(),
            to: report.to.clone(),
        });
    }
    let day: jiff::civil::Date = report
        .from
        .parse()
        .map_err(|_| Refused::BadDate(report.from.clone()))?;
    if day > today.tomorrow().unwrap_or(today) {
        return Err(Refused::Future {
            day: day.to_string(),
            today: today.to_string(),
        });
    }
    let node = match report.sources.as_slice() {
        [source] if source.school == school.id && !source.database.is_empty() => {
            source.database.clone()
        }
        _ => return Err(Refused::NoSource),
    };
    let keys = sign::school_public_keys(key_dir, &school.id)
        .map_err(|e| Refused::Signature(e.to_string()))?;
    if keys.is_empty() {
        return Err(Refused::Signature(format!(
            "no public key of school {} is registered at the office ({}/{}.pub)",
            school.id,
            key_dir.display(),
            school.id
        )));
    }
    sign::verify_any(signed, &keys).map_err(|e| Refused::Signature(e.to_string()))?;
    Ok((school.id.clone(), node, day.to_string()))
}

/// The kept inputs of local days `from..=to`, of `schools` (all when
/// `None`), in (school, node, day) order.
pub fn inputs(
    db: &Connection,
    from: &str,
    to: &str,
    schools: Option<&[String]>,
) -> Result<Vec<Report>, rusqlite::Error> {
    db.execute_batch(SCHEMA)?;
    let mut statement = db.prepare(
        "SELECT school, input FROM ingested WHERE day >= ?1 AND day <= ?2 ORDER BY school, node, day",
    )?;
    let rows = statement.query_map(params![from, to], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut reports = Vec::new();
    for row in rows {
        let (school, input) = row?;
        if schools.is_some_and(|wanted| !wanted.contains(&school)) {
            continue;
        }
        // Checked when it was kept; a row that no longer reads is skipped
        // rather than failing every report.
        if let Ok(signed) = serde_json::from_str::<SignedReport>(&input) {
            reports.push(signed.report);
        }
    }
    Ok(reports)
}

/// The district report of local days `from..=to` for `schools` (all when
/// `None`): the kept inputs merged, k-anonymity applied once to the sums.
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
    let reports = inputs(db, from, to, schools)?;
    if reports.is_empty() {
        return Err(DistrictError::Nothing {
            from: from.to_string(),
            to: to.to_string(),
        });
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
    db.execute_batch(SCHEMA)?;
    let mut statement = db.prepare(
        "SELECT school, node, MAX(day), MAX(received_at) FROM ingested GROUP BY school, node ORDER BY school, node",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })?;
    rows.collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
