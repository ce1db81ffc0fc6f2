//! The node's side of the statistics upload (`[upload]`): each closed day
//! of each school, as the signed merge input `edudns report --for-merge`
//! makes (exact aggregates per school, band and category; never a client
//! address or a per-device row), is sent to the office's
//! `POST /api/v1/ingest` with the school's token.
//!
//! Days go in order, from the first day the database counted for the
//! school (or the day after the last one sent) to yesterday in the
//! school's time zone. A day is marked sent only when the office answered
//! that it kept it (new or duplicate); a failure keeps it pending, and the
//! next try waits twice as long as the last (from `interval`, at most an
//! hour, with jitter), so a node offline for days catches up in order once
//! the office answers, and nothing is lost or counted twice (the office
//! keeps each school, node and day once).
//!
//! Uses: `config`, `stats` (report building, signatures, the database),
//! `lists::download` (the HTTP client). Used by: `app` (started with the
//! service), `web` (its figures on `/metrics`).

use crate::config::{Config, School, UploadConfig};
use crate::snapshot::SharedSnapshot;
use crate::stats::flusher::SharedStore;
use crate::stats::report::{self, Stage};
use crate::stats::sign;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::{info, warn};

/// The node's record of days sent (created on first use).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS uploads (
    school TEXT NOT NULL,
    day TEXT NOT NULL,             -- the school's local date
    sent_at INTEGER NOT NULL,      -- Unix time the office confirmed it
    PRIMARY KEY (school, day)
) WITHOUT ROWID;
";

/// The longest wait between tries while the office fails.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What the upload did, for `/metrics` (`edudns_statistics_upload_*`).
#[derive(Debug, Default)]
pub struct UploadFigures {
    /// Days the office kept (new).
    pub sent: AtomicU64,
    /// Days the office already had (a resend after a lost answer).
    pub duplicate: AtomicU64,
    /// Days the office keeps in another version (409): not sent again.
    pub conflict: AtomicU64,
    /// Tries that failed (office unreachable, 5xx, refused).
    pub failed: AtomicU64,
    /// Closed days not yet confirmed, after the last pass.
    pub pending: AtomicU64,
    /// Unix time of the last day the office confirmed (0: never).
    pub last_success: AtomicU64,
    /// Why the last pass failed; `None` after a pass that worked.
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Whether `[upload]` is set.
    pub configured: std::sync::atomic::AtomicBool,
}

