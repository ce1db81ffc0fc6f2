//! Durable statistics in SQLite (WAL): hourly roll-ups per school, band,
//! category and verdict; the top blocked domains per school per day; the
//! list versions loaded; review requests; the database's own id. Written by one flusher task every
//! `stats.flush_interval_secs` and at shutdown, each flush one transaction,
//! so `kill -9` loses at most the last interval.

use super::{CounterKey, Stats};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Schema, created on open (idempotent).
const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS hourly (
    hour INTEGER NOT NULL,          -- Unix time / 3600 (UTC)
    school TEXT NOT NULL,
    band TEXT NOT NULL,
    category TEXT NOT NULL,
    verdict TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (hour, school, band, category, verdict)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS top_blocked (
    day TEXT NOT NULL,              -- the school's local date, YYYY-MM-DD
    school TEXT NOT NULL,
    domain TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, school, domain)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_versions (
    loaded_at INTEGER NOT NULL,     -- Unix time
    category TEXT NOT NULL,
    list TEXT NOT NULL,
    entries INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS list_versions_by_list ON list_versions (category, list, loaded_at);
-- 'database_id': random, made when the database is created; reports name
-- it so that a merge can refuse to count the same rows twice.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
-- Only written when privacy.incident_log_days > 0; rows older than that are deleted.
CREATE TABLE IF NOT EXISTS incidents (
    at INTEGER NOT NULL,
    school TEXT NOT NULL,
    band TEXT NOT NULL,
    client TEXT NOT NULL,
    domain TEXT NOT NULL,
    category TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    day TEXT NOT NULL,
    school TEXT NOT NULL,
    band TEXT NOT NULL,
    domain TEXT NOT NULL,
    category TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | accepted | rejected
    decided_at INTEGER
);
-- One request per domain and school per day.
CREATE UNIQUE INDEX IF NOT EXISTS reviews_once ON reviews (day, school, domain);
";

/// Errors of the durable store, naming the database file.
#[derive(Debug, thiserror::Error)]
#[error("statistics database {path}: {source}")]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// The open database and what has been flushed so far.
pub struct Store {
    path: PathBuf,
    connection: Connection,
    /// Counter values already written, so each flush adds only the delta.
    flushed: HashMap<CounterKey, u64>,
}

impl Store {
    /// Opens (creating if needed) the database and its parent directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let wrap = |source| StoreError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(wrap)?;
        connection.execute_batch(SCHEMA).map_err(wrap)?;
        connection
            .execute_batch(crate::takedown::SCHEMA)
            .map_err(wrap)?;
        connection
            .execute_batch(crate::admin::allowances::SCHEMA)
            .map_err(wrap)?;
        crate::admin::audit::migrate(&connection).map_err(wrap)?;
        connection
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))))",
                [],
            )
            .map_err(wrap)?;
        Ok(Store {
            path: path.to_path_buf(),
            connection,
            flushed: HashMap::new(),
        })
    }

    fn wrap(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Adds what was counted since the last flush to the hour of `now`, and
    /// the drained top-k counts to each school's local `day`.
    pub fn flush(
        &mut self,
        stats: &Stats,
        now_unix: i64,
        day_of_school: &dyn Fn(&str) -> String,
    ) -> Result<usize, StoreError> {
        let hour = now_unix.div_euclid(3600);
        let values = stats.counter_values();
        let top = stats.drain_top_blocked();
        let tx = self.connection.transaction().map_err(|e| StoreError {
            path: self.path.clone(),
            source: e,
        })?;
        let mut rows = 0;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO hourly (hour, school, band, category, verdict, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (hour, school, band, category, verdict) DO UPDATE SET count = count + excluded.count",
                )
                .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            for (key, value) in &values {
                let before = self.flushed.get(key).copied().unwrap_or(0);
                let delta = value.saturating_sub(before);
                if delta == 0 {
                    continue;
                }
                upsert
                    .execute(params![hour, key.0, key.1, key.2, key.3, delta as i64])
                    .map_err(|e| StoreError {
                        path: self.path.clone(),
                        source: e,
                    })?;
                rows += 1;
            }
            let mut top_upsert = tx
                .prepare_cached(
                    "INSERT INTO top_blocked (day, school, domain, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (day, school, domain) DO UPDATE SET count = count + excluded.count",
                )
                .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            for (school, domain, count) in &top {
                top_upsert
                    .execute(params![
                        day_of_school(school),
                        school,
                        domain.as_ref(),
                        *count as i64
                    ])
                    .map_err(|e| StoreError {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
            let mut incident = tx
                .prepare_cached("INSERT INTO incidents (at, school, band, client, domain, category) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(|e| StoreError { path: self.path.clone(), source: e })?;
            for i in stats.drain_incidents() {
                incident
                    .execute(params![
                        i.at, i.school, i.band, i.client, i.domain, i.category
                    ])
                    .map_err(|e| StoreError {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
        }
        tx.commit().map_err(|e| StoreError {
            path: self.path.clone(),
            source: e,
        })?;
        for (key, value) in values {
            self.flushed.insert(key, value);
        }
        Ok(rows)
    }

    /// Deletes incidents older than `days` (all of them when the log is off).
    pub fn expire_incidents(&self, now_unix: i64, days: u32) -> Result<usize, StoreError> {
        self.connection
            .execute(
                "DELETE FROM incidents WHERE at < ?1",
                params![now_unix - i64::from(days) * 86_400],
            )
            .map_err(|e| self.wrap(e))
    }

    /// Deletes roll-ups older than `days` (and top-k rows likewise), and the
    /// list versions loaded before then except, for each list, the last one
    /// of them: it was still in force when the kept period starts, and a
    /// report of that period names it.
    pub fn apply_retention(&self, now_unix: i64, days: u32) -> Result<(), StoreError> {
        let oldest_hour = now_unix.div_euclid(3600) - i64::from(days) * 24;
        self.connection
            .execute("DELETE FROM hourly WHERE hour < ?1", params![oldest_hour])
            .map_err(|e| self.wrap(e))?;
        let oldest_day = jiff::Timestamp::from_second(oldest_hour * 3600)
            .map(|t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .date()
                    .to_string()
            })
            .unwrap_or_default();
        self.connection
            .execute(
                "DELETE FROM top_blocked WHERE day < ?1",
                params![oldest_day],
            )
            .map_err(|e| self.wrap(e))?;
        self.connection
            .execute(
                "DELETE FROM list_versions AS old WHERE old.loaded_at < ?1 AND EXISTS (
                     SELECT 1 FROM list_versions AS later
                     WHERE later.category = old.category AND later.list = old.list
                       AND later.loaded_at < ?1
                       AND (later.loaded_at > old.loaded_at
                            OR (later.loaded_at = old.loaded_at AND later.rowid > old.rowid)))",
                params![oldest_hour * 3600],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Records the lists of a newly installed snapshot: a row for each list
    /// whose content (SHA-256) differs from its last recorded version, so
    /// reloads that change nothing add nothing. Returns the rows added.
    pub fn record_lists(
        &self,
        now_unix: i64,
        lists: &[(String, String, usize, String)],
    ) -> Result<usize, StoreError> {
        let mut added = 0;
        for (category, list, entries, sha256) in lists {
            added += self
                .connection
                .execute(
                    "INSERT INTO list_versions (loaded_at, category, list, entries, sha256)
                     SELECT ?1, ?2, ?3, ?4, ?5
                     WHERE (SELECT sha256 FROM list_versions WHERE category = ?2 AND list = ?3
                            ORDER BY loaded_at DESC, rowid DESC LIMIT 1) IS NOT ?5",
                    params![now_unix, category, list, *entries as i64, sha256],
                )
                .map_err(|e| self.wrap(e))?;
        }
        Ok(added)
    }
}

/// The random id of the statistics database behind `db` (made when it was
/// created), or `None` for a database without one.
pub fn database_id(db: &Connection) -> Option<String> {
    db.query_row(
        "SELECT value FROM meta WHERE key = 'database_id'",
        [],
        |row| row.get(0),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(store: &Store) -> Vec<(i64, String, String)> {
        store
            .connection()
            .prepare("SELECT loaded_at, list, sha256 FROM list_versions ORDER BY loaded_at, list")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn list(name: &str, sha256: &str) -> (String, String, usize, String) {
        ("gambling".into(), name.into(), 3, sha256.into())
    }

    #[test]
    fn a_list_version_is_recorded_only_when_the_list_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.sqlite");
        let store = Store::open(&path).unwrap();
        let id = database_id(store.connection()).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(
            store
                .record_lists(100, &[list("a", "sha-1"), list("b", "sha-2")])
                .unwrap(),
            2
        );
        // Reloads (a console edit elsewhere, the file watcher) with the same lists.
        for at in [200, 300] {
            assert_eq!(
                store
                    .record_lists(at, &[list("a", "sha-1"), list("b", "sha-2")])
                    .unwrap(),
                0
            );
        }
        assert_eq!(
            store
                .record_lists(400, &[list("a", "sha-3"), list("b", "sha-2")])
                .unwrap(),
            1
        );
        // Back to the first content is a change too.
        assert_eq!(store.record_lists(500, &[list("a", "sha-1")]).unwrap(), 1);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            versions(&store),
            vec![
                (100, "a".into(), "sha-1".into()),
                (100, "b".into(), "sha-2".into()),
                (400, "a".into(), "sha-3".into()),
                (500, "a".into(), "sha-1".into()),
            ]
        );
        assert_eq!(
            database_id(store.connection()).unwrap(),
            id,
            "the id stays with the file"
        );
        assert_ne!(
            database_id(
                Store::open(&dir.path().join("other.sqlite"))
                    .unwrap()
                    .connection()
            )
            .unwrap(),
            id
        );
    }

    #[test]
    fn retention_deletes_old_list_versions_but_the_one_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("stats.sqlite")).unwrap();
        const DAY: i64 = 86_400;
        let now = 1_000 * DAY;
        // Retention 40 days: everything before day 960 goes, except what
        // was in force on day 960.
        store
            .record_lists(900 * DAY, &[list("a", "a-1"), list("b", "b-1")])
            .unwrap();
        store.record_lists(910 * DAY, &[list("a", "a-2")]).unwrap();
        store.record_lists(950 * DAY, &[list("a", "a-3")]).unwrap();
        store.record_lists(970 * DAY, &[list("a", "a-4")]).unwrap();
        store.record_lists(990 * DAY, &[list("c", "c-1")]).unwrap();
        store.apply_retention(now, 40).unwrap();
        assert_eq!(
            versions(&store),
            vec![
                (900 * DAY, "b".into(), "b-1".into()),
                (950 * DAY, "a".into(), "a-3".into()),
                (970 * DAY, "a".into(), "a-4".into()),
                (990 * DAY, "c".into(), "c-1".into()),
            ]
        );
        // Sweeping again changes nothing.
        store.apply_retention(now + 3600, 40).unwrap();
        assert_eq!(versions(&store).len(), 4);
    }
}
