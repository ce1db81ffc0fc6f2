//! Keeping checked inputs: a batch of them in one transaction (group
//! commit, docs/performance.md "Office ingest"); if that transaction fails,
//! each input is tried in one of its own, so one input's failure keeps the
//! others. The same school, node and day is kept once: the same numbers
//! again are a duplicate, other numbers for a kept day a conflict (the
//! first copy stays).
//!
//! Uses: `office::ingest::{check, days, schema}`.
//! Used by: `office::ingest`.

use super::check::Rows;
use super::check::{Checked, Refused};
use super::days::raw_id;
use super::schema::{RAW_INPUT_DAYS, ROLLUP_BATCH, ensure_schema, flush_rollups};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

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

/// What became of one input of a batch: kept (or kept already), refused,
/// or not kept because the database failed (the node sends it again).
pub type Outcome = Result<Result<Receipt, Refused>, KeepError>;

/// The office database failed while keeping an input; nothing of it was
/// kept.
#[derive(Debug, Clone, thiserror::Error)]
#[error("office database: {0}")]
pub struct KeepError(pub String);

impl From<rusqlite::Error> for KeepError {
    fn from(e: rusqlite::Error) -> Self {
        KeepError(e.to_string())
    }
}

/// The ids of sources, labels and domain names the writer has seen, so a
/// batch looks each up in memory rather than in SQLite (a day's input names
/// 13 labels and 32 domains). An id enters the cache only once the
/// transaction that wrote or read it is committed: a rolled-back batch
/// leaves no id behind that the database does not hold.
#[derive(Debug, Default)]
pub struct Ids {
    /// The database these ids belong to.
    database: std::path::PathBuf,
    committed: HashMap<IdKey, i64>,
    /// Learnt in the transaction under way.
    batch: HashMap<IdKey, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Source(String, String),
    Label(i64, String, String),
    Domain(String),
}

/// Ids kept in memory at most; past it the cache starts again (a province's
/// blocked domains are far fewer).
const MAX_IDS: usize = 500_000;

impl Ids {
    /// The cache for `database`, emptied if it held another's ids; nothing
    /// of an earlier batch that did not finish (a panic) is left over.
    fn for_database(&mut self, database: &std::path::Path) -> &mut Ids {
        if self.database != database || self.committed.len() > MAX_IDS {
            *self = Ids {
                database: database.to_path_buf(),
                ..Ids::default()
            };
        }
        self.batch.clear();
        self
    }

    fn get(&self, key: &IdKey) -> Option<i64> {
        self.batch
            .get(key)
            .or_else(|| self.committed.get(key))
            .copied()
    }

    /// The id of `key`: from memory, else `select`, else `insert`.
    fn id(
        &mut self,
        db: &Connection,
        key: IdKey,
        select: &str,
        insert: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<i64> {
        if let Some(id) = self.get(&key) {
            return Ok(id);
        }
        let found = db
            .prepare_cached(select)?
            .query_row(params, |row| row.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                db.prepare_cached(insert)?.execute(params)?;
                db.last_insert_rowid()
            }
        };
        self.batch.insert(key, id);
        Ok(id)
    }

    fn batch_done(&mut self, kept: bool) {
        if kept {
            self.committed.extend(self.batch.drain());
        } else {
            self.batch.clear();
        }
    }
}

/// Keeps a batch of checked inputs in one transaction, and answers for
/// each in order. If the transaction fails, each input is tried again in a
/// transaction of its own, so that one input's failure keeps the others
/// (failures are rare: the batch's fast path has no savepoints, whose
/// statement journal copied every page a second time). `ids` is the
/// writer's cache ([`Ids`]).
pub fn keep(db: &Connection, ids: &mut Ids, batch: Vec<Checked>) -> Vec<Outcome> {
    let ids = ids.for_database(std::path::Path::new(db.path().unwrap_or_default()));
    if let Err(e) = ensure_schema(db) {
        let e = KeepError::from(e);
        return batch.iter().map(|_| Err(e.clone())).collect();
    }
    let outcomes = match in_one_transaction(db, ids, &batch) {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        Err(e) if batch.len() == 1 => vec![Err(e.into())],
        Err(_) => batch
            .iter()
            .map(|checked| {
                in_one_transaction(db, ids, std::slice::from_ref(checked))
                    .map(|mut answers| answers.remove(0))
                    .map_err(KeepError::from)
            })
            .collect(),
    };
    // The roll-ups, once enough days wait (their own transaction: the
    // batch's answers do not wait for them when a report asks first).
    let queued = db
        .prepare_cached("SELECT MAX(seq) - MIN(seq) + 1 FROM ingest_rollup_queue")
        .and_then(|mut s| s.query_row([], |row| row.get::<_, Option<i64>>(0)));
    if matches!(queued, Ok(Some(n)) if n >= ROLLUP_BATCH)
        && let Err(e) = flush_rollups(db)
    {
        // The days are kept and stay queued: the next batch or report
        // adds them.
        tracing::warn!("office roll-ups not updated yet: {e}");
    }
    outcomes
}

