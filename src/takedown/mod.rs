//! The authorities' takedown list: urgent entries that apply to every band
//! of every school within seconds, without a rebuild — a live overlay
//! consulted before the trie (the "DashMap overlay" of the architecture).
//!
//! Entries come from a feed polled often (`[takedown] url`, default every
//! 5 minutes) and from `POST /api/v1/takedowns` with the office token. Each
//! carries a reference (e.g. a decision number) and a date, is stored in the
//! statistics database, audited, and listed in reports.
//!
//! Uses: `lists` (names); `feed` also `dns` and `stats` (it applies entries
//! to the running service). Used by: `snapshot`, `stats`, `admin`, `web`,
//! `app`, `cli`.

pub mod feed;

use dashmap::DashMap;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use utoipa::ToSchema;

/// A domain the authorities ordered blocked, for every band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Takedown {
    pub domain: String,
    /// The order's reference number.
    pub reference: String,
    /// The order's date.
    #[serde(default)]
    pub date: String,
    /// Where it came from: the feed URL, or "api" (set by the server).
    #[serde(default)]
    pub source: String,
    /// Unix time it took effect here (set by the server).
    #[serde(default)]
    pub applied_at: i64,
}

/// The live overlay, shared by every snapshot.
#[derive(Debug, Default)]
pub struct Takedowns {
    entries: DashMap<Box<str>, Arc<Takedown>>,
    count: AtomicUsize,
}

impl Takedowns {
    /// The entry covering `name` (itself or a parent domain), if any.
    /// Costs one atomic load when the overlay is empty.
    pub fn find(&self, name: &str) -> Option<Arc<Takedown>> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut rest = name.strip_suffix('.').unwrap_or(name);
        loop {
            if let Some(entry) = self.entries.get(rest) {
                return Some(entry.clone());
            }
            rest = rest.split_once('.')?.1;
        }
    }

    pub fn insert(&self, entry: Takedown) -> bool {
        let new = self
            .entries
            .insert(entry.domain.clone().into_boxed_str(), Arc::new(entry))
            .is_none();
        self.count.store(self.entries.len(), Ordering::Relaxed);
        new
    }

    pub fn remove(&self, domain: &str) -> bool {
        let removed = self.entries.remove(domain).is_some();
        self.count.store(self.entries.len(), Ordering::Relaxed);
        removed
    }

    pub fn all(&self) -> Vec<Takedown> {
        let mut out: Vec<Takedown> = self.entries.iter().map(|e| (**e.value()).clone()).collect();
        out.sort_by(|a, b| a.domain.cmp(&b.domain));
        out
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Schema (created with the statistics database).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS takedowns (
    domain TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    date TEXT NOT NULL,
    source TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// Loads the stored entries into the overlay.
pub fn load(db: &Connection, overlay: &Takedowns) -> rusqlite::Result<usize> {
    let mut statement =
        db.prepare("SELECT domain, reference, date, source, applied_at FROM takedowns")?;
    let rows = statement.query_map([], |r| {
        Ok(Takedown {
            domain: r.get(0)?,
            reference: r.get(1)?,
            date: r.get(2)?,
            source: r.get(3)?,
            applied_at: r.get(4)?,
        })
    })?;
    let mut n = 0;
    for row in rows {
        overlay.insert(row?);
        n += 1;
    }
    Ok(n)
}

/// Applies `wanted` as the full set of entries from `source`: new ones are
/// added, entries of that source no longer listed are removed; both are
/// written to the database and the audit log. Returns (added, removed).
pub fn apply(
    db: &Connection,
    overlay: &Takedowns,
    source: &str,
    wanted: Vec<Takedown>,
    replace: bool,
    now: i64,
) -> rusqlite::Result<(usize, usize)> {
    let mut added = 0;
    for mut entry in wanted.iter().cloned() {
        let known = overlay
            .find(&entry.domain)
            .filter(|e| e.domain == entry.domain);
        if known.is_some() {
            continue;
        }
        entry.source = source.to_string();
        entry.applied_at = now;
        db.execute(
            "INSERT OR REPLACE INTO takedowns (domain, reference, date, source, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![entry.domain, entry.reference, entry.date, entry.source, entry.applied_at],
        )?;
        db.execute(
            "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, 'takedown.add', ?3, ?4)",
            params![now, source, entry.domain, format!("{} {}", entry.reference, entry.date)],
        )?;
        overlay.insert(entry);
        added += 1;
    }
    let mut removed = 0;
    if replace {
        for old in overlay.all().into_iter().filter(|e| e.source == source) {
            if !wanted.iter().any(|w| w.domain == old.domain) {
                db.execute(
                    "DELETE FROM takedowns WHERE domain = ?1",
                    params![old.domain],
                )?;
                db.execute(
                    "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, 'takedown.remove', ?3, ?4)",
                    params![now, source, old.domain, old.reference],
                )?;
                overlay.remove(&old.domain);
                removed += 1;
            }
        }
    }
    Ok((added, removed))
}

/// Parses a feed: a JSON array of `{domain, reference, date}`, or plain
/// lines `domain  # reference date`. Invalid names are skipped.
pub fn parse_feed(text: &str) -> Vec<Takedown> {
    let normalize = |d: &str| {
        crate::lists::name::normalize(d)
            .ok()
            .map(|n| n.into_owned())
    };
    if text.trim_start().starts_with('[') {
        let raw: Vec<Takedown> = serde_json::from_str(text).unwrap_or_default();
        return raw
            .into_iter()
            .filter_map(|mut t| {
                t.domain = normalize(&t.domain)?;
                Some(t)
            })
            .collect();
    }
    text.lines()
        .filter_map(|line| {
            let (name, comment) = line.split_once('#').unwrap_or((line, ""));
            let domain = normalize(name.trim())?;
            let mut words = comment.trim().rsplitn(2, ' ');
            let last = words.next().unwrap_or("").to_string();
            let (reference, date) = if last.parse::<jiff::civil::Date>().is_ok() {
                (words.next().unwrap_or("").trim().to_string(), last)
            } else {
                (comment.trim().to_string(), String::new())
            };
            Some(Takedown {
                domain,
                reference,
                date,
                source: String::new(),
                applied_at: 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_matches_names_and_parents_only() {
        let overlay = Takedowns::default();
        assert!(overlay.find("x.bad.example").is_none());
        overlay.insert(Takedown {
            domain: "bad.example".into(),
            reference: "QĐ 1".into(),
            date: String::new(),
            source: "t".into(),
            applied_at: 0,
        });
        assert!(overlay.find("bad.example").is_some());
        assert!(overlay.find("a.b.bad.example.").is_some());
        assert!(overlay.find("notbad.example").is_none());
        assert!(overlay.remove("bad.example") && overlay.is_empty());
    }

    #[test]
    fn feeds_in_json_and_plain_text() {
        let json = parse_feed(
            r#"[{"domain": "Bad.Example", "reference": "QĐ 12/QĐ-BTTTT", "date": "2026-11-20"}, {"domain": "not a name", "reference": "x"}]"#,
        );
        assert_eq!(json.len(), 1);
        assert_eq!(
            (json[0].domain.as_str(), json[0].date.as_str()),
            ("bad.example", "2026-11-20")
        );
        let plain =
            parse_feed("# header\nevil.example  # Công văn 345/BGDĐT 2026-11-21\nother.example\n");
        assert_eq!(plain[0].reference, "Công văn 345/BGDĐT");
        assert_eq!(plain[0].date, "2026-11-21");
        assert_eq!(plain[1].domain, "other.example");
    }
}
