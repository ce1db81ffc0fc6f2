//! Pulling the policy from the education office (`[central]`).
//!
//! Every `central.interval` the node asks `central.url` with the validators
//! of its last copy (the same conditional GET as list subscriptions). A new
//! document is validated together with the node's own file by the code
//! every configuration goes through ([`crate::config::central`]); only a
//! valid one replaces the cached copy, and only a reload that succeeds keeps
//! it — otherwise the previous copy is put back. An invalid or unreachable
//! policy never touches the running one: it is logged with its line and
//! counted in `edudns_central_policy_fetches_total{result}`.
//!
//! The last fetch that worked (a new policy in force, or 304) and the ETag
//! of the policy in force are kept in [`CentralFigures`], which the
//! heartbeat to the office reads (`office::heartbeat`).

use crate::app::reload::Reloader;
use crate::config::central::{CentralRef, central_ref, parse_with_policy};
use crate::config::{ConfigError, ListRoot};
use crate::lists::download::{self, Fetched, Meta, Rejected};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// Largest policy document accepted.
const MAX_POLICY_BYTES: u64 = 8 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// What one fetch did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new policy was validated, cached and is in force.
    Updated,
    /// The office said 304: the cached copy is current.
    NotModified,
}

/// The last fetch that worked, for the heartbeat (`office::heartbeat`).
#[derive(Debug, Default)]
pub struct CentralFigures {
    /// Unix time of the last fetch that worked (200 in force, or 304); 0: never.
    last_success: AtomicI64,
    /// The ETag of the policy in force, when the office sent one.
    etag: Mutex<Option<String>>,
}

impl CentralFigures {
    /// A fetch that worked at `at` (Unix time); `etag` is the policy's in force.
    pub fn record(&self, at: i64, etag: Option<String>) {
        *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = etag;
        self.last_success.store(at, Ordering::Relaxed);
    }

    /// (when the last fetch worked, the ETag in force); `None` before any.
    pub fn last_fetch(&self) -> (Option<jiff::Timestamp>, Option<String>) {
        let at = self.last_success.load(Ordering::Relaxed);
        if at == 0 {
            return (None, None);
        }
        let etag = self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (jiff::Timestamp::from_second(at).ok(), etag)
    }

    /// What the cached copy's validators say of the last fetch that put a
    /// policy in force (the start's, or a previous run's), so a restarted
    /// node does not report "never"; empty without `[central]` or a copy.
    pub fn from_cache(config_path: &Path) -> CentralFigures {
        let figures = CentralFigures::default();
        let Ok(local) = std::fs::read_to_string(config_path) else {
            return figures;
        };
        let base_dir = config_path.parent().unwrap_or(Path::new("."));
        let Some(central) = central_ref(&local, base_dir) else {
            return figures;
        };
        if !central.cache_file.exists() {
            return figures;
        }
        let meta = download::read_meta(&central.cache_file);
        if let Some(at) = meta.last_success {
            // After a refused document the validators are the refused one's.
            let etag = meta.etag.filter(|_| meta.last_error.is_none());
            figures.record(at, etag);
        }
        figures
    }
}

/// Why a fetch changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("central policy {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: Rejected,
    },
    #[error("central policy token file {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("central policy from {url} refused, the previous one stays in force: {source}")]
    Invalid {
        url: String,
        #[source]
        source: ConfigError,
    },
    #[error("central policy from {url} unchanged since it was refused: {reason}")]
    StillRefused { url: String, reason: String },
    #[error("central policy cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "central policy from {url} was valid but the reload failed, the previous one stays in force: {reason}"
    )]
    Reload { url: String, reason: String },
}

impl CentralError {
    /// The `result` label of `edudns_central_policy_fetches_total`.
    pub fn label(&self) -> &'static str {
        match self {
            CentralError::Invalid { .. }
            | CentralError::StillRefused { .. }
            | CentralError::Reload { .. } => "invalid",
            _ => "error",
        }
    }
}

fn token(central: &CentralRef) -> Result<Option<String>, CentralError> {
    let Some(path) = &central.token_file else {
        return Ok(None);
    };
    std::fs::read_to_string(path)
        .map(|t| Some(t.trim().to_string()))
        .map_err(|source| CentralError::Token {
            path: path.clone(),
            source,
        })
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// One conditional GET; the new document (if any) validated against the
/// node's own file. Returns the text to install, or `None` for 304.
async fn fetch_valid(
    config_path: &Path,
    local: &str,
    central: &CentralRef,
) -> Result<(Option<String>, Meta), CentralError> {
    let meta = download::read_meta(&central.cache_file);
    let bearer = token(central)?;
    let fetched = download::fetch(
        &download::http_client(FETCH_TIMEOUT),
        &central.url,
        &meta,
        MAX_POLICY_BYTES,
        bearer.as_deref(),
    )
    .await;
    let fail = |source| CentralError::Fetch {
        url: central.url.clone(),
        source,
    };
    let (body, etag, last_modified) = match fetched.map_err(fail)? {
        // The document we have the validators of was refused: still is.
        Fetched::NotModified if meta.last_error.is_some() => {
            return Err(CentralError::StillRefused {
                url: central.url.clone(),
                reason: meta.last_error.clone().unwrap_or_default(),
            });
        }
        Fetched::NotModified if central.cache_file.exists() => return Ok((None, meta)),
        Fetched::NotModified => return Err(fail(Rejected::Status(304))),
        Fetched::Body {
            body,
            etag,
            last_modified,
        } => (body, etag, last_modified),
    };
    let text = String::from_utf8(body)
        .map_err(|_| fail(Rejected::Transfer("the policy is not UTF-8 text".into())))?;
    let base_dir = config_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let received = PathBuf::from(format!("{} (as received)", central.url));
    let meta = Meta {
        url: central.url.clone(),
        etag,
        last_modified,
        last_attempt: Some(now()),
        ..meta
    };
    match parse_with_policy(
        config_path,
        local,
        &text,
        &received,
        ListRoot::Directory(base_dir),
    ) {
        Ok(_) => Ok((Some(text), meta)),
        Err(source) => {
            // Remember the validators: the same broken document is not
            // downloaded and refused again at every interval.
            let meta = Meta {
                last_error: Some(source.to_string()),
                ..meta
            };
            let _ = write_meta(&central.cache_file, &meta);
            Err(CentralError::Invalid {
                url: central.url.clone(),
                source,
            })
        }
    }
}

fn write_meta(cache_file: &Path, meta: &Meta) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).unwrap_or_default();
    download::write_atomically(&download::meta_path(cache_file), &bytes)
}

