//! Wiring: config → snapshot → statistics → DNS and management listeners →
//! reload triggers and the flusher → shutdown (with a last flush).
//! `main.rs` calls [`start`] and waits for a signal; tests call it in-process.
//! `reload` is the policy edit's path: validate, build a snapshot off the
//! hot path, swap it in only when everything loaded.
//!
//! Uses: every room below it (`config`, `snapshot`, `dns`, `encrypted`, `stats`, `web`,
//! `lists`, `office`, `takedown`, `admin`, `policy`).
//! Used by: `cli`, the integration tests; the background tasks that trigger
//! reloads (`lists::subscriptions`, `office::pull`, `web::admin`) use
//! `reload::Reloader`.

pub mod ready;
pub mod reload;

use crate::dns::{DnsServer, Handler, Limits, Upstream};
use crate::policy::clock::{Clock, SystemClock};
use crate::stats::Stats;
use crate::stats::flusher::{self, SharedStore};
use crate::stats::store::{Store, StoreError};
use crate::web::{self, AppState};
use arc_swap::ArcSwap;
use reload::{ConfigSource, LoadError, Overrides, Reloader};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use tracing::{error, info};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running edudns; dropping it stops everything.
pub struct Running {
    pub handler: Arc<Handler>,
    pub reloader: Arc<Reloader>,
    pub dns: DnsServer,
    /// DoT and DoH listeners (none unless `[encrypted_dns]` names one).
    pub encrypted: crate::encrypted::EncryptedServer,
    pub store: SharedStore,
    /// The bound management address (metrics, API).
    pub management_addr: SocketAddr,
    /// Bound warning-page addresses (HTTP), then the HTTPS refusers.
    pub http_addrs: Vec<SocketAddr>,
    pub https_addrs: Vec<SocketAddr>,
    tasks: JoinSet<()>,
    management: tokio::task::JoinHandle<()>,
    web_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Bound DNS addresses (UDP and TCP share each).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns.local_addrs
    }

    /// Writes what is counted in memory to the durable store now.
    pub fn flush(&self) -> Result<usize, StoreError> {
        flusher::flush(&self.handler.stats, &self.store, &self.handler.snapshot)
    }

    /// Stops listeners and background tasks, then flushes the statistics.
    pub fn shutdown(&mut self) {
        self.dns.shutdown();
        self.encrypted.shutdown();
        self.tasks.abort_all();
        self.management.abort();
        for task in &self.web_tasks {
            task.abort();
        }
        if let Err(e) = self.flush() {
            error!(%e, "final statistics flush failed");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Loads the configuration, binds the listeners and starts the reload triggers.
pub async fn start(source: ConfigSource, overrides: Overrides) -> Result<Running, StartError> {
    start_with_clock(source, overrides, Arc::new(SystemClock)).await
}

/// [`start`] with another time source (tests move time for schedules).
pub async fn start_with_clock(
    source: ConfigSource,
    overrides: Overrides,
    clock: Arc<dyn Clock>,
) -> Result<Running, StartError> {
    let started_at = jiff::Timestamp::now();
    if let ConfigSource::File(path) = &source
        && let Err(error) = crate::office::pull::bootstrap(path).await
    {
        // Without a cached copy the load below says what is missing.
        tracing::error!(%error, "cannot fetch the central policy");
    }
    // The last [central] fetch (at the start or before): for the heartbeat.
    let central_figures = Arc::new(match &source {
        ConfigSource::File(path) => crate::office::pull::CentralFigures::from_cache(path),
        _ => Default::default(),
    });
    let (build_source, build_overrides) = (source.clone(), overrides.clone());
    let mut snapshot = tokio::task::spawn_blocking(move || {
        reload::load_snapshot(&build_source, &build_overrides, 1)
    })
    .await
    .map_err(|e| LoadError::Upstream(format!("load task failed: {e}")))??;
    // The list texts and build buffers are freed: give the memory back.
    reload::release_free_memory();
    let config = snapshot.config.clone();
    let stats = Arc::new(Stats::new());
    let store: SharedStore = Arc::new(Mutex::new(Store::open(&config.stats.database)?));
    snapshot.counters = stats.table_for(&config);
    let takedowns = Arc::new(crate::takedown::Takedowns::default());
    {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = crate::takedown::load(store.connection(), &takedowns).unwrap_or(0);
        if loaded > 0 {
            info!(entries = loaded, "takedown entries in force");
        }
    }
    snapshot.takedowns = takedowns.clone();
    {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        let running = crate::admin::allowances::load(
            store.connection(),
            &snapshot.allowances,
            clock.now().as_second(),
        )
        .unwrap_or(0);
        if running > 0 {
            info!(allowances = running, "temporary allowances in force");
        }
    }
    reload::record_installed(&stats, &store, &snapshot);
    let upstream =
        Upstream::new(&config.upstream).map_err(|e| LoadError::Upstream(e.to_string()))?;
    let handler = Arc::new(Handler::new(
        Arc::new(ArcSwap::from_pointee(snapshot)),
        upstream,
        clock,
        stats.clone(),
    ));
    let limits = Limits {
        udp_workers: config.server.udp_workers,
        max_in_flight: config.server.max_in_flight,
        tcp_max_connections: config.server.tcp_max_connections,
        tcp_idle_timeout: config.server.tcp_idle_timeout,
    };
    let dns = DnsServer::start(handler.clone(), &config.server.dns_listen, limits).await?;
    let encrypted = crate::encrypted::EncryptedServer::start(
        handler.clone(),
        dns.in_flight.clone(),
        &config.encrypted_dns,
    )
    .await?;
    let reloader = Arc::new(Reloader::new(
        source,
        overrides,
        handler.clone(),
        store.clone(),
    ));
    let state = AppState {
        handler: handler.clone(),
        store: Some(store.clone()),
        reloader: Some(reloader.clone()),
        admin: Arc::new(web::admin::Admin::default()),
        upload: Arc::default(),
        heartbeat: Arc::default(),
        ingest: Arc::default(),
    };
    let upload_figures = state.upload.clone();
    let heartbeat_figures = state.heartbeat.clone();
    let (management_addr, management) =
        web::serve_management(config.server.management_listen, state.clone()).await?;
    let sinkhole = web::warning::SinkholeState::new(handler.clone(), store.clone());
    let (mut http_addrs, mut https_addrs, mut web_tasks) = (Vec::new(), Vec::new(), Vec::new());
    for addr in &config.server.http_listen {
        let (bound, task) = web::warning::serve(*addr, sinkhole.clone()).await?;
        http_addrs.push(bound);
        web_tasks.push(task);
    }
    let school_ca = if config.server.https_listen.is_empty() {
        None
    } else {
        web::school_ca::MintingResolver::load(&config.warning_page.ca_dir)
            .and_then(|ca| ca.map(|ca| ca.server_config()).transpose())
            .map_err(|e| std::io::Error::other(format!("school CA: {e}")))?
    };
    for addr in &config.server.https_listen {
        let (bound, task) = match &school_ca {
            Some(tls) => {
                web::warning::serve_tls_with_ca(*addr, sinkhole.clone(), tls.clone()).await?
            }
            None => web::warning::serve_tls_reject(*addr).await?,
        };
        https_addrs.push(bound);
        web_tasks.push(task);
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(web::admin::sweep_allowances(
        state,
        std::time::Duration::from_secs(5),
    ));
    // The SIGHUP handlers exist before "edudns started" is logged (and a
    // unit's reload can come): made here, not inside the tasks.
    let hangup = || tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tasks.spawn(reloader.clone().on_sighup(hangup()));
    if let Some(certificates) = encrypted.certificates.clone() {
        tasks.spawn(crate::encrypted::reload_on_sighup(
            certificates,
            handler.clone(),
            hangup(),
        ));
    }
    if let Some(interval) = config.reload.watch_interval {
        tasks.spawn(reloader.clone().watch_files(interval));
    }
    tasks.spawn(crate::takedown::feed::run(handler.clone(), store.clone()));
    tasks.spawn(crate::lists::subscriptions::run(
        reloader.clone(),
        std::time::Duration::from_millis(500),
    ));
    tasks.spawn(crate::office::pull::run(
        reloader.clone(),
        central_figures.clone(),
    ));
    tasks.spawn(crate::office::upload::run(
        handler.snapshot.clone(),
        store.clone(),
        upload_figures,
    ));
    // Its own task: a heartbeat never waits behind the days' backoff.
    tasks.spawn(crate::office::heartbeat::run(
        crate::office::heartbeat::Beat {
            handler: handler.clone(),
            store: store.clone(),
            central: central_figures,
            figures: heartbeat_figures,
            started_at,
        },
    ));
    tasks.spawn(flusher::run(stats, store.clone(), handler.snapshot.clone()));
    info!(
        schools = config.schools.len(),
        bands = config.bands.len(),
        categories = config.categories.len(),
        upstreams = ?config.upstream.servers,
        statistics = %config.stats.database.display(),
        "edudns started"
    );
    Ok(Running {
        handler,
        reloader,
        dns,
        encrypted,
        store,
        management_addr,
        http_addrs,
        https_addrs,
        tasks,
        management,
        web_tasks,
    })
}
