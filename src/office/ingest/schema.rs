//! The office's tables of received inputs and their roll-ups, created on
//! first use, and the batch that adds kept days to the roll-ups.
//!
//! Uses: nothing of the crate (SQLite only). Used by: `office::ingest`'s
//! other files, `office::district`, `office::dashboard`.

use rusqlite::Connection;

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

pub(crate) fn ensure_schema(db: &Connection) -> rusqlite::Result<()> {
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

/// The calendar month of a day number column, in SQL.
const MONTH_SQL: &str = "((CAST(strftime('%Y', {day} * 86400, 'unixepoch') AS INTEGER) - 1970) * 12
    + CAST(strftime('%m', {day} * 86400, 'unixepoch') AS INTEGER) - 1)";

/// Adds the queued days to the roll-ups, in one transaction that also
/// empties the queue. Called every [`ROLLUP_BATCH`] kept days and before
/// a report reads the roll-ups.
pub(crate) fn flush_rollups(db: &Connection) -> rusqlite::Result<()> {
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
pub(crate) fn rebuild_rollups(db: &Connection) -> rusqlite::Result<()> {
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
