//! Keeps subscribed lists fresh while the service runs: each is refreshed at
//! start and then every `refresh` interval; an accepted new version triggers
//! a reload (the same path as any config or list change).
//!
//! Downloads run side by side (`[lists] parallel_downloads`), each on its
//! own schedule, so a slow or failing source never holds back the others.
//! Updates that land close together share one rebuild of the lists: the
//! reload waits [`RELOAD_SETTLE`] after the first of them.

use super::download::{self, Refreshed};
use crate::app::reload::Reloader;
use crate::config::{Download, ListSpec, ListsConfig};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tracing::{info, warn};

/// How often the scheduler looks for due subscriptions.
const TICK: Duration = Duration::from_secs(1);

/// How long a reload waits after an update for others finishing with it.
pub const RELOAD_SETTLE: Duration = Duration::from_secs(1);

/// Runs forever.
pub async fn run(reloader: Arc<Reloader>, backoff: Duration) {
    let mut due: HashMap<String, Instant> = HashMap::new();
    let first = reloader.handler.snapshot.load_full();
    let client = download::client(&first.config.lists);
    let parallel = first.config.lists.parallel_downloads.max(1);
    let missing = first
        .config
        .downloads()
        .iter()
        .filter(|(_, spec, _)| !spec.path.exists())
        .count();
    if missing > 0 {
        info!(
            missing,
            subscriptions = first.config.downloads().len(),
            parallel,
            "downloading subscribed lists in the background; the lists already here (the curated floor) filter meanwhile"
        );
    }
    drop(first);
    let permits = Arc::new(Semaphore::new(parallel));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let updated = Arc::new(Notify::new());
    tokio::spawn(reload_after_updates(reloader.clone(), updated.clone()));
    loop {
        let snapshot = reloader.handler.snapshot.load_full();
        let config = &snapshot.config;
        for (_, spec, subscription) in config.downloads() {
            let next = *due
                .entry(subscription.name.clone())
                .or_insert_with(Instant::now);
            if Instant::now() < next {
                continue;
            }
            if !running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(subscription.name.clone())
            {
                continue;
            }
            due.insert(
                subscription.name.clone(),
                Instant::now() + subscription.refresh,
            );
            let job = Job {
                reloader: reloader.clone(),
                client: client.clone(),
                spec: spec.clone(),
                subscription: subscription.clone(),
                limits: config.lists.clone(),
                backoff,
            };
            let (permits, running, updated) = (permits.clone(), running.clone(), updated.clone());
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                let name = job.subscription.name.clone();
                if job.refresh().await {
                    updated.notify_one();
                }
                running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
            });
        }
        drop(snapshot);
        tokio::time::sleep(TICK).await;
    }
}

/// One reload per burst of accepted updates.
async fn reload_after_updates(reloader: Arc<Reloader>, updated: Arc<Notify>) {
    loop {
        updated.notified().await;
        tokio::time::sleep(RELOAD_SETTLE).await;
        let _ = reloader.reload("list update").await;
    }
}

/// One subscription's refresh and what it reports.
struct Job {
    reloader: Arc<Reloader>,
    client: reqwest::Client,
    spec: ListSpec,
    subscription: Download,
    limits: ListsConfig,
    backoff: Duration,
}

impl Job {
    /// Downloads, logs and counts; true when a new version was accepted.
    async fn refresh(&self) -> bool {
        let stats = &self.reloader.handler.stats;
        let name = self.subscription.name.as_str();
        stats.downloads_running.inc();
        let started = Instant::now();
        let result = download::refresh(&self.client, &self.spec, &self.limits, self.backoff).await;
        stats.downloads_running.dec();
        let ms = started.elapsed().as_millis() as u64;
        let result_label = match &result {
            Ok(Refreshed::Updated { entries }) => {
                let meta = download::read_meta(&self.spec.path);
                info!(
                    source = %name,
                    entries,
                    bytes = meta.bytes,
                    ms,
                    protected_ignored = meta.protected_ignored,
                    "subscribed list downloaded"
                );
                "updated"
            }
            Ok(Refreshed::NotModified) => {
                info!(source = %name, ms, "subscribed list not modified");
                "not_modified"
            }
            Err(error) => {
                warn!(source = %name, %error, ms, "subscribed list rejected; the previous copy (if any) stays in force");
                "rejected"
            }
        };
        stats
            .list_downloads
            .with_label_values(&[name, result_label])
            .inc();
        if result.is_ok() {
            stats
                .list_download_success
                .with_label_values(&[name])
                .set(jiff::Timestamp::now().as_second() as f64);
        }
        matches!(result, Ok(Refreshed::Updated { .. }))
    }
}