/// Keeps `batch` in one transaction: all of it, or (on an error, rolled
/// back) none of it.
fn in_one_transaction(
    db: &Connection,
    ids: &mut Ids,
    batch: &[Checked],
) -> rusqlite::Result<Vec<Result<Receipt, Refused>>> {
    let kept = (|| {
        let transaction = db.unchecked_transaction()?;
        let answers = batch
            .iter()
            .map(|checked| keep_one(&transaction, ids, checked))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        transaction.commit()?;
        Ok(answers)
    })();
    ids.batch_done(kept.is_ok());
    kept
}

fn keep_one(
    db: &Connection,
    ids: &mut Ids,
    checked: &Checked,
) -> rusqlite::Result<Result<Receipt, Refused>> {
    let Checked {
        school,
        node,
        day,
        day_number,
        digest,
        compressed,
        rows,
    } = checked;
    let (school, node, day) = (school.clone(), node.clone(), day.clone());
    let day_number = *day_number;
    let source = ids.id(
        db,
        IdKey::Source(school.clone(), node.clone()),
        "SELECT id FROM ingest_sources WHERE school = ?1 AND node = ?2",
        "INSERT INTO ingest_sources (school, node) VALUES (?1, ?2)",
        params![school, node],
    )?;
    let kept: Option<String> = db
        .prepare_cached("SELECT sha256 FROM ingest_days WHERE source = ?1 AND day = ?2")?
        .query_row(params![source, day_number], |row| row.get(0))
        .optional()?;
    let stored = match kept {
        Some(kept) if kept == *digest => Stored::Duplicate,
        Some(_) => return Ok(Err(Refused::Conflict { school, node, day })),
        None => {
            store(db, ids, source, day_number, digest, compressed, rows)?;
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

/// Writes one new input: its numbers, its place in the roll-up queue, and
/// the signed input as received, compressed (inside the batch's savepoint).
fn store(
    db: &Connection,
    ids: &mut Ids,
    source: i64,
    day: i64,
    digest: &str,
    compressed: &[u8],
    rows: &Rows,
) -> rusqlite::Result<()> {
    let [queries, allowed, blocked, safe_search] = rows.totals;
    db.prepare_cached(
        "INSERT INTO ingest_days (source, day, received_at, sha256, school_name, timezone, k,
             queries, allowed, blocked, safe_search, reviews)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        source,
        day,
        jiff::Timestamp::now().as_second(),
        digest,
        rows.school_name,
        rows.timezone,
        rows.k,
        queries,
        allowed,
        blocked,
        safe_search,
        rows.reviews,
    ])?;
    db.prepare_cached("INSERT INTO ingest_rollup_queue (source, day) VALUES (?1, ?2)")?
        .execute(params![source, day])?;
    db.prepare_cached("INSERT OR REPLACE INTO ingest_raw_inputs (id, input) VALUES (?1, ?2)")?
        .execute(params![raw_id(day, source), compressed])?;
    let mut cell = db.prepare_cached(
        "INSERT OR REPLACE INTO ingest_cells (day, source, label, count) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (section, key, label, count) in &rows.cells {
        let label = ids.id(
            db,
            IdKey::Label(*section, key.clone(), label.clone()),
            "SELECT id FROM ingest_labels WHERE section = ?1 AND key = ?2 AND label = ?3",
            "INSERT INTO ingest_labels (section, key, label) VALUES (?1, ?2, ?3)",
            params![section, key, label],
        )?;
        cell.execute(params![day, source, label, count])?;
    }
    let mut insert = db.prepare_cached(
        "INSERT OR REPLACE INTO ingest_domains (source, day, domain, count) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (name, count) in &rows.domains {
        let domain = ids.id(
            db,
            IdKey::Domain(name.clone()),
            "SELECT id FROM ingest_domain_names WHERE name = ?1",
            "INSERT INTO ingest_domain_names (name) VALUES (?1)",
            params![name],
        )?;
        insert.execute(params![source, day, domain, count])?;
    }
    db.prepare_cached(
        "INSERT INTO ingest_lists (source, day, lists, takedowns) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source) DO UPDATE SET day = excluded.day, lists = excluded.lists,
             takedowns = excluded.takedowns
         WHERE excluded.day >= ingest_lists.day",
    )?
    .execute(params![source, day, rows.lists, rows.takedowns])?;
    // Inputs leaving the audit window (the raw table holds only the
    // window, so this touches a few rows at most).
    db.prepare_cached("DELETE FROM ingest_raw_inputs WHERE id < ?1")?
        .execute(params![raw_id(day - RAW_INPUT_DAYS, 0)])?;
    Ok(())
}