/// The validators of the copy now in force, and no error.
fn record_success(central: &CentralRef, meta: Meta) {
    let meta = Meta {
        last_success: Some(now()),
        last_error: None,
        ..meta
    };
    if let Err(error) = write_meta(&central.cache_file, &meta) {
        warn!(%error, "cannot record the central policy's validators; it will be downloaded again");
    }
}

fn write_cache(central: &CentralRef, text: &str) -> Result<(), CentralError> {
    download::write_atomically(&central.cache_file, text.as_bytes()).map_err(|source| {
        CentralError::Cache {
            path: central.cache_file.clone(),
            source,
        }
    })
}

/// At start: a node with `[central]` and no cached copy fetches one before
/// it loads (it has no policy to run otherwise). With a cached copy it
/// starts from that and the periodic task catches up.
pub async fn bootstrap(config_path: &Path) -> Result<(), CentralError> {
    let Ok(local) = std::fs::read_to_string(config_path) else {
        return Ok(());
    };
    let base_dir = config_path.parent().unwrap_or(Path::new("."));
    let Some(central) = central_ref(&local, base_dir) else {
        return Ok(());
    };
    if central.cache_file.exists() {
        return Ok(());
    }
    info!(url = %central.url, "no cached central policy: fetching it before start");
    let (text, meta) = fetch_valid(config_path, &local, &central).await?;
    if let Some(text) = text {
        write_cache(&central, &text)?;
        record_success(&central, meta);
        info!(url = %central.url, cache = %central.cache_file.display(), "central policy fetched");
    }
    Ok(())
}

/// One refresh of a running node: fetch, validate, cache, reload; the
/// previous copy is restored when the reload fails. With the outcome, the
/// ETag of the policy now in force.
pub async fn refresh(
    reloader: &Arc<Reloader>,
) -> Result<Option<(Outcome, Option<String>)>, CentralError> {
    let Some(config_path) = reloader.config_path().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let local = std::fs::read_to_string(&config_path).map_err(|source| CentralError::Cache {
        path: config_path.clone(),
        source,
    })?;
    let base_dir = config_path.parent().unwrap_or(Path::new("."));
    let Some(central) = central_ref(&local, base_dir) else {
        return Ok(None);
    };
    let (text, meta) = fetch_valid(&config_path, &local, &central).await?;
    let Some(text) = text else {
        return Ok(Some((Outcome::NotModified, meta.etag)));
    };
    let previous = std::fs::read_to_string(&central.cache_file).ok();
    write_cache(&central, &text)?;
    if let Err(error) = reloader.reload("central policy").await {
        match previous {
            Some(previous) => write_cache(&central, &previous)?,
            None => {
                let _ = std::fs::remove_file(&central.cache_file);
            }
        }
        let reason = error.to_string();
        let _ = write_meta(
            &central.cache_file,
            &Meta {
                last_error: Some(reason.clone()),
                ..meta
            },
        );
        return Err(CentralError::Reload {
            url: central.url.clone(),
            reason,
        });
    }
    let etag = meta.etag.clone();
    record_success(&central, meta);
    Ok(Some((Outcome::Updated, etag)))
}

/// Refreshes every `central.interval` (read from the configuration in
/// force, so a reload can change it), forever; each fetch that works is
/// recorded in `figures`.
pub async fn run(reloader: Arc<Reloader>, figures: Arc<CentralFigures>) {
    loop {
        let interval = reloader
            .handler
            .snapshot
            .load()
            .config
            .central
            .as_ref()
            .map(|c| c.interval);
        let Some(interval) = interval else {
            // No [central]: look again later in case a reload adds it.
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        tokio::time::sleep(interval).await;
        let stats = &reloader.handler.stats;
        match refresh(&reloader).await {
            Ok(None) => {}
            Ok(Some((outcome, etag))) => {
                figures.record(now(), etag);
                let label = match outcome {
                    Outcome::Updated => "updated",
                    Outcome::NotModified => "not_modified",
                };
                stats.central_fetches.with_label_values(&[label]).inc();
                stats.central_success.set(now() as f64);
                if outcome == Outcome::Updated {
                    info!("central policy updated and in force");
                }
            }
            Err(error) => {
                stats
                    .central_fetches
                    .with_label_values(&[error.label()])
                    .inc();
                warn!(%error, "central policy not applied");
            }
        }
    }
}
