//! The lists in force: categories with each list's state, and every list.

use super::auth::authenticate;
use super::reply::Peer;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Categories with their lists: entry counts, last load and errors, and
/// each subscription's state as `edudns lists status` gives it
/// ([`crate::lists::status::of`]).
pub async fn categories(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let loaded_at = jiff::Timestamp::try_from(snapshot.built_at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    // Wall time, not the handler's clock: the downloader stamps its records
    // with wall time, and a running download is judged by their age.
    let now = jiff::Timestamp::now().as_second();
    let out: Vec<Value> = config
        .categories
        .iter()
        .enumerate()
        .map(|(index, category)| {
            let lists: Vec<Value> = category
                .lists
                .iter()
                .map(|spec| {
                    let loaded = snapshot.loaded_list(index, &spec.display);
                    let status = crate::lists::status::of(&category.id, spec, now);
                    json!({
                        "list": spec.display,
                        "name": status.name,
                        "source": status.url,
                        "state": status.state,
                        "state_label": status.state.label(),
                        "entries": loaded.map(|l| l.entries),
                        "downloaded_entries": status.entries,
                        "bytes": status.bytes,
                        "skipped_lines": loaded.map(|l| l.skipped),
                        "last_download": status.last_success,
                        "last_attempt": status.last_attempt,
                        "downloading_since": status.downloading_since,
                        "last_error": status.last_error,
                        "protected_ignored": status.protected_ignored,
                        "protected_samples": status.protected_samples,
                    })
                })
                .collect();
            let blocked_by: Vec<&str> = config
                .bands
                .iter()
                .filter(|b| b.blocked.contains(&index))
                .map(|b| b.id.as_str())
                .collect();
            json!({
                "id": category.id,
                "name": category.name,
                "entries": lists.iter().filter_map(|l| l["entries"].as_u64()).sum::<u64>(),
                "lists": lists,
                "blocked_by": blocked_by,
            })
        })
        .collect();
    axum::Json(
        json!({ "generation": snapshot.generation, "loaded_at": loaded_at, "categories": out }),
    )
    .into_response()
}

/// Every list in force: category, file or subscription, entries, skipped
/// lines, and for subscriptions the last download and last error.
pub async fn lists(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&state, peer.0, &headers) {
        return r;
    }
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let mut out = Vec::new();
    for (index, category) in config.categories.iter().enumerate() {
        for spec in &category.lists {
            let loaded = snapshot.loaded_list(index, &spec.display);
            let meta = spec
                .download
                .as_ref()
                .map(|_| crate::lists::download::read_meta(&spec.path));
            out.push(serde_json::json!({
                "category": category.id,
                "list": spec.display,
                "subscription": spec.download.as_ref().map(|d| serde_json::json!({"name": d.name, "url": d.url, "refresh_secs": d.refresh.as_secs()})),
                "entries": loaded.map(|l| l.entries),
                "skipped_lines": loaded.map(|l| l.skipped),
                "sha256": loaded.map(|l| l.sha256.clone()),
                "last_download": meta.as_ref().and_then(|m| m.last_success),
                "last_error": meta.and_then(|m| m.last_error),
            }));
        }
    }
    Json(serde_json::json!({ "generation": snapshot.generation, "lists": out })).into_response()
}
