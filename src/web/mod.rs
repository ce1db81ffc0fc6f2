//! The HTTP side. The management listener (default 127.0.0.1:9153) serves
//! `/metrics` (Prometheus text format), the administration API under
//! `/api/v1` (see `admin.rs` and `docs/administration.md`) and the web
//! console under `/console`. It never touches DNS sockets: it reads the
//! snapshot, the stats registry and the durable store, and changes policy
//! only through the reload path.

pub mod admin;
pub mod console;
pub mod page;
pub mod school_ca;
pub mod warning;

use crate::admin::tokens::Role;
use crate::app::reload::Reloader;
use crate::dns::Handler;
use crate::stats::flusher::SharedStore;
use crate::stats::{report, sign};
use admin::{authenticate, problem};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
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
    /// Applies policy changes (absent in tools that only read).
    pub reloader: Option<Arc<Reloader>>,
    pub admin: Arc<admin::Admin>,
}

/// Largest request body accepted (larger → 413).
pub const MAX_BODY: usize = 1 << 20;

/// Every API route (method, path), as the router serves them and as
/// `openapi.json` must document them (a test holds the three together).
pub const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/whoami"),
    ("GET", "/api/v1/schools"),
    ("GET", "/api/v1/schools/{id}"),
    ("PATCH", "/api/v1/schools/{id}"),
    ("GET", "/api/v1/bands"),
    ("GET", "/api/v1/bands/{id}"),
    ("PATCH", "/api/v1/bands/{id}"),
    ("GET", "/api/v1/office"),
    ("POST", "/api/v1/office/{list}"),
    ("DELETE", "/api/v1/office/{list}/{domain}"),
    ("GET", "/api/v1/categories"),
    ("GET", "/api/v1/lists"),
    ("GET", "/api/v1/reviews"),
    ("POST", "/api/v1/reviews/{id}/{decision}"),
    ("GET", "/api/v1/allowances"),
    ("POST", "/api/v1/allowances"),
    ("DELETE", "/api/v1/allowances/{id}"),
    ("POST", "/api/v1/test"),
    ("POST", "/api/v1/reload"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/policy"),
    ("GET", "/api/v1/reports"),
    ("GET", "/api/v1/takedowns"),
    ("POST", "/api/v1/takedowns"),
];

/// The management routes.
pub fn management_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/whoami", get(admin::whoami))
        .route("/api/v1/schools", get(admin::schools))
        .route(
            "/api/v1/schools/{id}",
            get(admin::school).patch(admin::patch_school),
        )
        .route("/api/v1/bands", get(admin::bands))
        .route(
            "/api/v1/bands/{id}",
            get(admin::band).patch(admin::patch_band),
        )
        .route("/api/v1/office", get(admin::office))
        .route("/api/v1/office/{list}", post(admin::office_add))
        .route(
            "/api/v1/office/{list}/{domain}",
            delete(admin::office_remove),
        )
        .route("/api/v1/categories", get(admin::categories))
        .route("/api/v1/lists", get(lists))
        .route("/api/v1/reviews", get(admin::reviews))
        .route(
            "/api/v1/reviews/{id}/{decision}",
            post(admin::review_decide),
        )
        .route(
            "/api/v1/allowances",
            get(admin::allowances_list).post(admin::allowances_add),
        )
        .route("/api/v1/allowances/{id}", delete(admin::allowances_remove))
        .route("/api/v1/test", post(admin::test))
        .route("/api/v1/reload", post(admin::reload))
        .route("/api/v1/audit", get(admin::audit_log))
        .route("/api/v1/policy", get(admin::policy))
        .route("/api/v1/reports", get(reports))
        .route(
            "/api/v1/takedowns",
            get(takedowns_list).post(takedowns_push),
        )
        .merge(console::routes())
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "no such endpoint; see /api/v1/openapi.json",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every management response carries. No CORS header is ever set:
/// browsers keep other sites' scripts from reading the API.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".parse().expect("valid"),
    );
    headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("valid"));
    headers.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("valid"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert("no-store".parse().expect("valid"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(
        "default-src 'none'; frame-ancestors 'none'"
            .parse()
            .expect("valid"),
    );
    response
}

/// The OpenAPI 3.1 document of `/api/v1`.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Binds the management listener (HTTPS when `admin.tls_cert`/`tls_key`
/// are set) and serves it until the task is dropped.
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
    let tls = state.handler.snapshot.load().config.admin.tls.clone();
    let app = management_router(state);
    let task = match tls {
        None => {
            info!(address = %local, "listening on {local} (management: /metrics, /api/v1, /console)");
            tokio::spawn(async move {
                let _ = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await;
            })
        }
        Some((cert, key)) => {
            let config = management_tls(&cert, &key)?;
            info!(address = %local, "listening on {local} (management over HTTPS: /metrics, /api/v1, /console)");
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await
                        else {
                            return;
                        };
                        let service = hyper_util::service::TowerToHyperService::new(
                            app.layer(axum::Extension(ConnectInfo(peer))),
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                    });
                }
            })
        }
    };
    Ok((local, task))
}

