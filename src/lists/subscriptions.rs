//! Keeps subscribed lists fresh while the service runs: each is refreshed at
//! start and then every `refresh` interval; an accepted new version triggers
//! a reload (the same path as any config or list change).

use super::download::{self, Refreshed};
use crate::reload::Reloader;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How often the scheduler looks for due subscriptions.
const TICK: Duration = Duration::from_secs(1);

/// Runs forever.
pub async fn run(reloader: Arc<Reloader>, backoff: Duration) {
    let mut due: HashMap<String, Instant> = HashMap::new();
    let client = download::client(&reloader.handler.snapshot.load().config.lists);
    loop {
        let snapshot = reloader.handler.snapshot.load_full();
        let config = &snapshot.config;
        let mut updated = false;
        for (_, spec, subscription) in config.downloads() {
            let next = *due
                .entry(subscription.name.clone())
                .or_insert_with(Instant::now);
            if Instant::now() < next {
                continue;
            }
            due.insert(
                subscription.name.clone(),
                Instant::now() + subscription.refresh,
            );
            let stats = &reloader.handler.stats;
            match download::refresh(&client, spec, &config.lists, backoff).await {
                Ok(Refreshed::Updated { entries }) => {
                    info!(source = %subscription.name, entries, "subscribed list updated");
                    stats
                        .list_downloads
                        .with_label_values(&[&subscription.name, "updated"])
                        .inc();
                    stats
                        .list_download_success
                        .with_label_values(&[&subscription.name])
                        .set(jiff::Timestamp::now().as_second() as f64);
                    updated = true;
                }
                Ok(Refreshed::NotModified) => {
                    stats
                        .list_downloads
                        .with_label_values(&[&subscription.name, "not_modified"])
                        .inc();
                    stats
                        .list_download_success
                        .with_label_values(&[&subscription.name])
                        .set(jiff::Timestamp::now().as_second() as f64);
                }
                Err(error) => {
                    warn!(source = %subscription.name, %error, "subscribed list rejected; the previous copy stays in force");
                    stats
                        .list_downloads
                        .with_label_values(&[&subscription.name, "rejected"])
                        .inc();
                }
            }
        }
        if updated {
            let _ = reloader.reload("list update").await;
        }
        tokio::time::sleep(TICK).await;
    }
}
