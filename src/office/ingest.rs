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
-- One B-tree keyed by day, then source (id = day << 32 | source): a day
-- is one seek, the days leaving the window one range.
CREATE TABLE IF NOT EXISTS ingest_raw_inputs (
    id INTEGER PRIMARY KEY,
    input BLOB NOT NULL
);
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
-- Keyed by source first: a school's days are read with one seek.
CREATE TABLE IF NOT EXISTS ingest_domains (
    source INTEGER NOT NULL,
    day INTEGER NOT NULL,
    domain INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, day, domain)
) WITHOUT ROWID;
-- The list versions and takedowns of each node's latest day.
CREATE TABLE IF NOT EXISTS ingest_lists (
    source INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,
    lists TEXT NOT NULL,
    takedowns TEXT NOT NULL
);
-- Roll-ups: per source and calendar month (months since 1970-01), and for
-- the whole office per month and per day (domains, the daily series). A
-- district report of a year reads twelve months instead of 365 days
-- (docs/performance.md, Office ingest). A kept day is queued in
-- ingest_rollup_queue in its own transaction and added to the roll-ups
-- with the other queued days in one batch (every ROLLUP_BATCH days, and
-- before any report reads them), queue rows deleted in the same
-- transaction: each day is summed exactly once, and a batch writes each
-- roll-up page once instead of once per day.
CREATE TABLE IF NOT EXISTS ingest_rollup_queue (
    seq INTEGER PRIMARY KEY,
    source INTEGER NOT NULL,
    day INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_month_days (
    source INTEGER NOT NULL,
    month INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    queries INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    safe_search INTEGER NOT NULL,
    requested INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    PRIMARY KEY (source, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_month_cells (
    month INTEGER NOT NULL,
    source INTEGER NOT NULL,
    label INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (month, source, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_month_domains (
    month INTEGER NOT NULL,
    domain INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (month, domain)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_office_days (
    day INTEGER PRIMARY KEY,
    queries INTEGER NOT NULL,
    blocked INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_office_day_domains (
    day INTEGER NOT NULL,
    domain INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, domain)
) WITHOUT ROWID;
";

/// How long the signed input itself is kept beside its numbers.
pub const RAW_INPUT_DAYS: i64 = 35;
/// Blocked domains kept per school, node and day (the most blocked): a
/// district's top domains are summed from these.
pub const DOMAINS_PER_DAY: usize = 32;
/// Kept days added to the roll-ups in one batch.
pub const ROLLUP_BATCH: i64 = 500;

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
    let digest = numbers_digest(&signed.report);
    let day_number = day_number(&day);
    let source = source_id(db, &school, &node)?;
    let kept: Option<String> = db
        .prepare_cached("SELECT sha256 FROM ingest_days WHERE source = ?1 AND day = ?2")?
        .query_row(params![source, day_number], |row| row.get(0))
        .optional()?;
    let stored = match kept {
        Some(kept) if kept == digest => Stored::Duplicate,
        Some(_) => return Ok(Err(Refused::Conflict { school, node, day })),
        None => {
            store(db, source, day_number, &digest, body, &signed.report)?;
            let queued: i64 = db
                .prepare_cached("SELECT MAX(seq) - MIN(seq) + 1 FROM ingest_rollup_queue")?
                .query_row([], |row| row.get::<_, Option<i64>>(0))?
                .unwrap_or(0);
            if queued >= ROLLUP_BATCH {
                flush_rollups(db)?;
            }
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
    // A cached probe after the first call; the tables, what an older
    // database lacks, and the page cache on the first.
    if db
        .prepare_cached("SELECT 1 FROM ingest_office_days LIMIT 0")
        .is_ok()
    {
        return Ok(());
    }
    db.execute_batch(SCHEMA)?;
    let days_without_rollups: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM ingest_days) AND NOT EXISTS (SELECT 1 FROM ingest_month_days)",
        [],
        |row| row.get(0),
    )?;
    if days_without_rollups {
        rebuild_rollups(db)?;
    }
    // The signed inputs of a database from before ingest_raw_inputs.
    let old_raw: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_raw')",
        [],
        |row| row.get(0),
    )?;
    if old_raw {
        db.execute_batch(
            "BEGIN;
             INSERT OR IGNORE INTO ingest_raw_inputs (id, input)
                 SELECT (day << 32) | source, input FROM ingest_raw;
             DROP TABLE ingest_raw;
             COMMIT;",
        )?;
    }
    // 16 MiB: a larger cache made every commit slower (SQLite walks the
    // page cache's hash at the end of each transaction; 64 MiB cost 4 %
    // of ingest against 16 MiB, docs/performance.md "Office ingest").
    db.execute_batch("PRAGMA cache_size = -16384;")
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

/// What makes two inputs "the same day": the counted numbers of the school
/// and node for the day, not when the input was made or signed, nor the list
/// versions and takedowns in force when it was made. A node that did not
/// hear the office's answer and builds the day again (after a restart, with
/// a new `generated_at` and signature) is answered "duplicate", not refused.
pub fn numbers_digest(report: &Report) -> String {
    #[derive(serde::Serialize)]
    struct Numbers<'a> {
        schools: &'a [report::SchoolRef],
        from: &'a str,
        to: &'a str,
        totals: &'a report::Totals,
        blocked_by_category: &'a [report::Cell],
        blocked_by_band: &'a [report::Cell],
        daily: &'a [report::Day],
        top_blocked_domains: &'a [report::DomainCount],
        sources: &'a [report::Source],
    }
    let numbers = Numbers {
        schools: &report.schools,
        from: &report.from,
        to: &report.to,
        totals: &report.totals,
        blocked_by_category: &report.blocked_by_category,
        blocked_by_band: &report.blocked_by_band,
        daily: &report.daily,
        top_blocked_domains: &report.top_blocked_domains,
        sources: &report.sources,
    };
    sign::hex(&Sha256::digest(
        serde_json::to_vec(&numbers).unwrap_or_default(),
    ))
}

fn source_id(db: &Connection, school: &str, node: &str) -> rusqlite::Result<i64> {
    let mut select =
        db.prepare_cached("SELECT id FROM ingest_sources WHERE school = ?1 AND node = ?2")?;
    if let Some(id) = select
        .query_row(params![school, node], |row| row.get(0))
        .optional()?
    {
        return Ok(id);
    }
    db.prepare_cached("INSERT INTO ingest_sources (school, node) VALUES (?1, ?2)")?
        .execute(params![school, node])?;
    Ok(db.last_insert_rowid())
}

/// The key of a kept input in `ingest_raw_inputs`: day, then source.
pub fn raw_id(day: i64, source: i64) -> i64 {
    (day << 32) | (source & 0xffff_ffff)
}

/// The calendar month (months since 1970-01) of a day number.
pub(super) fn month_of(day: i64) -> i64 {
    let date = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(day))
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    (i64::from(date.year()) - 1970) * 12 + i64::from(date.month()) - 1
}

/// The day number of the first day of a month (months since 1970-01).
pub(super) fn month_start(month: i64) -> i64 {
    let year = 1970 + month.div_euclid(12);
    let date = jiff::civil::Date::new(year as i16, (month.rem_euclid(12) + 1) as i8, 1)
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    day_number(&date.to_string())
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
    db.prepare_cached("INSERT INTO ingest_labels (section, key, label) VALUES (?1, ?2, ?3)")?
        .execute(params![section, key, label])?;
    Ok(db.last_insert_rowid())
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
    db.prepare_cached("INSERT INTO ingest_domain_names (name) VALUES (?1)")?
        .execute(params![name])?;
    Ok(db.last_insert_rowid())
}

/// Keeps one checked input: its numbers, their roll-ups, and the signed
/// input as received, compressed.
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
    let t = &report.totals;
    let transaction = db.unchecked_transaction()?;
    transaction
        .prepare_cached(
            "INSERT INTO ingest_days (source, day, received_at, sha256, school_name, timezone, k,
                 queries, allowed, blocked, safe_search, reviews)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            source,
            day,
            jiff::Timestamp::now().as_second(),
            digest,
            report.schools[0].name,
            report.timezone,
            report.k_anonymity as i64,
            t.queries as i64,
            t.allowed as i64,
            t.blocked as i64,
            t.safe_search as i64,
            serde_json::to_string(&report.reviews).unwrap_or_default(),
        ])?;
    transaction
        .prepare_cached("INSERT INTO ingest_rollup_queue (source, day) VALUES (?1, ?2)")?
        .execute(params![source, day])?;
    transaction
        .prepare_cached("INSERT OR REPLACE INTO ingest_raw_inputs (id, input) VALUES (?1, ?2)")?
        .execute(params![raw_id(day, source), compressed])?;
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
            "INSERT OR REPLACE INTO ingest_domains (source, day, domain, count) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for d in domains.into_iter().take(DOMAINS_PER_DAY) {
            let id = domain_id(&transaction, &d.domain)?;
            insert.execute(params![source, day, id, d.count as i64])?;
        }
    }
    transaction
        .prepare_cached(
            "INSERT INTO ingest_lists (source, day, lists, takedowns) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source) DO UPDATE SET day = excluded.day, lists = excluded.lists,
                 takedowns = excluded.takedowns
             WHERE excluded.day >= ingest_lists.day",
        )?
        .execute(params![
            source,
            day,
            serde_json::to_string(&report.lists).unwrap_or_default(),
            serde_json::to_string(&report.takedowns).unwrap_or_default(),
        ])?;
    // Inputs leaving the audit window (the raw table holds only the
    // window, so this touches a few rows at most).
    transaction
        .prepare_cached("DELETE FROM ingest_raw_inputs WHERE id < ?1")?
        .execute(params![raw_id(day - RAW_INPUT_DAYS, 0)])?;
    transaction.commit()
}

