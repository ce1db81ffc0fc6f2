//! Polls the takedown feed (`[takedown] url`) every `refresh` and applies it
//! to the live overlay: new entries block within a poll, without a reload.

use crate::dns::Handler;
use crate::stats::flusher::SharedStore;
use crate::takedown::{self, Takedown};
use std::sync::Arc;
use tracing::{info, warn};

/// Fetches the feed once; `None` when it could not be read.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Option<Vec<Takedown>> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(takedown::parse_feed(&response.text().await.ok()?))
}

/// Applies entries from `source` to the running service and the database.
pub async fn apply(
    handler: &Handler,
    store: &SharedStore,
    source: &str,
    entries: Vec<Takedown>,
    replace: bool,
) -> Result<(usize, usize), String> {
    let overlay = handler.snapshot.load().takedowns.clone();
    let (store, source) = (store.clone(), source.to_string());
    tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        takedown::apply(
            store.connection(),
            &overlay,
            &source,
            entries,
            replace,
            jiff::Timestamp::now().as_second(),
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Runs forever (returns at once when no feed is configured).
pub async fn run(handler: Arc<Handler>, store: SharedStore) {
    let client = crate::lists::download::client(&handler.snapshot.load().config.lists);
    loop {
        let (url, refresh) = {
            let config = &handler.snapshot.load().config;
            (config.takedown.url.clone(), config.takedown.refresh)
        };
        let Some(url) = url else {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            continue;
        };
        match fetch(&client, &url).await {
            Some(entries) => match apply(&handler, &store, &url, entries, true).await {
                Ok((0, 0)) => {}
                Ok((added, removed)) => info!(added, removed, feed = %url, "takedown list applied"),
                Err(e) => warn!(%e, "cannot store takedown entries"),
            },
            None => warn!(feed = %url, "takedown feed unreachable; the entries in force stay"),
        }
        tokio::time::sleep(refresh).await;
    }
}
