//! The HTTP side. The management listener (default 127.0.0.1:9153) serves
//! `/metrics` (Prometheus text format) and `/api/v1/reports`. It never
//! touches DNS sockets: it reads the stats registry and the durable store.

pub mod page;
pub mod school_ca;
pub mod warning;

use crate::dns::Handler;
use crate::stats::flusher::SharedStore;
use crate::stats::{report, sign};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::info;

/// What the management handlers read.
#[derive(Clone)]
pub struct AppState {
    pub handler: Arc<Handler>,
    pub store: Option<SharedStore>,
}

/// The management routes.
pub fn management_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/reports", get(reports))
        .route("/api/v1/lists", get(lists))
        .route(
            "/api/v1/takedowns",
            get(takedowns_list).post(takedowns_push),
        )
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

/// Binds the management listener and serves it until the task is dropped.
pub async fn serve_management(
    addr: SocketAddr,
    state: AppState,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot bind management listener {addr}: {e}"),
        )
    })?;
    let local = listener.local_addr()?;
    info!(address = %local, "listening on {local} (management: /metrics, /api/v1)");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, management_router(state)).await;
    });
    Ok((local, task))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.handler.stats.render(
        &state.handler.counters.snapshot(),
        state.handler.in_flight.get(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Every list in force: category, file or subscription, entries, skipped
/// lines, and for subscriptions the last download and last error.
async fn lists(State(state): State<AppState>) -> Response {
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let mut out = Vec::new();
    for (index, category) in config.categories.iter().enumerate() {
        for spec in &category.lists {
            let loaded = snapshot
                .lists_loaded
                .iter()
                .find(|l| l.category == index && l.display == spec.display);
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

async fn takedowns_list(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({ "takedowns": state.handler.snapshot.load().takedowns.all() }))
        .into_response()
}

/// `POST /api/v1/takedowns` with `Authorization: Bearer TOKEN` whose SHA-256
/// is `takedown.push_token_sha256`, and a JSON array of
/// `{domain, reference, date}`: applied to every band at once.
async fn takedowns_push(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use sha2::{Digest, Sha256};
    let expected = state
        .handler
        .snapshot
        .load()
        .config
        .takedown
        .push_token_sha256
        .clone();
    let Some(expected) = expected else {
        return problem(
            StatusCode::FORBIDDEN,
            "pushing takedowns is not enabled (takedown.push_token_sha256)",
        );
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return problem(StatusCode::UNAUTHORIZED, "missing bearer token");
    };
    let actual: String = Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let same = actual.len() == expected.len()
        && actual
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return problem(StatusCode::UNAUTHORIZED, "wrong token");
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.starts_with("application/json"))
    {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json",
        );
    }
    let Ok(entries) = serde_json::from_slice::<Vec<crate::takedown::Takedown>>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expected a JSON array of {\"domain\", \"reference\", \"date\"}",
        );
    };
    let mut valid = Vec::new();
    for mut entry in entries {
        match crate::lists::name::normalize(&entry.domain) {
            Ok(name) => {
                entry.domain = name.into_owned();
                valid.push(entry);
            }
            Err(e) => return problem(StatusCode::BAD_REQUEST, format!("{:?}: {e}", entry.domain)),
        }
    }
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    match crate::takedown_feed::apply(&state.handler, &store, "api", valid, false).await {
        Ok((added, _)) => Json(serde_json::json!({ "added": added })).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    school: String,
    from: String,
    to: String,
    #[serde(default)]
    format: Option<String>,
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn reports(
    State(state): State<AppState>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}; expected school, from, to (YYYY-MM-DD) and optional format=json|csv|html"
                ),
            );
        }
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let snapshot = state.handler.snapshot.load_full();
    let built = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        report::build(
            store.connection(),
            &snapshot.config,
            &query.school,
            &query.from,
            &query.to,
            snapshot.config.privacy.k_anonymity,
        )
        .map(|r| (r, query.format, snapshot))
    })
    .await;
    let (report, format, snapshot) = match built {
        Ok(Ok(built)) => built,
        Ok(Err(report::ReportError::Database(e))) => {
            return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        Ok(Err(e)) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match format.as_deref().unwrap_or("json") {
        "json" => {
            let school = report.schools[0].id.clone();
            let (key, _) = sign::key_paths(&snapshot.config.stats.key_dir, &school);
            match sign::sign_if_key(report, &key) {
                Ok(signed) => Json(signed).into_response(),
                Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report::to_csv(&report),
        )
            .into_response(),
        "html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            report::to_html(&report),
        )
            .into_response(),
        other => problem(
            StatusCode::BAD_REQUEST,
            format!("unknown format {other:?}: expected json, csv or html"),
        ),
    }
}
