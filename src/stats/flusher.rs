//! Moves counts from memory to the durable store: every
//! `stats.flush_interval_secs`, and once more at shutdown.

use super::Stats;
use super::store::{Store, StoreError};
use crate::snapshot::SharedSnapshot;
use std::sync::{Arc, Mutex};
use tracing::{error, warn};

/// The store shared by the flusher, the reloader and the reports API.
pub type SharedStore = Arc<Mutex<Store>>;

/// One flush: counters and top-k into the store, retention applied.
pub fn flush(
    stats: &Stats,
    store: &SharedStore,
    snapshot: &SharedSnapshot,
) -> Result<usize, StoreError> {
    let snapshot = snapshot.load();
    let config = &snapshot.config;
    let now = jiff::Timestamp::now();
    let day_of_school = |school: &str| -> String {
        let tz = config
            .schools
            .iter()
            .find(|s| s.id == school)
            .map_or(jiff::tz::TimeZone::UTC, |s| s.timezone.clone());
        now.to_zoned_datetime(tz).date().to_string()
    };
    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
    let rows = store.flush(stats, now.as_second(), &day_of_school)?;
    store.apply_retention(now.as_second(), config.stats.retention_days)?;
    store.expire_incidents(now.as_second(), config.privacy.incident_log_days)?;
    Ok(rows)
}

/// Flushes forever at the configured interval (off the async workers).
pub async fn run(stats: Arc<Stats>, store: SharedStore, snapshot: SharedSnapshot) {
    loop {
        let interval = snapshot.load().config.stats.flush_interval;
        tokio::time::sleep(interval).await;
        let (stats, store, snapshot) = (stats.clone(), store.clone(), snapshot.clone());
        match tokio::task::spawn_blocking(move || flush(&stats, &store, &snapshot)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                error!(%e, "statistics flush failed; counts stay in memory for the next one")
            }
            Err(e) => warn!(%e, "statistics flush task failed"),
        }
    }
}
