//! The heartbeat: with `[upload]`, a node tells the office every
//! `heartbeat_interval` (default an hour, and once at start) that it runs,
//! whatever days are pending, so the office console can say whether each
//! school's filter is up. The office keeps the latest per school and node.
//!
//! A heartbeat is state, not data: one small JSON object per school the
//! node serves ([`Heartbeat`]: the school, the node's statistics database
//! id, the version, when the process started, whether the filter is up as
//! `/readyz` says, the last `[central]` fetch that worked and the ETag of
//! the policy in force, the number of lists loaded). Nothing with a client
//! address or a device, ever. A failed one is logged, counted and simply
//! sent again at the next interval (the latest wins: no queue); it has its
//! own task, so it never waits behind the days' backoff, nor they behind it.
//!
//! Uses: `config`, `app::ready` (the filter's state), `office::pull` (the
//! last fetch), `office::upload` (the token, the POST), `stats::store` (the
//! database id), `lists::download` (the HTTP client).
//! Used by: `app` (started with the service), `web` (`POST /api/v1/heartbeat`
//! and its figures on `/metrics`), `office::dashboard` (the console's rows).

use super::pull::CentralFigures;
use crate::dns::Handler;
use crate::stats::flusher::SharedStore;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::{info, warn};
use utoipa::ToSchema;

/// The office's table of heartbeats (created on first use): the latest of
/// each school and node.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS office_heartbeats (
    school TEXT NOT NULL,
    node TEXT NOT NULL,             -- the sending database's id
    received_at INTEGER NOT NULL,   -- Unix time
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,    -- Unix time the node's process started
    filter_up INTEGER NOT NULL,     -- 0 or 1
    last_policy_fetch INTEGER,      -- Unix time, NULL: never (or no [central])
    policy_etag TEXT,
    lists INTEGER NOT NULL,
    PRIMARY KEY (school, node)
) WITHOUT ROWID;
";

/// Largest heartbeat body the office reads.
pub const MAX_BODY: usize = 4096;

/// What one heartbeat says, as sent (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Heartbeat {
    /// The school's id (the token's school).
    pub school: String,
    /// The node's statistics database id (as the merge input's `sources[].database`).
    pub node: String,
    /// The node's edudns version.
    pub version: String,
    /// When the node's process started (RFC 3339).
    pub started_at: String,
    /// Every category has a list loaded and an upstream answers (`/readyz` ready).
    pub filter_up: bool,
    /// The last `[central]` fetch that worked (a new policy, or 304), RFC
    /// 3339; null without `[central]` or before the first.
    pub last_policy_fetch: Option<String>,
    /// The ETag of the central policy in force, or null.
    pub policy_etag: Option<String>,
    /// Lists loaded.
    pub lists: u64,
}

/// What the heartbeat did (node) and received (office), for `/metrics`.
#[derive(Debug, Default)]
pub struct HeartbeatFigures {
    /// Heartbeats the office answered 2xx (one per school per beat).
    pub sent: AtomicU64,
    /// Heartbeats that failed (office unreachable, an error answer).
    pub failed: AtomicU64,
    /// Unix time of the last heartbeat the office took (0: never).
    pub last_success: AtomicU64,
    /// Why the last beat failed; `None` after one that worked.
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Office: heartbeats kept.
    pub stored: AtomicU64,
    /// Office: heartbeats refused (role, school, body).
    pub refused: AtomicU64,
}

