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
//! What was kept is read back by [`super::district`].
//!
//! Uses: `stats` (the report types, signatures). Used by: `web`
//! (`POST /api/v1/ingest`), `office::district`.

use crate::stats::report::{self, Report, Stage};
use crate::stats::sign::{self, SignedReport};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The office's tables of received inputs (created on first use). The
/// numbers are kept per school, node and day in integer-keyed tables, so a
/// province's year fits the office's disk (docs/performance.md, "Office
/// ingest"); the signed input itself is kept, compressed, for
/// [`RAW_INPUT_DAYS`] for audits and then dropped.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ingest_sources (
    id INTEGER PRIMARY KEY,
    school TEXT NOT NULL,
    node TEXT NOT NULL,            -- the sending database's id
    UNIQUE (school, node)
);
CREATE TABLE IF NOT EXISTS ingest_days (
    source INTEGER NOT NULL,
    day INTEGER NOT NULL,          -- the school's local date, days since 1970-01-01
    received_at INTEGER NOT NULL,  -- Unix time
    sha256 TEXT NOT NULL,          -- of the signed input as received
    school_name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    k INTEGER NOT NULL,
    queries INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    safe_search INTEGER NOT NULL,
    reviews TEXT NOT NULL,         -- JSON
    PRIMARY KEY (source, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ingest_days_by_day ON ingest_days (day, source);
-- The signed inputs as received (deflate), for RAW_INPUT_DAYS: audits.
CREATE TABLE IF NOT EXISTS ingest_raw (
    source INTEGER NOT NULL,
    day INTEGER NOT NULL,
    input BLOB NOT NULL,
    PRIMARY KEY (source, day)
);
CREATE INDEX IF NOT EXISTS ingest_raw_by_day ON ingest_raw (day);
CREATE TABLE IF NOT EXISTS ingest_labels (
    id INTEGER PRIMARY KEY,
    section INTEGER NOT NULL,      -- 0 blocked by category, 1 blocked by band
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    UNIQUE (section, key, label)
);
CREATE TABLE IF NOT EXISTS ingest_cells (
    day INTEGER NOT NULL,
    source INTEGER NOT NULL,
    label INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, source, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_domain_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS ingest_domains (
    day INTEGER NOT NULL,
    source INTEGER NOT NULL,
    domain INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, source, domain)
) WITHOUT ROWID;
-- The list versions and takedowns of each node's latest day.
CREATE TABLE IF NOT EXISTS ingest_lists (
    source INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,
    lists TEXT NOT NULL,
    takedowns TEXT NOT NULL
);
";

/// How long the signed input itself is kept beside its numbers.
pub const RAW_INPUT_DAYS: i64 = 35;
/// Blocked domains kept per school, node and day (the most blocked): a
/// district's top domains are summed from these.
pub const DOMAINS_PER_DAY: usize = 32;

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
    ensure_schema(db)?;
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
    let raw = serde_json::to_vec(&signed).unwrap_or_default();
    let digest = sign::hex(&Sha256::digest(&raw));
    let day_number = day_number(&day);
    let source = source_id(db, &school, &node)?;
    let kept: Option<String> = db
        .query_row(
            "SELECT sha256 FROM ingest_days WHERE source = ?1 AND day = ?2",
            params![source, day_number],
            |row| row.get(0),
        )
        .optional()?;
    let stored = match kept {
        Some(kept) if kept == digest => Stored::Duplicate,
        Some(_) => return Ok(Err(Refused::Conflict { school, node, day })),
        None => {
            store(db, source, day_number, &digest, &raw, &signed.report)?;
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
    // The school's own key first (one file read); the directory is listed
    // only for a school whose replicas sign with keys of their own.
    let (_, own) = sign::key_paths(key_dir, &school.id);
    if own.exists() && sign::verify(signed, Some(&own)).is_ok() {
        return Ok((school.id.clone(), node, day.to_string()));
    }
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

pub(super) fn ensure_schema(db: &Connection) -> rusqlite::Result<()> {
    // A cached probe after the first call; the tables and a larger page
    // cache (the ingest tables are read on every insert) on the first.
    if db
        .prepare_cached("SELECT 1 FROM ingest_lists LIMIT 0")
        .is_ok()
    {
        return Ok(());
    }
    db.execute_batch(SCHEMA)?;
    db.execute_batch("PRAGMA cache_size = -65536;")
}

/// Days since 1970-01-01 of a checked `YYYY-MM-DD`.
pub(super) fn day_number(day: &str) -> i64 {
    day.parse::<jiff::civil::Date>()
        .map(|d| {
            i64::from(
                d.since(jiff::civil::date(1970, 1, 1))
                    .map_or(0, |s| s.get_days()),
            )
        })
        .unwrap_or(0)
}

pub(super) fn day_text(number: i64) -> String {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(number))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn source_id(db: &Connection, school: &str, node: &str) -> rusqlite::Result<i64> {
    db.execute(
        "INSERT OR IGNORE INTO ingest_sources (school, node) VALUES (?1, ?2)",
        params![school, node],
    )?;
    db.query_row(
        "SELECT id FROM ingest_sources WHERE school = ?1 AND node = ?2",
        params![school, node],
        |row| row.get(0),
    )
}

/// The id of a label (most are known: one lookup), added when new.
fn label_id(db: &Connection, section: i64, key: &str, label: &str) -> rusqlite::Result<i64> {
    let mut select = db.prepare_cached(
        "SELECT id FROM ingest_labels WHERE section = ?1 AND key = ?2 AND label = ?3",
    )?;
    if let Some(id) = select
        .query_row(params![section, key, label], |row| row.get(0))
        .optional()?
    {
        return Ok(id);
    }
    let mut insert = db.prepare_cached(
        "INSERT INTO ingest_labels (section, key, label) VALUES (?1, ?2, ?3) RETURNING id",
    )?;
    insert.query_row(params![section, key, label], |row| row.get(0))
}

/// The id of a domain name, added when new.
fn domain_id(db: &Connection, name: &str) -> rusqlite::Result<i64> {
    let mut select = db.prepare_cached("SELECT id FROM ingest_domain_names WHERE name = ?1")?;
    if let Some(id) = select
        .query_row(params![name], |row| row.get(0))
        .optional()?
    {
        return Ok(id);
    }
    let mut insert =
        db.prepare_cached("INSERT INTO ingest_domain_names (name) VALUES (?1) RETURNING id")?;
    insert.query_row(params![name], |row| row.get(0))
}

/// Keeps one checked input: its numbers, and the signed input compressed.
fn store(
    db: &Connection,
    source: i64,
    day: i64,
    digest: &str,
    raw: &[u8],
    report: &Report,
) -> rusqlite::Result<()> {
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = deflate.write_all(raw);
    let compressed = deflate.finish().unwrap_or_default();
    let exact = |count: &report::Count| count.exact().unwrap_or(0) as i64;
    let transaction = db.unchecked_transaction()?;
    transaction.execute(
        "INSERT INTO ingest_days (source, day, received_at, sha256, school_name, timezone, k,
             queries, allowed, blocked, safe_search, reviews)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            source,
            day,
            jiff::Timestamp::now().as_second(),
            digest,
            report.schools[0].name,
            report.timezone,
            report.k_anonymity as i64,
            report.totals.queries as i64,
            report.totals.allowed as i64,
            report.totals.blocked as i64,
            report.totals.safe_search as i64,
            serde_json::to_string(&report.reviews).unwrap_or_default(),
        ],
    )?;
    transaction.execute(
        "INSERT OR REPLACE INTO ingest_raw (source, day, input) VALUES (?1, ?2, ?3)",
        params![source, day, compressed],
    )?;
    {
        let mut cell = transaction.prepare_cached(
            "INSERT OR REPLACE INTO ingest_cells (day, source, label, count) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (section, cells) in [
            (0, &report.blocked_by_category),
            (1, &report.blocked_by_band),
        ] {
            for c in cells {
                let label = label_id(&transaction, section, &c.key, &c.label)?;
                cell.execute(params![day, source, label, exact(&c.count)])?;
            }
        }
        let mut domains: Vec<&report::DomainCount> = report.top_blocked_domains.iter().collect();
        domains.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
        let mut insert = transaction.prepare_cached(
            "INSERT OR REPLACE INTO ingest_domains (day, source, domain, count) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for d in domains.into_iter().take(DOMAINS_PER_DAY) {
            let id = domain_id(&transaction, &d.domain)?;
            insert.execute(params![day, source, id, d.count as i64])?;
        }
    }
    transaction.execute(
        "INSERT INTO ingest_lists (source, day, lists, takedowns) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source) DO UPDATE SET day = excluded.day, lists = excluded.lists, takedowns = excluded.takedowns
         WHERE excluded.day >= ingest_lists.day",
        params![
            source,
            day,
            serde_json::to_string(&report.lists).unwrap_or_default(),
            serde_json::to_string(&report.takedowns).unwrap_or_default(),
        ],
    )?;
    // Inputs leaving the audit window (the raw table holds only the
    // window, so this touches a few rows at most).
    transaction.execute(
        "DELETE FROM ingest_raw WHERE day < ?1",
        params![day - RAW_INPUT_DAYS],
    )?;
    transaction.commit()
}
