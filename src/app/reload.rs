//! Hot reload: build a new snapshot off the hot path, swap it in whole, keep
//! the running one when anything fails. Triggered by SIGHUP and by changes
//! to the config file or any list file (polled; see `docs/architecture.md`
//! for why polling rather than inotify).

use crate::config::{self, Config, ConfigError};
use crate::dns::{Handler, Upstream};
use crate::snapshot::{self, BuildError, Snapshot};
use crate::stats::Stats;
use crate::stats::flusher::SharedStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tracing::{error, info, warn};

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The copy compiled into the binary (used when no file is given and the
    /// default path does not exist).
    Embedded,
}

/// Command-line values that replace the file's, on every (re)load.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub dns_listen: Vec<SocketAddr>,
    pub http_listen: Vec<SocketAddr>,
    pub upstreams: Vec<config::UpstreamServer>,
    /// Replaces `server.fast_path` (the test suite runs both paths).
    pub fast_path: Option<bool>,
}

/// Any reason a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lists(#[from] BuildError),
    #[error("cannot start the upstream resolver: {0}")]
    Upstream(String),
}

impl ConfigSource {
    /// Reads, validates and applies the overrides.
    pub fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        let config = match self {
            ConfigSource::File(path) => config::load(path)?,
            ConfigSource::Embedded => config::load_embedded()?,
        };
        Ok(overrides.apply(config))
    }

    /// Validates `text` as if it were this source's file (same checks as
    /// `check-config`), with the overrides applied.
    pub fn load_text(&self, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let config = match self {
            ConfigSource::File(path) => config::load_str(path, text)?,
            ConfigSource::Embedded => config::load_embedded()?,
        };
        Ok(overrides.apply(config))
    }
}

impl Overrides {
    fn apply(&self, mut config: Config) -> Config {
        let overrides = self;
        if !overrides.dns_listen.is_empty() {
            config.server.dns_listen = overrides.dns_listen.clone();
        }
        if !overrides.http_listen.is_empty() {
            config.server.http_listen = overrides.http_listen.clone();
        }
        if !overrides.upstreams.is_empty() {
            config.upstream.servers = overrides.upstreams.clone();
        }
        if let Some(fast_path) = overrides.fast_path {
            config.server.fast_path = fast_path;
        }
        config
    }
}

/// Why a configuration edit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "the configuration is the copy built into the binary; start edudns with --config FILE to edit it"
    )]
    Embedded,
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads and builds a snapshot (blocking work: call from `spawn_blocking`).
pub fn load_snapshot(
    source: &ConfigSource,
    overrides: &Overrides,
    generation: u64,
) -> Result<Snapshot, LoadError> {
    let config = source.load(overrides)?;
    let cache = snapshot::cache::path_for(&config.stats.database);
    Ok(snapshot::build_cached(config, generation, None, &cache)?)
}

/// Counts what a newly installed snapshot loaded (metrics and the list
/// versions reports name).
pub fn record_installed(stats: &Stats, store: &SharedStore, snapshot: &Snapshot) {
    stats.record_snapshot(snapshot);
    let lists: Vec<(String, String, usize, String)> = snapshot
        .lists_loaded
        .iter()
        .map(|l| {
            (
                snapshot.config.categories[l.category].id.clone(),
                l.display.clone(),
                l.entries,
                l.sha256.clone(),
            )
        })
        .collect();
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = store.record_lists(jiff::Timestamp::now().as_second(), &lists) {
        warn!(%e, "cannot record list versions");
    }
}

/// Performs reloads and counts them.
pub struct Reloader {
    pub source: ConfigSource,
    pub overrides: Overrides,
    pub handler: Arc<Handler>,
    store: SharedStore,
    generation: AtomicU64,
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    lock: tokio::sync::Mutex<()>,
    /// Fingerprint of the files as an edit through the API left them, so
    /// the file watcher does not rebuild the snapshot a second time.
    written: std::sync::Mutex<Option<Fingerprint>>,
}

type Fingerprint = Vec<Option<(SystemTime, u64)>>;

impl Reloader {
    pub fn new(
        source: ConfigSource,
        overrides: Overrides,
        handler: Arc<Handler>,
        store: SharedStore,
    ) -> Self {
        let generation = handler.snapshot.load().generation;
        Reloader {
            source,
            overrides,
            handler,
            store,
            generation: AtomicU64::new(generation),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            lock: tokio::sync::Mutex::new(()),
            written: std::sync::Mutex::new(None),
        }
    }

    /// The configuration file's current text (for edits), or `None` for the
    /// embedded configuration.
    pub fn config_path(&self) -> Option<&std::path::Path> {
        match &self.source {
            ConfigSource::File(path) => Some(path),
            ConfigSource::Embedded => None,
        }
    }