impl HeartbeatFigures {
    /// The node's heartbeat state for `/readyz` (informational).
    pub fn status(&self) -> serde_json::Value {
        let last = self.last_success.load(Ordering::Relaxed);
        serde_json::json!({
            "last_success": (last > 0).then(|| jiff::Timestamp::from_second(last as i64).map(|t| t.to_string()).unwrap_or_default()),
            "last_error": self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

/// What a node needs to beat.
pub struct Beat {
    pub handler: Arc<Handler>,
    pub store: SharedStore,
    pub central: Arc<CentralFigures>,
    pub figures: Arc<HeartbeatFigures>,
    /// When the process started.
    pub started_at: jiff::Timestamp,
}

/// Runs while the service runs: a heartbeat at start, then every
/// `heartbeat_interval`; a node without `[upload]` looks again later.
pub async fn run(beat: Beat) {
    let client = crate::lists::download::http_client(Duration::from_secs(30));
    loop {
        let config = beat.handler.snapshot.load().config.clone();
        let Some(upload) = config.upload.clone() else {
            tokio::time::sleep(Duration::from_secs(10)).await;
            continue;
        };
        match send_all(&client, &beat, &config, &upload).await {
            Ok(()) => {
                *beat
                    .figures
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
            }
            Err(reason) => {
                warn!(url = %upload.heartbeat_url, retry_in_secs = upload.heartbeat_interval.as_secs(),
                    "heartbeat to the office failed: {reason}");
                *beat
                    .figures
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(reason);
            }
        }
        // Jitter: up to a tenth more, so a district's nodes spread out.
        let wait = upload.heartbeat_interval;
        tokio::time::sleep(wait + wait.mul_f64(rand::random::<f64>() * 0.1)).await;
    }
}

/// One beat: a heartbeat per school; every school is tried, the first
/// failure is returned.
async fn send_all(
    client: &reqwest::Client,
    beat: &Beat,
    config: &crate::config::Config,
    upload: &crate::config::UploadConfig,
) -> Result<(), String> {
    let node = {
        let store = beat.store.lock().unwrap_or_else(|e| e.into_inner());
        crate::stats::store::database_id(store.connection())
    };
    let (node, token) = match (node, super::upload::token(upload)) {
        (Some(node), Ok(token)) => (node, token),
        (None, _) => return Err(failed(beat, "the statistics database has no id".into())),
        (_, Err(reason)) => return Err(failed(beat, reason)),
    };
    let ready = crate::app::ready::readiness(&beat.handler).await;
    let (fetched, etag) = beat.central.last_fetch();
    let mut first_error = None;
    for school in &config.schools {
        let heartbeat = Heartbeat {
            school: school.id.clone(),
            node: node.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: beat.started_at.to_string(),
            filter_up: ready.ready(),
            last_policy_fetch: fetched.map(|t| t.to_string()),
            policy_etag: etag.clone(),
            lists: ready.lists_loaded as u64,
        };
        let body = serde_json::to_vec(&heartbeat).unwrap_or_default();
        match super::upload::post_json(client, &upload.heartbeat_url, &token, body).await {
            Ok(_) => {
                beat.figures.sent.fetch_add(1, Ordering::Relaxed);
                beat.figures
                    .last_success
                    .store(jiff::Timestamp::now().as_second() as u64, Ordering::Relaxed);
                info!(school = %school.id, filter_up = heartbeat.filter_up, "heartbeat sent to the office");
            }
            Err(reason) => {
                let reason = failed(beat, format!("school {}: {reason}", school.id));
                first_error.get_or_insert(reason);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Counts a failed heartbeat; gives `reason` back.
fn failed(beat: &Beat, reason: String) -> String {
    beat.figures.failed.fetch_add(1, Ordering::Relaxed);
    reason
}

/// Why the office refused a heartbeat; the text is the API's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: &'static str,
    },
    #[error("a token of school {token} cannot send the heartbeat of school {school}")]
    OtherSchool { token: String, school: String },
}

fn field(field: &'static str, problem: &'static str) -> Refused {
    Refused::Field { field, problem }
}

/// An RFC 3339 time as Unix seconds.
fn seconds(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// A heartbeat as the office keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub school: String,
    pub node: String,
    /// Unix times.
    pub received_at: i64,
    pub started_at: i64,
    pub last_policy_fetch: Option<i64>,
    pub version: String,
    pub filter_up: bool,
    pub policy_etag: Option<String>,
    pub lists: u64,
}

/// Checks a heartbeat's body, sent with a token of `token_school`; each
/// refusal names the field. Fields it does not know are ignored (a newer
/// node), and not kept.
pub fn check(body: &[u8], token_school: &str, received_at: i64) -> Result<Kept, Refused> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Refused::NotJson(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| Refused::NotJson(format!("it is {value}")))?;
    let text = |name: &'static str, longest: usize| -> Result<Option<&str>, Refused> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => {
                Err(field(name, "must not be empty"))
            }
            Some(serde_json::Value::String(s)) if s.len() > longest => Err(field(name, "too long")),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(field(name, "must be a string")),
        }
    };
    let required = |name: &'static str, longest: usize, what: &'static str| {
        text(name, longest)?.ok_or(field(name, what))
    };
    let school = required("school", 64, "required: the school's id")?;
    if school != token_school {
        return Err(Refused::OtherSchool {
            token: token_school.to_string(),
            school: school.to_string(),
        });
    }
    let node = required("node", 64, "required: the node's statistics database id")?;
    if !node
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(field("node", "only letters, digits, '-', '_' and '.'"));
    }
    let version = required("version", 64, "required: the node's edudns version")?;
    let started_at = required("started_at", 64, "required: an RFC 3339 time")?;
    let started_at = seconds(started_at).ok_or(field(
        "started_at",
        "not an RFC 3339 time like 2026-12-07T01:02:03Z",
    ))?;
    let filter_up = match object.get("filter_up") {
        Some(serde_json::Value::Bool(b)) => *b,
        None => return Err(field("filter_up", "required: true or false")),
        Some(_) => return Err(field("filter_up", "must be true or false")),
    };
    let last_policy_fetch = text("last_policy_fetch", 64)?
        .map(|t| {
            seconds(t).ok_or(field(
                "last_policy_fetch",
                "not an RFC 3339 time like 2026-12-07T01:02:03Z (or null)",
            ))
        })
        .transpose()?;
    let policy_etag = text("policy_etag", 256)?.map(str::to_string);
    let lists = match object.get("lists") {
        Some(n) => n
            .as_u64()
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or(field("lists", "must be a whole number, 0 or more"))?,
        None => return Err(field("lists", "required: the number of lists loaded")),
    };
    Ok(Kept {
        school: school.to_string(),
        node: node.to_string(),
        received_at,
        started_at,
        last_policy_fetch,
        version: version.to_string(),
        filter_up,
        policy_etag,
        lists,
    })
}

/// Keeps `kept` as the latest of its school and node.
pub fn store(db: &Connection, kept: &Kept) -> rusqlite::Result<()> {
    db.execute_batch(SCHEMA)?;
    db.execute(
        "INSERT INTO office_heartbeats (school, node, received_at, version, started_at,
             filter_up, last_policy_fetch, policy_etag, lists)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (school, node) DO UPDATE SET received_at = excluded.received_at,
             version = excluded.version, started_at = excluded.started_at,
             filter_up = excluded.filter_up, last_policy_fetch = excluded.last_policy_fetch,
             policy_etag = excluded.policy_etag, lists = excluded.lists",
        params![
            kept.school,
            kept.node,
            kept.received_at,
            kept.version,
            kept.started_at,
            kept.filter_up,
            kept.last_policy_fetch,
            kept.policy_etag,
            kept.lists as i64,
        ],
    )?;
    Ok(())
}