/// The calendar month of a day number column, in SQL.
const MONTH_SQL: &str = "((CAST(strftime('%Y', {day} * 86400, 'unixepoch') AS INTEGER) - 1970) * 12
    + CAST(strftime('%m', {day} * 86400, 'unixepoch') AS INTEGER) - 1)";

/// Adds the queued days to the roll-ups, in one transaction that also
/// empties the queue. Called every [`ROLLUP_BATCH`] kept days and before
/// a report reads the roll-ups.
pub(super) fn flush_rollups(db: &Connection) -> rusqlite::Result<()> {
    let queued: bool = db
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ingest_rollup_queue)")?
        .query_row([], |row| row.get(0))?;
    if !queued {
        return Ok(());
    }
    let month = |day: &str| MONTH_SQL.replace("{day}", day);
    // `WHERE true`: SQLite's rule for an upsert from a SELECT.
    let batch = format!(
        "INSERT INTO ingest_month_days (source, month, first_day, last_day, queries, allowed,
             blocked, safe_search, requested, accepted, rejected, pending)
         SELECT d.source, {dm}, MIN(d.day), MAX(d.day), SUM(d.queries), SUM(d.allowed),
             SUM(d.blocked), SUM(d.safe_search),
             SUM(json_extract(d.reviews, '$.requested')), SUM(json_extract(d.reviews, '$.accepted')),
             SUM(json_extract(d.reviews, '$.rejected')), SUM(json_extract(d.reviews, '$.pending'))
         FROM ingest_rollup_queue q JOIN ingest_days d ON d.source = q.source AND d.day = q.day
         WHERE true GROUP BY d.source, {dm}
         ON CONFLICT (source, month) DO UPDATE SET
             first_day = MIN(first_day, excluded.first_day),
             last_day = MAX(last_day, excluded.last_day),
             queries = queries + excluded.queries, allowed = allowed + excluded.allowed,
             blocked = blocked + excluded.blocked, safe_search = safe_search + excluded.safe_search,
             requested = requested + excluded.requested, accepted = accepted + excluded.accepted,
             rejected = rejected + excluded.rejected, pending = pending + excluded.pending;
         INSERT INTO ingest_office_days (day, queries, blocked)
         SELECT d.day, SUM(d.queries), SUM(d.blocked)
         FROM ingest_rollup_queue q JOIN ingest_days d ON d.source = q.source AND d.day = q.day
         WHERE true GROUP BY d.day
         ON CONFLICT (day) DO UPDATE SET queries = queries + excluded.queries,
             blocked = blocked + excluded.blocked;
         INSERT INTO ingest_month_cells (month, source, label, count)
         SELECT {cm}, c.source, c.label, SUM(c.count)
         FROM ingest_rollup_queue q JOIN ingest_cells c ON c.day = q.day AND c.source = q.source
         WHERE true GROUP BY {cm}, c.source, c.label
         ON CONFLICT (month, source, label) DO UPDATE SET count = count + excluded.count;
         INSERT INTO ingest_office_day_domains (day, domain, count)
         SELECT m.day, m.domain, SUM(m.count)
         FROM ingest_rollup_queue q JOIN ingest_domains m ON m.source = q.source AND m.day = q.day
         WHERE true GROUP BY m.day, m.domain
         ON CONFLICT (day, domain) DO UPDATE SET count = count + excluded.count;
         INSERT INTO ingest_month_domains (month, domain, count)
         SELECT {mm}, m.domain, SUM(m.count)
         FROM ingest_rollup_queue q JOIN ingest_domains m ON m.source = q.source AND m.day = q.day
         WHERE true GROUP BY {mm}, m.domain
         ON CONFLICT (month, domain) DO UPDATE SET count = count + excluded.count;
         DELETE FROM ingest_rollup_queue;",
        dm = month("d.day"),
        cm = month("c.day"),
        mm = month("m.day"),
    );
    let transaction = db.unchecked_transaction()?;
    transaction.execute_batch(&batch)?;
    transaction.commit()
}

/// Rebuilds the roll-ups from the kept days: for a database kept before
/// they existed (run once, by [`ensure_schema`], when the roll-ups are
/// empty and days are not).
pub(super) fn rebuild_rollups(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch(
        "BEGIN;
         DELETE FROM ingest_month_days; DELETE FROM ingest_month_cells;
         DELETE FROM ingest_month_domains; DELETE FROM ingest_office_days;
         DELETE FROM ingest_office_day_domains; DELETE FROM ingest_rollup_queue;
         INSERT INTO ingest_rollup_queue (source, day) SELECT source, day FROM ingest_days;
         COMMIT;",
    )?;
    flush_rollups(db)
}
