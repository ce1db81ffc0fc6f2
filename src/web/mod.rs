//! The HTTP side. The management listener (default 127.0.0.1:9153, HTTPS
//! when `admin.tls_cert`/`tls_key` are set) serves `/metrics` (Prometheus
//! text format), `/healthz` and `/readyz`, the administration API under
//! `/api/v1` (`admin/`, `docs/administration.md`) with its OpenAPI
//! document generated from the handlers (`openapi.rs`; `api()` builds the
//! routes and the document from one list), and the web console under
//! `/console` (`console.rs`); the handlers share [`AppState`] (`state.rs`).
//! The sinkhole listeners serve the warning page and the review form
//! (`warning.rs`, `page.rs`, and `school_ca.rs` for school-CA HTTPS). It
//! never touches DNS sockets: it reads the snapshot, the stats registry and
//! the durable store, and changes policy only through the reload path.
//!
//! Uses: `crate::admin` (tokens, edits, allowances, reviews, audit),
//! `crate::app::reload` (applying changes), `crate::config`, `crate::dns`
//! (the handler it reads), `crate::client`, `crate::lists`,
//! `crate::policy`, `crate::snapshot`, `crate::stats` and
//! `crate::takedown`. Used by: `crate::app`, which starts the listeners and
//! the allowance sweep, and by the integration tests (`API_ROUTES`).

pub mod admin;
pub mod console;
pub mod openapi;
pub mod page;
pub mod school_ca;
pub mod state;
pub mod warning;

pub use state::AppState;

use crate::admin::tokens::Role;
use admin::{authenticate, problem};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use tracing::info;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted (larger → 413).
pub const MAX_BODY: usize = 1 << 20;

/// Every API route (method, path), as the router serves them and as the
/// OpenAPI document must describe them (a test holds the three together).
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
    ("POST", "/api/v1/ingest"),
    ("POST", "/api/v1/heartbeat"),
    ("GET", "/api/v1/district"),
    ("GET", "/api/v1/dashboard"),
    ("GET", "/api/v1/takedowns"),
    ("POST", "/api/v1/takedowns"),
];

/// The `/api/v1` routes (paths relative to it) with their OpenAPI
/// document: `routes!` registers each handler with axum and adds its
/// `#[utoipa::path]` operation and schemas to the document in one step.
fn api() -> OpenApiRouter<AppState> {
    use admin::{
        allowances, audit, auth, bands, config, dashboard, explain, heartbeat, ingest, lists,
        office, reports, reviews, schools, takedowns,
    };
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(auth::whoami))
        .routes(routes!(schools::schools))
        .routes(routes!(schools::school, schools::patch_school))
        .routes(routes!(bands::bands))
        .routes(routes!(bands::band, bands::patch_band))
        .routes(routes!(office::office))
        .routes(routes!(office::office_add))
        .routes(routes!(office::office_remove))
        .routes(routes!(lists::categories))
        .routes(routes!(lists::lists))
        .routes(routes!(reviews::reviews))
        .routes(routes!(reviews::review_decide))
        .routes(routes!(
            allowances::allowances_list,
            allowances::allowances_add
        ))
        .routes(routes!(allowances::allowances_remove))
        .routes(routes!(explain::test))
        .routes(routes!(config::reload))
        .routes(routes!(audit::audit_log))
        .routes(routes!(office::policy))
        .routes(routes!(reports::reports))
        .routes(routes!(ingest::ingest))
        .routes(routes!(heartbeat::heartbeat))
        .routes(routes!(dashboard::district))
        .routes(routes!(dashboard::school_dashboard))
        .routes(routes!(
            takedowns::takedowns_list,
            takedowns::takedowns_push
        ))
}

/// The management routes.
pub fn management_router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", api)
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

/// The OpenAPI 3.1 document of `/api/v1` as JSON, generated from the
/// handlers once.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        openapi::finish(api().into_openapi())
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    });
    &DOCUMENT
}

/// This document
///
/// The OpenAPI 3.1 document of this API, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", security(()), responses(
    (status = 200, description = "OpenAPI 3.1 document", body = Object),
))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
        .into_response()
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
            tokio::spawn(serve_http1(listener, app))
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

/// Serves `app` over plain HTTP/1.1 only, with the peer as `ConnectInfo`.
/// Not `axum::serve`: with hyper's HTTP/2 in the build (for DoH) it would
/// also accept cleartext HTTP/2 (h2c), which these listeners refuse.
pub(crate) async fn serve_http1(listener: tokio::net::TcpListener, app: Router) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(
                app.layer(axum::Extension(ConnectInfo(peer))),
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
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
    let mut body = state.handler.stats.render(
        &state.handler.counters.snapshot(),
        state.handler.in_flight.get(),
        &crate::stats::UpstreamFigures {
            rejected: upstream.rejected_replies(),
            refused: upstream.refused_lookups(),
            limited_domains: upstream.limited_parents(),
            encrypted: upstream.encrypted_figures(),
        },
    );
    body.push_str(&crate::office::exposition(
        &state.upload,
        &state.heartbeat,
        &state.ingest.figures,
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /healthz`: the process is up and its management listener answers
/// (a liveness probe: failing it means restart the process).
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when every category has at least one list loaded and
/// an upstream answered within the last 30 s (or answers a probe now):
/// [`crate::app::ready`]; otherwise 503. The JSON body says which part is
/// not ready. No token: a load balancer or kubelet asks, and the body holds
/// no personal data.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = crate::app::ready::readiness(&state.handler).await;
    let ready = check.ready();
    let body = serde_json::json!({
        "ready": ready,
        "generation": check.generation,
        "lists": {
            "loaded": check.lists_loaded,
            "missing": check.missing_lists,
            "categories_without_lists": check.categories_without_lists,
        },
        "upstream": {
            "reachable": check.upstream_reachable,
            "last_answer_seconds_ago": check.upstream_last_answer.map(|a| a.as_secs()),
            "error": check.upstream_error,
        },
        // Informational: an office that cannot be reached does not make
        // the filter unready.
        "statistics_upload": state.upload.status(),
        "heartbeat": state.heartbeat.status(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