impl UploadFigures {
    /// The upload's state for `/readyz` and `edudns health`.
    pub fn status(&self) -> serde_json::Value {
        let last = self.last_success.load(Ordering::Relaxed);
        serde_json::json!({
            "configured": self.configured.load(Ordering::Relaxed),
            "pending_days": self.pending.load(Ordering::Relaxed),
            "last_success": (last > 0).then(|| jiff::Timestamp::from_second(last as i64).map(|t| t.to_string()).unwrap_or_default()),
            "last_error": self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

/// Runs while the service runs; a node without `[upload]` returns at once.
pub async fn run(snapshot: SharedSnapshot, store: SharedStore, figures: Arc<UploadFigures>) {
    let client = crate::lists::download::http_client(Duration::from_secs(30));
    let mut backoff: Option<Duration> = None;
    loop {
        let config = snapshot.load().config.clone();
        figures
            .configured
            .store(config.upload.is_some(), Ordering::Relaxed);
        let Some(upload) = config.upload.clone() else {
            // Checked again after a reload adds the section.
            tokio::time::sleep(Duration::from_secs(10)).await;
            continue;
        };
        let wait = match pass(&client, &config, &upload, &store, &figures).await {
            Ok(()) => {
                backoff = None;
                *figures.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                upload.interval
            }
            Err(reason) => {
                figures.failed.fetch_add(1, Ordering::Relaxed);
                *figures.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(reason.clone());
                let next = backoff.map_or(upload.interval, |b| (b * 2).min(MAX_BACKOFF));
                backoff = Some(next);
                warn!(url = %upload.url, retry_in_secs = next.as_secs(), "statistics upload failed: {reason}");
                next
            }
        };
        // Jitter: up to a tenth more, so a district's nodes do not all
        // retry in the same second after the office comes back.
        let jitter = wait.mul_f64(rand::random::<f64>() * 0.1);
        tokio::time::sleep(wait + jitter).await;
    }
}

/// One pass: every pending day of every school, in order; stops at the
/// first failure (the rest waits for the next pass).
async fn pass(
    client: &reqwest::Client,
    config: &Config,
    upload: &UploadConfig,
    store: &SharedStore,
    figures: &UploadFigures,
) -> Result<(), String> {
    let token = token(upload)?;
    let mut pending_total = 0u64;
    let mut first_error = None;
    for school in &config.schools {
        let days = {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            pending_days(store.connection(), school).map_err(|e| e.to_string())?
        };
        pending_total += days.len() as u64;
        for day in days {
            if first_error.is_some() {
                break;
            }
            let body = {
                let store = store.lock().unwrap_or_else(|e| e.into_inner());
                input(store.connection(), config, school, &day)?
            };
            match send(client, &upload.url, &token, body).await {
                Ok(answer) => {
                    let store = store.lock().unwrap_or_else(|e| e.into_inner());
                    mark_sent(store.connection(), &school.id, &day).map_err(|e| e.to_string())?;
                    pending_total -= 1;
                    let counter = match &answer {
                        Answer::Stored => &figures.sent,
                        Answer::Duplicate => &figures.duplicate,
                        Answer::Conflict(_) => &figures.conflict,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    figures
                        .last_success
                        .store(jiff::Timestamp::now().as_second() as u64, Ordering::Relaxed);
                    match answer {
                        Answer::Conflict(why) => warn!(school = %school.id, %day,
                            "the office keeps an earlier, different copy of this day; this node's numbers for it changed after it was sent (sending the next days): {why}"),
                        answer => info!(school = %school.id, %day,
                            duplicate = matches!(answer, Answer::Duplicate), "statistics sent to the office"),
                    }
                }
                Err(reason) => first_error = Some(format!("school {}, {day}: {reason}", school.id)),
            }
        }
    }
    figures.pending.store(pending_total, Ordering::Relaxed);
    first_error.map_or(Ok(()), Err)
}

/// The school's token from `token_file` (the heartbeat's too).
pub(super) fn token(upload: &UploadConfig) -> Result<String, String> {
    std::fs::read_to_string(&upload.token_file)
        .map(|t| t.trim().to_string())
        .map_err(|e| {
            format!(
                "cannot read the token file {}: {e}",
                upload.token_file.display()
            )
        })
}

/// The closed days of `school` not yet confirmed, oldest first.
pub fn pending_days(db: &Connection, school: &School) -> rusqlite::Result<Vec<String>> {
    db.execute_batch(SCHEMA)?;
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(school.timezone.clone())
        .date();
    let last_sent: Option<String> = db
        .query_row(
            "SELECT MAX(day) FROM uploads WHERE school = ?1",
            params![school.id],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    let start = match last_sent.and_then(|d| d.parse::<jiff::civil::Date>().ok()) {
        Some(day) => day.tomorrow().unwrap_or(day),
        None => {
            let first_hour: Option<i64> = db.query_row(
                "SELECT MIN(hour) FROM hourly WHERE school = ?1",
                params![school.id],
                |row| row.get(0),
            )?;
            let Some(hour) = first_hour else {
                return Ok(Vec::new());
            };
            match jiff::Timestamp::from_second(hour * 3600) {
                Ok(t) => t.to_zoned_datetime(school.timezone.clone()).date(),
                Err(_) => return Ok(Vec::new()),
            }
        }
    };
    let mut days = Vec::new();
    let mut day = start;
    while day < today {
        days.push(day.to_string());
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    Ok(days)
}

fn mark_sent(db: &Connection, school: &str, day: &str) -> rusqlite::Result<()> {
    db.execute(
        "INSERT OR REPLACE INTO uploads (school, day, sent_at) VALUES (?1, ?2, ?3)",
        params![school, day, jiff::Timestamp::now().as_second()],
    )?;
    Ok(())
}

/// The signed merge input of `school` for `day`, as JSON.
fn input(db: &Connection, config: &Config, school: &School, day: &str) -> Result<Vec<u8>, String> {
    let built = report::build_stage(
        db,
        config,
        &school.id,
        day,
        day,
        config.privacy.k_anonymity,
        Stage::MergeInput,
    )
    .map_err(|e| e.to_string())?;
    let (key, _) = sign::key_paths(&config.stats.key_dir, &school.id);
    if !key.exists() {
        return Err(format!(
            "school {} has no signing key ({}): run `edudns keys init --school {}` and register the .pub file at the office",
            school.id,
            key.display(),
            school.id
        ));
    }
    let signed = sign::sign(built, &key).map_err(|e| e.to_string())?;
    serde_json::to_vec(&signed).map_err(|e| e.to_string())
}

/// What the office did with a day it answered for: each means the office
/// has the day, so it is not sent again.
#[derive(Debug)]
enum Answer {
    Stored,
    /// The office had these numbers already (an answer lost on the way,
    /// or the day built again after a restart).
    Duplicate,
    /// The office keeps another version of the day (409): sending it again
    /// cannot change that, and must not hold back the days after it.
    Conflict(String),
}

/// POSTs one input.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<Answer, String> {
    let (status, text) = post(client, url, token, body).await?;
    if status.is_success() {
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return Ok(if answer["status"] == "duplicate" {
            Answer::Duplicate
        } else {
            Answer::Stored
        });
    }
    if status == reqwest::StatusCode::CONFLICT {
        return Ok(Answer::Conflict(text.trim().to_string()));
    }
    Err(format!("the office answered {status}: {}", text.trim()))
}

/// POSTs a JSON body to the office with the school's token: the answer's
/// text when it is a success, else why not (the heartbeat's).
pub(super) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<String, String> {
    let (status, text) = post(client, url, token, body).await?;
    if status.is_success() {
        return Ok(text);
    }
    Err(format!("the office answered {status}: {}", text.trim()))
}

/// POSTs a JSON body with the school's token: the answer's status and text.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
) -> Result<(reqwest::StatusCode, String), String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach the office: {e}"))?;
    let status = response.status();
    Ok((status, response.text().await.unwrap_or_default()))
}