/// rustls server config from PEM files, with errors naming the file.
fn management_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let named = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("admin TLS {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| named(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| named(key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| named(cert, &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| named(cert, &e))?;
    Ok(Arc::new(config))
}

async fn metrics(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if state
        .handler
        .snapshot
        .load()
        .config
        .admin
        .metrics_require_token
    {
        match authenticate(&state, peer.0, &headers) {
            Ok(who) if matches!(who.role, Role::Office | Role::Auditor) => {}
            Ok(_) => {
                return problem(
                    StatusCode::FORBIDDEN,
                    "metrics: office or auditor token needed",
                );
            }
            Err(r) => return r,
        }
    }
    let upstream = state.handler.upstream.load();
    let body = state.handler.stats.render(
        &state.handler.counters.snapshot(),
        state.handler.in_flight.get(),
        &crate::stats::UpstreamFigures {
            rejected: upstream.rejected_replies(),
            refused: upstream.refused_lookups(),
            limited_domains: upstream.limited_parents(),
        },
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
async fn lists(
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

/// `GET /healthz`: the process is up and its management listener answers
/// (a liveness probe: failing it means restart the process).
async fn healthz() -> &'static str {
    "ok\n"
}

/// An upstream answer younger than this makes `/readyz` skip its own probe.
const READY_UPSTREAM_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET /readyz`: 200 when every category has at least one list loaded and
/// an upstream answered within the last 30 s (or answers a probe now);
/// otherwise 503. The JSON body says which part is not ready. No token: a
/// load balancer or kubelet asks, and the body holds no personal data.
async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let mut missing_lists = Vec::new();
    let mut empty_categories = Vec::new();
    for (index, category) in config.categories.iter().enumerate() {
        let mut any = false;
        for spec in &category.lists {
            if snapshot.loaded_list(index, &spec.display).is_some() {
                any = true;
            } else {
                missing_lists.push(format!("{}: {}", category.id, spec.display));
            }
        }
        if !any && !category.lists.is_empty() {
            empty_categories.push(category.id.clone());
        }
    }
    let upstream = state.handler.upstream.load_full();
    let (reachable, age, error) = match upstream.last_answer_age() {
        Some(age) if age < READY_UPSTREAM_FRESH => (true, Some(age), None),
        _ => match upstream.probe().await {
            Ok(_) => (true, Some(std::time::Duration::ZERO), None),
            Err(e) => (false, upstream.last_answer_age(), Some(e)),
        },
    };
    let ready = empty_categories.is_empty() && reachable;
    let body = serde_json::json!({
        "ready": ready,
        "generation": snapshot.generation,
        "lists": {
            "loaded": snapshot.lists_loaded.len(),
            "missing": missing_lists,
            "categories_without_lists": empty_categories,
        },
        "upstream": {
            "reachable": reachable,
            "last_answer_seconds_ago": age.map(|a| a.as_secs()),
            "error": error,
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn takedowns_list(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match authenticate(&state, peer.0, &headers) {
        Ok(who) if matches!(who.role, Role::Office | Role::Auditor) => {}
        Ok(_) => {
            return problem(
                StatusCode::FORBIDDEN,
                "takedowns: office or auditor token needed",
            );
        }
        Err(r) => return r,
    }
    Json(serde_json::json!({ "takedowns": state.handler.snapshot.load().takedowns.all() }))
        .into_response()
}

/// `POST /api/v1/takedowns` with `Authorization: Bearer TOKEN` whose SHA-256
/// is `takedown.push_token_sha256`, and a JSON array of
/// `{domain, reference, date}`: applied to every band at once.
async fn takedowns_push(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use sha2::{Digest, Sha256};
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let legacy = state
        .handler
        .snapshot
        .load()
        .config
        .takedown
        .push_token_sha256
        .clone();
    // An office API token, or the authorities' push token configured as
    // takedown.push_token_sha256 (a system with no console account).
    let pushed_by_authority = match (token, legacy) {
        (Some(token), Some(expected)) if !token.starts_with("edudns_") => {
            let actual: String = Sha256::digest(token.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            crate::admin::tokens::same(&actual, &expected)
        }
        _ => false,
    };
    if !pushed_by_authority {
        match authenticate(&state, peer.0, &headers) {
            Ok(who) if who.role == Role::Office => {}
            Ok(_) => {
                return problem(
                    StatusCode::FORBIDDEN,
                    "takedowns: an office token is needed",
                );
            }
            Err(r) => return r,
        }
    }
    if let Err(r) = admin::check_write(&state, &headers, true) {
        return r;
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
    match crate::takedown::feed::apply(&state.handler, &store, "api", valid, false).await {
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

async fn reports(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let who = match authenticate(&state, peer.0, &headers) {
        Ok(who) => who,
        Err(r) => return r,
    };
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
    if !(who.role == Role::Auditor || who.role.covers_school(&query.school)) {
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not read reports of school {}",
                who.role, query.school
            ),
        );
    }
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
