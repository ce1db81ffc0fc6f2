//! The append-only audit log: who (token name), with which role, when, what
//! changed, before → after. One table in the statistics database, shared
//! with the takedown feed's entries; triggers refuse UPDATE and DELETE so
//! nothing in edudns (or a slip at the sqlite3 prompt) can rewrite history.

use rusqlite::{Connection, params};
use serde::Serialize;
use utoipa::ToSchema;

/// Brings an audit table from before the administration API up to date
/// (role, before, after columns) and makes it append-only. Idempotent.
pub fn migrate(db: &Connection) -> rusqlite::Result<()> {
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('audit')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for column in ["role", "before", "after"] {
        if !columns.iter().any(|c| c == column) {
            db.execute_batch(&format!(
                "ALTER TABLE audit ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
            ))?;
        }
    }
    db.execute_batch(
        "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
         CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    )
}

/// One change, as the append-only audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    pub id: i64,
    /// Unix time.
    pub at: i64,
    /// The token's name, or `edudns` for the server itself.
    pub actor: String,
    pub role: String,
    /// e.g. `band.update`, `allowance.add`, `review.accept`.
    pub action: String,
    /// What changed, e.g. `band:teen`.
    pub subject: String,
    pub detail: String,
    pub before: String,
    pub after: String,
}

/// What one change did, for [`record`].
pub struct Change<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
    pub before: &'a str,
    pub after: &'a str,
}

pub fn record(db: &Connection, at: i64, change: &Change<'_>) -> rusqlite::Result<i64> {
    db.execute(
        "INSERT INTO audit (at, actor, role, action, subject, detail, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![at, change.actor, change.role, change.action, change.subject, change.detail, change.before, change.after],
    )?;
    Ok(db.last_insert_rowid())
}

/// Newest first, at most `limit`, optionally only entries older than `before_id`
/// and only those whose subject starts with `subject_prefix`.
pub fn list(
    db: &Connection,
    limit: u32,
    before_id: Option<i64>,
    subject_prefix: Option<&str>,
) -> rusqlite::Result<Vec<Entry>> {
    let mut statement = db.prepare(
        "SELECT rowid, at, actor, role, action, subject, detail, before, after FROM audit
         WHERE (?1 IS NULL OR rowid < ?1) AND (?2 IS NULL OR substr(subject, 1, length(?2)) = ?2)
         ORDER BY rowid DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(params![before_id, subject_prefix, limit], |r| {
        Ok(Entry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            role: r.get(3)?,
            action: r.get(4)?,
            subject: r.get(5)?,
            detail: r.get(6)?,
            before: r.get(7)?,
            after: r.get(8)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_listed_newest_first_and_cannot_be_changed_or_deleted() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(crate::takedown::SCHEMA).unwrap();
        // An entry written before the migration (the takedown feed's shape).
        db.execute(
            "INSERT INTO audit (at, actor, action, subject, detail) VALUES (1, 'feed', 'takedown.add', 'x.example', '')",
            [],
        )
        .unwrap();
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        let change = Change {
            actor: "Phòng GD",
            role: "office",
            action: "band.update",
            subject: "band:thcs",
            detail: "",
            before: "{\"block\":[\"social\"]}",
            after: "{\"block\":[]}",
        };
        record(&db, 2, &change).unwrap();
        let all = list(&db, 10, None, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].action, "band.update");
        assert_eq!(all[0].before, "{\"block\":[\"social\"]}");
        assert_eq!(all[1].role, "");
        assert_eq!(list(&db, 10, None, Some("band:")).unwrap().len(), 1);
        assert_eq!(list(&db, 10, Some(all[0].id), None).unwrap().len(), 1);
        assert!(db.execute("UPDATE audit SET actor = 'x'", []).is_err());
        assert!(db.execute("DELETE FROM audit", []).is_err());
        assert_eq!(list(&db, 10, None, None).unwrap().len(), 2);
    }
}
