//! "Blocked by mistake" review requests: recorded from the warning page
//! (domain, category, school, band, day, optional comment — never a client
//! address), listed, accepted or rejected by school IT and the education
//! office. Accepting appends the domain to `<accepted_dir>/<school>.txt`,
//! which the snapshot adds to the school's allow entries: the running
//! service picks it up through the ordinary reload path (file watch).

use crate::config::Config;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::io::Write;
use utoipa::ToSchema;

/// Longest comment kept (characters).
pub const MAX_COMMENT: usize = 280;

/// A "blocked by mistake" request from the warning page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Review {
    pub id: i64,
    /// The day it was asked (YYYY-MM-DD, the school's time zone).
    pub day: String,
    pub school: String,
    pub band: String,
    pub domain: String,
    /// The category that blocked the domain.
    pub category: String,
    /// What the student wrote.
    pub comment: String,
    /// pending, accepted or rejected
    pub status: String,
}

/// What recording a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New(i64),
    /// Someone at this school already asked for this domain today.
    AlreadyRequested,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no review request #{0}")]
    NotFound(i64),
    #[error("review request #{id} is already {status}")]
    AlreadyDecided { id: i64, status: String },
    #[error("statistics database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A request as the warning page makes it.
pub struct NewReview<'a> {
    pub now: i64,
    pub day: &'a str,
    pub school: &'a str,
    pub band: &'a str,
    pub domain: &'a str,
    pub category: &'a str,
    pub comment: &'a str,
}

/// Records a request, once per (day, school, domain).
pub fn request(db: &Connection, review: &NewReview<'_>) -> Result<Recorded, ReviewError> {
    let comment: String = review
        .comment
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_COMMENT)
        .collect();
    let inserted = db.execute(
        "INSERT OR IGNORE INTO reviews (created_at, day, school, band, domain, category, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![review.now, review.day, review.school, review.band, review.domain, review.category, comment.trim()],
    )?;
    Ok(if inserted == 1 {
        Recorded::New(db.last_insert_rowid())
    } else {
        Recorded::AlreadyRequested
    })
}

/// Requests, newest first; `status` filters (pending, accepted, rejected).
pub fn list(db: &Connection, status: Option<&str>) -> Result<Vec<Review>, ReviewError> {
    let mut statement = db.prepare(
        "SELECT id, day, school, band, domain, category, comment, status FROM reviews
         WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC",
    )?;
    let rows = statement.query_map(params![status], |row| {
        Ok(Review {
            id: row.get(0)?,
            day: row.get(1)?,
            school: row.get(2)?,
            band: row.get(3)?,
            domain: row.get(4)?,
            category: row.get(5)?,
            comment: row.get(6)?,
            status: row.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Accepts or rejects a pending request. Accepting appends the domain to the
/// school's accepted allow list (the running service reloads it).
pub fn decide(
    db: &Connection,
    config: &Config,
    id: i64,
    accept: bool,
    now: i64,
) -> Result<Review, ReviewError> {
    let review = list(db, None)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ReviewError::NotFound(id))?;
    if review.status != "pending" {
        return Err(ReviewError::AlreadyDecided {
            id,
            status: review.status,
        });
    }
    let status = if accept { "accepted" } else { "rejected" };
    if accept {
        let path = config.accepted_allow_file(&review.school);
        let write_error = |source| ReviewError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(write_error)?;
        writeln!(
            file,
            "# review #{id}, {}, band {}, category {}\n{}",
            review.day, review.band, review.category, review.domain
        )
        .map_err(write_error)?;
    }
    db.execute(
        "UPDATE reviews SET status = ?1, decided_at = ?2 WHERE id = ?3",
        params![status, now, id],
    )?;
    Ok(Review {
        status: status.to_string(),
        ..review
    })
}
