//! The lists in force: categories with each list's state, and every list.

use super::auth::authenticate;
use super::reply::Peer;
use crate::lists::download;
use crate::lists::status;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use utoipa::ToSchema;

/// The categories in force and when they were loaded.
#[derive(Serialize, ToSchema)]
pub struct Categories {
    pub categories: Vec<Category>,
    pub generation: u64,
    /// RFC 3339 time the lists in force were built.
    pub loaded_at: String,
}

/// One category: its lists and which bands block it.
#[derive(Serialize, ToSchema)]
pub struct Category {
    /// bands that block the category
    pub blocked_by: Vec<String>,
    /// sum of the lists' entries in force
    pub entries: u64,
    pub id: String,
    pub lists: Vec<CategoryList>,
    pub name: String,
}

/// One list of a category, with its state as `edudns lists status` shows it
#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    /// size of the downloaded copy
    pub bytes: Option<u64>,
    /// entries of the downloaded copy (null without a copy)
    pub downloaded_entries: Option<usize>,
    /// Unix time the running download started; null when none runs
    pub downloading_since: Option<i64>,
    /// entries of the list in force (null until loaded)
    pub entries: Option<usize>,
    pub last_attempt: Option<i64>,
    /// Unix time of the last successful download
    pub last_download: Option<i64>,
    pub last_error: Option<String>,
    /// the list as the configuration names it
    pub list: String,
    /// the subscription name, or the local file
    pub name: String,
    /// lines ignored because they would block a protected name
    pub protected_ignored: usize,
    /// the first of those lines (at most 20)
    #[schema(value_type = Vec<download::IgnoredLine>)]
    pub protected_samples: Vec<Value>,
    pub skipped_lines: Option<usize>,
    /// download URL; null for a local file
    pub source: Option<String>,
    pub state: status::State,
    /// the state in Vietnamese and English, e.g. "đã tải / ready"
    pub state_label: &'static str,
}

/// Categories: their lists, sources, state (pending, downloading, ready, previous copy, failed), entries, bytes, last download, errors, lines ignored for protected names, and which bands block them
///
/// Each subscription's state is the one `edudns lists status` gives
/// ([`crate::lists::status::of`]).
///
/// Roles: any.
#[utoipa::path(get, path = "/categories", responses((status = 200, description = "categories", body = Categories)))]
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
    let categories = config
        .categories
        .iter()
        .enumerate()
        .map(|(index, category)| {
            let lists: Vec<CategoryList> = category
                .lists
                .iter()
                .map(|spec| {
                    let loaded = snapshot.loaded_list(index, &spec.display);
                    let status = status::of(&category.id, spec, now);
                    CategoryList {
                        list: spec.display.clone(),
                        name: status.name,
                        source: status.url,
                        state: status.state,
                        state_label: status.state.label(),
                        entries: loaded.map(|l| l.entries),
                        downloaded_entries: status.entries,
                        bytes: status.bytes,
                        skipped_lines: loaded.map(|l| l.skipped),
                        last_download: status.last_success,
                        last_attempt: status.last_attempt,
                        downloading_since: status.downloading_since,
                        last_error: status.last_error,
                        protected_ignored: status.protected_ignored,
                        protected_samples: status
                            .protected_samples
                            .iter()
                            .map(|s| json!(s))
                            .collect(),
                    }
                })
                .collect();
            let blocked_by = config
                .bands
                .iter()
                .filter(|b| b.blocked.contains(&index))
                .map(|b| b.id.clone())
                .collect();
            Category {
                id: category.id.clone(),
                name: category.name.clone(),
                entries: lists.iter().filter_map(|l| l.entries).sum::<usize>() as u64,
                lists,
                blocked_by,
            }
        })
        .collect();
    axum::Json(Categories {
        categories,
        generation: snapshot.generation,
        loaded_at,
    })
    .into_response()
}

/// Every list in force.
#[derive(Serialize, ToSchema)]
pub struct Lists {
    pub generation: u64,
    /// `{category, list, subscription: {name, url, refresh_secs} | null,
    /// entries, skipped_lines, sha256, last_download, last_error}`
    #[schema(value_type = Vec<Object>)]
    pub lists: Vec<Value>,
}

/// Every list in force, with subscription state
///
/// Category, file or subscription, entries, skipped lines, and for
/// subscriptions the last download and last error.
///
/// Roles: any.
#[utoipa::path(get, path = "/lists", responses((status = 200, description = "lists", body = Lists)))]
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
    Json(Lists {
        generation: snapshot.generation,
        lists: out,
    })
    .into_response()
}
