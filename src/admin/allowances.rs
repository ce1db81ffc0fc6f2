//! Temporary allowances: "band THCS at school X may use youtube.com for the
//! next 45 minutes". A live overlay like the takedown list (no rebuild),
//! consulted before the policies; each entry carries its expiry and is
//! checked against the clock on every lookup, so it lapses on time even if
//! the sweeper that removes it from the database runs late. Stored in the
//! statistics database so a restart keeps the ones still running.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

/// Longest a temporary allowance may run (one school day).
pub const MAX_MINUTES: u32 = 12 * 60;

/// A temporary allowance: a domain allowed for one band of one school
/// until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Allowance {
    pub id: i64,
    pub school: String,
    pub band: String,
    pub domain: String,
    /// Unix time it lapses
    pub until: i64,
    pub reason: String,
    /// The name of the token that created it.
    pub actor: String,
    pub created_at: i64,
}

/// The live overlay, shared by every snapshot.
#[derive(Debug, Default)]
pub struct Allowances {
    entries: RwLock<Vec<Arc<Allowance>>>,
    count: AtomicUsize,
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS allowances (
    id INTEGER PRIMARY KEY,
    school TEXT NOT NULL,
    band TEXT NOT NULL,
    domain TEXT NOT NULL,
    until INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

impl Allowances {
    /// The allowance covering `name` (itself or a parent) for this school and
    /// band at `now`. One atomic load when there are none.
    pub fn find(&self, school: &str, band: &str, name: &str, now: i64) -> Option<Arc<Allowance>> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .filter(|a| a.until > now && a.school == school && a.band == band)
            .filter(|a| {
                name == a.domain
                    || name
                        .strip_suffix(a.domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            })
            .max_by_key(|a| a.domain.len())
            .cloned()
    }

    pub fn all(&self) -> Vec<Allowance> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(|a| (**a).clone()).collect()
    }

    fn replace(&self, all: Vec<Arc<Allowance>>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.count.store(all.len(), Ordering::Relaxed);
        *entries = all;
    }

    fn push(&self, allowance: Allowance) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.push(Arc::new(allowance));
        self.count.store(entries.len(), Ordering::Relaxed);
    }

    /// Removes one; returns it.
    fn take(&self, id: i64) -> Option<Allowance> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let position = entries.iter().position(|a| a.id == id)?;
        let removed = entries.remove(position);
        self.count.store(entries.len(), Ordering::Relaxed);
        Some((*removed).clone())
    }
}

/// Loads the stored allowances still running at `now`.
pub fn load(db: &Connection, overlay: &Allowances, now: i64) -> rusqlite::Result<usize> {
    let mut statement = db.prepare(
        "SELECT id, school, band, domain, until, reason, actor, created_at FROM allowances WHERE until > ?1",
    )?;
    let rows = statement.query_map(params![now], |r| {
        Ok(Arc::new(Allowance {
            id: r.get(0)?,
            school: r.get(1)?,
            band: r.get(2)?,
            domain: r.get(3)?,
            until: r.get(4)?,
            reason: r.get(5)?,
            actor: r.get(6)?,
            created_at: r.get(7)?,
        }))
    })?;
    let all = rows.collect::<Result<Vec<_>, _>>()?;
    let n = all.len();
    overlay.replace(all);
    Ok(n)
}

/// Stores and activates a new allowance; returns it with its id.
pub fn add(
    db: &Connection,
    overlay: &Allowances,
    mut allowance: Allowance,
) -> rusqlite::Result<Allowance> {
    db.execute(
        "INSERT INTO allowances (school, band, domain, until, reason, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![allowance.school, allowance.band, allowance.domain, allowance.until, allowance.reason, allowance.actor, allowance.created_at],
    )?;
    allowance.id = db.last_insert_rowid();
    overlay.push(allowance.clone());
    Ok(allowance)
}

/// Ends an allowance early.
pub fn remove(
    db: &Connection,
    overlay: &Allowances,
    id: i64,
) -> rusqlite::Result<Option<Allowance>> {
    db.execute("DELETE FROM allowances WHERE id = ?1", params![id])?;
    Ok(overlay.take(id))
}

/// Removes the allowances that have lapsed by `now`; returns them (for the audit log).
pub fn sweep(db: &Connection, overlay: &Allowances, now: i64) -> rusqlite::Result<Vec<Allowance>> {
    let lapsed: Vec<i64> = overlay
        .all()
        .into_iter()
        .filter(|a| a.until <= now)
        .map(|a| a.id)
        .collect();
    let mut out = Vec::new();
    for id in lapsed {
        if let Some(a) = remove(db, overlay, id)? {
            out.push(a);
        }
    }
    db.execute("DELETE FROM allowances WHERE until <= ?1", params![now])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(domain: &str, until: i64) -> Allowance {
        Allowance {
            id: 0,
            school: "s1".into(),
            band: "thcs".into(),
            domain: domain.into(),
            until,
            reason: "lesson".into(),
            actor: "t".into(),
            created_at: 0,
        }
    }

    #[test]
    fn covers_subdomains_of_its_school_and_band_until_it_lapses() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(SCHEMA).unwrap();
        let overlay = Allowances::default();
        let a = add(&db, &overlay, allowance("youtube.com", 100)).unwrap();
        assert!(overlay.find("s1", "thcs", "www.youtube.com", 99).is_some());
        assert!(overlay.find("s1", "thcs", "youtube.com", 99).is_some());
        assert!(overlay.find("s1", "thcs", "notyoutube.com", 99).is_none());
        assert!(overlay.find("s1", "staff", "youtube.com", 99).is_none());
        assert!(overlay.find("s2", "thcs", "youtube.com", 99).is_none());
        assert!(overlay.find("s1", "thcs", "youtube.com", 100).is_none());
        let lapsed = sweep(&db, &overlay, 100).unwrap();
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].id, a.id);
        assert!(overlay.all().is_empty());
        let stored: i64 = db
            .query_row("SELECT count(*) FROM allowances", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 0);
    }
}