/// Every kept heartbeat, in (school, node) order.
pub fn latest(db: &Connection) -> rusqlite::Result<Vec<Kept>> {
    db.execute_batch(SCHEMA)?;
    let mut statement = db.prepare_cached(
        "SELECT school, node, received_at, started_at, last_policy_fetch, version,
                filter_up, policy_etag, lists
         FROM office_heartbeats ORDER BY school, node",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Kept {
            school: row.get(0)?,
            node: row.get(1)?,
            received_at: row.get(2)?,
            started_at: row.get(3)?,
            last_policy_fetch: row.get(4)?,
            version: row.get(5)?,
            filter_up: row.get(6)?,
            policy_etag: row.get(7)?,
            lists: row.get::<_, i64>(8)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> serde_json::Value {
        serde_json::to_value(Heartbeat {
            school: "s1".into(),
            node: "0123abcd".into(),
            version: "0.1.0".into(),
            started_at: "2026-12-07T01:00:00Z".into(),
            filter_up: true,
            last_policy_fetch: Some("2026-12-07T01:00:05Z".into()),
            policy_etag: Some("\"abc\"".into()),
            lists: 3,
        })
        .unwrap()
    }

    fn refused(body: &serde_json::Value) -> String {
        check(body.to_string().as_bytes(), "s1", 0)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_heartbeat_is_kept_latest_first_and_read_back() {
        let db = Connection::open_in_memory().unwrap();
        let kept = check(good().to_string().as_bytes(), "s1", 100).unwrap();
        assert_eq!(kept.last_policy_fetch, Some(1_796_605_205));
        store(&db, &kept).unwrap();
        let mut later = good();
        later["filter_up"] = false.into();
        later["last_policy_fetch"] = serde_json::Value::Null;
        later["policy_etag"] = serde_json::Value::Null;
        // A field it does not know is ignored.
        later["extra"] = "x".into();
        store(
            &db,
            &check(later.to_string().as_bytes(), "s1", 200).unwrap(),
        )
        .unwrap();
        let rows = latest(&db).unwrap();
        assert_eq!(rows.len(), 1, "the latest wins: {rows:?}");
        assert_eq!(
            (
                rows[0].received_at,
                rows[0].filter_up,
                rows[0].last_policy_fetch
            ),
            (200, false, None)
        );
    }

    #[test]
    fn each_refusal_names_the_field() {
        for (name, value, words) in [
            ("school", serde_json::json!(7), "school: must be a string"),
            ("node", serde_json::json!(""), "node: must not be empty"),
            ("node", serde_json::json!("a b"), "node: only letters"),
            (
                "started_at",
                serde_json::json!("yesterday"),
                "started_at: not an RFC 3339",
            ),
            (
                "filter_up",
                serde_json::json!("yes"),
                "filter_up: must be true or false",
            ),
            (
                "last_policy_fetch",
                serde_json::json!("soon"),
                "last_policy_fetch: not an RFC 3339",
            ),
            (
                "policy_etag",
                serde_json::json!(1),
                "policy_etag: must be a string",
            ),
            (
                "lists",
                serde_json::json!(-1),
                "lists: must be a whole number",
            ),
        ] {
            let mut body = good();
            body[name] = value;
            let text = refused(&body);
            assert!(text.starts_with(words), "{name}: {text}");
        }
        let mut body = good();
        body.as_object_mut().unwrap().remove("version");
        assert!(refused(&body).starts_with("version: required"));
        assert!(refused(&serde_json::json!([1])).starts_with("the body is not a JSON object"));
        let mut other = good();
        other["school"] = "s2".into();
        assert_eq!(
            check(other.to_string().as_bytes(), "s1", 0),
            Err(Refused::OtherSchool {
                token: "s1".into(),
                school: "s2".into()
            })
        );
    }
}