    /// Applies a new configuration text: validated and built exactly like a
    /// reload, then written atomically (mode 0600), then swapped in. Nothing
    /// is written and the running snapshot stays when any step fails.
    /// Returns the new snapshot's configuration.
    pub async fn apply_text(
        self: &Arc<Self>,
        text: String,
        trigger: &str,
    ) -> Result<Arc<Config>, ApplyError> {
        let Some(path) = self.config_path().map(std::path::Path::to_path_buf) else {
            return Err(ApplyError::Embedded);
        };
        let _one_at_a_time = self.lock.lock().await;
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let this = self.clone();
        let built = tokio::task::spawn_blocking(move || {
            let config = this
                .source
                .load_text(&text, &this.overrides)
                .map_err(LoadError::from)?;
            let running = this.handler.snapshot.load_full();
            let snapshot = snapshot::build_reusing(config, generation, Some(&running))
                .map_err(LoadError::from)?;
            drop(running);
            crate::admin::edit::write_private(&path, text.as_bytes())
                .map_err(|source| ApplyError::Write { path, source })?;
            Ok::<_, ApplyError>(snapshot)
        })
        .await
        .unwrap_or_else(|e| Err(LoadError::Upstream(format!("edit task failed: {e}")).into()));
        let result = built.and_then(|snapshot| {
            let config = snapshot.config.clone();
            *self.written.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(fingerprint(&config.watched_files()));
            self.install(snapshot).map_err(ApplyError::from)?;
            Ok(config)
        });
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.handler
            .stats
            .reloads
            .with_label_values(&[outcome])
            .inc();
        match &result {
            Ok(_) => {
                self.generation.store(generation, Ordering::SeqCst);
                self.successes.fetch_add(1, Ordering::Relaxed);
                info!(trigger, generation, "configuration edit applied");
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                warn!(trigger, %error, "configuration edit refused; the running configuration stays in force");
            }
        }
        result
    }

    /// Builds a new snapshot and swaps it in; on any error the running
    /// snapshot stays and the error is logged and returned.
    pub async fn reload(self: &Arc<Self>, trigger: &str) -> Result<u64, Arc<LoadError>> {
        let _one_at_a_time = self.lock.lock().await;
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let this = self.clone();
        let built = tokio::task::spawn_blocking(move || {
            load_snapshot(&this.source, &this.overrides, generation)
        })
        .await
        .unwrap_or_else(|e| Err(LoadError::Upstream(format!("reload task failed: {e}"))));
        let result = built.and_then(|snapshot| self.install(snapshot));
        // The old snapshot and the parse buffers are freed by now; give the
        // memory back to the system instead of keeping it in malloc's arenas.
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
        match result {
            Ok(()) => {
                self.generation.store(generation, Ordering::SeqCst);
                self.successes.fetch_add(1, Ordering::Relaxed);
                self.handler
                    .stats
                    .reloads
                    .with_label_values(&["success"])
                    .inc();
                info!(trigger, generation, "reload succeeded");
                Ok(generation)
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.handler
                    .stats
                    .reloads
                    .with_label_values(&["failure"])
                    .inc();
                error!(trigger, %error, "reload failed; the running configuration stays in force");
                Err(Arc::new(error))
            }
        }
    }

    fn install(&self, mut snapshot: Snapshot) -> Result<(), LoadError> {
        let running = self.handler.snapshot.load();
        if running.config.stats.database != snapshot.config.stats.database {
            warn!("stats.database changed: restart edudns to use the new file");
        }
        if running.config.server.management_listen != snapshot.config.server.management_listen {
            warn!("server.management_listen changed: restart edudns to apply it");
        }
        if running.config.server.dns_listen != snapshot.config.server.dns_listen {
            warn!("server.dns_listen changed: restart edudns to apply new listen addresses");
        }
        let upstream = self.handler.upstream.load();
        if !same_upstream(upstream.config(), &snapshot.config.upstream) {
            let new = Upstream::succeeding(&snapshot.config.upstream, &upstream)
                .map_err(|e| LoadError::Upstream(e.to_string()))?;
            self.handler.upstream.store(Arc::new(new));
            self.handler.wire.clear();
            info!("upstream settings changed: resolver rebuilt");
        }
        snapshot.counters = self.handler.stats.table_for(&snapshot.config);
        snapshot.takedowns = running.takedowns.clone();
        snapshot.allowances = running.allowances.clone();
        record_installed(&self.handler.stats, &self.store, &snapshot);
        self.handler.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// Reloads on SIGHUP, forever.
    /// `hangup` is made by the caller before the service says it started:
    /// a SIGHUP before the handler exists would end the process.
    pub async fn on_sighup(self: Arc<Self>, hangup: std::io::Result<tokio::signal::unix::Signal>) {
        let Ok(mut hangup) = hangup else {
            warn!("cannot install the SIGHUP handler; reload by file change only");
            return;
        };
        while hangup.recv().await.is_some() {
            let _ = self.reload("SIGHUP").await;
        }
    }

    /// Reloads when the config file or a list file changes, forever.
    pub async fn watch_files(self: Arc<Self>, interval: Duration) {
        let mut last = fingerprint(&self.handler.snapshot.load().config.watched_files());
        loop {
            tokio::time::sleep(interval).await;
            let files = self.handler.snapshot.load().config.watched_files();
            let now = fingerprint(&files);
            let written = self
                .written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if now != last && written.as_ref() == Some(&now) {
                // Our own edit, already in force.
                last = now;
            } else if now != last {
                let _ = self.reload("file change").await;
                // The new snapshot may watch other files: fingerprint those.
                last = fingerprint(&self.handler.snapshot.load().config.watched_files());
            }
        }
    }
}

/// Returns freed heap memory to the operating system (glibc keeps it
/// otherwise, and RSS after a 1M-domain reload would stay inflated).
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn same_upstream(a: &config::UpstreamConfig, b: &config::UpstreamConfig) -> bool {
    a.servers == b.servers
        && a.tls_ca_file == b.tls_ca_file
        && a.protocol == b.protocol
        && a.timeout == b.timeout
        && a.cache_size == b.cache_size
        && a.case_randomization == b.case_randomization
}

/// Modification time and size of each file (missing files count too).
fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}
