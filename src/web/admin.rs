//! The policy administration API (`/api/v1/...`) on the management
//! listener: authentication by bearer token, roles, lock-out after failed
//! attempts, cross-site request checks, and the endpoints that read and
//! change policies. Every change goes through [`edit_config`]: validated by
//! the same code as `check-config`, applied through the reload path,
//! written atomically, protected by ETag / If-Match, and audited.
//!
//! Helpers return `Result<_, Response>`: the error *is* the HTTP answer,
//! sent at once, so boxing it (what clippy's `result_large_err` suggests)
//! would only add noise on a path that is not hot.
#![allow(clippy::result_large_err)]

use crate::admin::allowances::{self, Allowance};
use crate::admin::audit::{self, Change};
use crate::admin::edit::{self, BandPatch, EditError, SchoolPatch};
use crate::admin::tokens::{Principal, Role, Verifier};
use crate::app::reload::{ApplyError, LoadError};
use crate::config::{Config, ConfigError};
use crate::web::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Failed token attempts from one address before it is locked out.
pub const LOCKOUT_FAILURES: usize = 5;
/// The window those failures are counted in, and the lock-out's length.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Authentication state shared by the management handlers.
#[derive(Default)]
pub struct Admin {
    verifier: Verifier,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Read-modify-write of the config file, one editor at a time.
    edit_lock: tokio::sync::Mutex<()>,
}

impl Admin {
    fn locked_out(&self, ip: IpAddr) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = failures.get_mut(&ip)?;
        while list.front().is_some_and(|t| t.elapsed() >= LOCKOUT_WINDOW) {
            list.pop_front();
        }
        if list.is_empty() {
            failures.remove(&ip);
            return None;
        }
        (list.len() >= LOCKOUT_FAILURES)
            .then(|| LOCKOUT_WINDOW.saturating_sub(list[list.len() - LOCKOUT_FAILURES].elapsed()))
    }

    fn fail(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a flood of sources cannot grow this without limit.
        if failures.len() > 10_000 {
            failures.retain(|_, l| l.back().is_some_and(|t| t.elapsed() < LOCKOUT_WINDOW));
        }
        failures.entry(ip).or_default().push_back(Instant::now());
    }
}

/// A JSON error body: `{"error": "..."}`.
pub fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn refused(state: &AppState, reason: &str) {
    state
        .handler
        .stats
        .admin_refused
        .with_label_values(&[reason])
        .inc();
}

/// Who is calling, or the response refusing them (401, 429).
pub fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Principal, Response> {
    if let Some(wait) = state.admin.locked_out(peer.ip()) {
        refused(state, "locked_out");
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed sign-ins from {}; try again in {} minutes / Quá nhiều lần đăng nhập sai",
                peer.ip(),
                wait.as_secs().div_ceil(60)
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(response);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        refused(state, "missing_token");
        let mut response = problem(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer edudns_...; create one with `edudns tokens create`)",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(response);
    };
    let path = &state.handler.snapshot.load().config.admin.tokens_file;
    match state.admin.verifier.verify(path, token) {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => {
            state.admin.fail(peer.ip());
            refused(state, "bad_token");
            warn!(client = %peer.ip(), "management API: wrong token");
            let mut response = problem(StatusCode::UNAUTHORIZED, "unknown or revoked token");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(response)
        }
        Err(e) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the token file: {e}"),
        )),
    }
}

fn forbidden(state: &AppState, principal: &Principal, what: &str) -> Response {
    refused(state, "forbidden");
    problem(
        StatusCode::FORBIDDEN,
        format!("role {} may not {what} / Không đủ quyền", principal.role),
    )
}

/// Refuses a state-changing request a browser could have been tricked into
/// sending: the body must be JSON (`Content-Type: application/json` is not
/// a "simple" request, so a cross-site form cannot send it), and an
/// `Origin` or `Sec-Fetch-Site` header, when present, must name this very
/// listener. Clients that are not browsers (curl) send neither.
pub fn check_write(
    state: &AppState,
    headers: &HeaderMap,
    needs_body: bool,
) -> Result<(), Response> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        refused(state, "cross_origin");
        return Err(problem(
            StatusCode::FORBIDDEN,
            format!("cross-site request refused (Sec-Fetch-Site: {site})"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = origin.to_str().unwrap_or("");
        let matches = host.is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        });
        if !matches {
            refused(state, "cross_origin");
            return Err(problem(
                StatusCode::FORBIDDEN,
                format!("cross-origin request refused (Origin: {origin})"),
            ));
        }
    }
    if needs_body
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.split(';').next().map(str::trim) != Some("application/json"))
    {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    Ok(())
}

/// Parses a JSON body, naming the field that is wrong.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        problem(
            StatusCode::BAD_REQUEST,
            if path == "." {
                format!("invalid JSON body: {inner}")
            } else {
                format!("invalid JSON body at {path}: {inner}")
            },
        )
    })
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// The configuration text in force on disk and its ETag.
fn current_text(state: &AppState) -> Result<(String, String), Response> {
    let text = match state.reloader.as_ref().and_then(|r| r.config_path()) {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {}: {e}", path.display()),
            )
        })?,
        None => crate::config::EMBEDDED_CONFIG.to_string(),
    };
    let etag = edit::etag(&text);
    Ok((text, etag))
}

fn current_etag(state: &AppState) -> String {
    current_text(state).map(|(_, e)| e).unwrap_or_default()
}

fn config_error_response(error: &ConfigError) -> Response {
    let issues: Vec<Value> = match error {
        ConfigError::Invalid { issues, .. } => issues
            .iter()
            .map(|i| json!({ "key": i.key, "line": i.line, "message": i.message }))
            .collect(),
        _ => Vec::new(),
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({ "error": error.to_string(), "issues": issues })),
    )
        .into_response()
}

/// What one configuration edit is.
struct EditRequest<'a> {
    principal: &'a Principal,
    headers: &'a HeaderMap,
    /// 428 when the request has no If-Match.
    require_if_match: bool,
    action: &'a str,
    subject: String,
}

/// Read the file, check If-Match, change the document, validate, build,
/// write, swap in, audit. `view` renders the edited object before and after.
async fn edit_config(
    state: &AppState,
    request: EditRequest<'_>,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<bool, EditError>,
    view: impl Fn(&Config) -> Value,
) -> Response {
    let Some(reloader) = state.reloader.clone() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "reloads are not running");
    };
    if reloader.config_path().is_none() {
        return problem(StatusCode::CONFLICT, ApplyError::Embedded.to_string());
    }
    let _one_editor = state.admin.edit_lock.lock().await;
    let (text, etag) = match current_text(state) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match request
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(wanted) if wanted.trim() != "*" && wanted.split(',').all(|w| w.trim() != etag) => {
            state
                .handler
                .stats
                .admin_changes
                .with_label_values(&["conflict"])
                .inc();
            return with_etag(
                problem(
                    StatusCode::PRECONDITION_FAILED,
                    "the configuration changed since you read it (If-Match does not match the ETag): reload it and try again / Cấu hình đã bị người khác thay đổi",
                ),
                &etag,
            );
        }
        None if request.require_if_match => {
            return with_etag(
                problem(
                    StatusCode::PRECONDITION_REQUIRED,
                    "send If-Match with the ETag of what you read, so two editors cannot overwrite each other",
                ),
                &etag,
            );
        }
        _ => {}
    }
    let before = match reloader.source.load_text(&text, &reloader.overrides) {
        Ok(config) => config,
        Err(e) => {
            return problem(
                StatusCode::CONFLICT,
                format!("the configuration file on disk does not validate; fix it first: {e}"),
            );
        }
    };
    let mut document = match edit::parse_document(&text) {
        Ok(d) => d,
        Err(e) => return problem(StatusCode::CONFLICT, e.to_string()),
    };
    match change(&mut document) {
        Ok(true) => {}
        Ok(false) => {
            return with_etag(
                axum::Json(json!({ "changed": false, "value": view(&before) })).into_response(),
                &etag,
            );
        }
        Err(EditError::NotFound(m)) => return problem(StatusCode::NOT_FOUND, m),
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
    let new_text = document.to_string();
    let started = Instant::now();
    let after = match reloader.apply_text(new_text.clone(), request.action).await {
        Ok(config) => config,
        Err(ApplyError::Load(LoadError::Config(e))) => {
            state
                .handler
                .stats
                .admin_changes
                .with_label_values(&["invalid"])
                .inc();
            return config_error_response(&e);
        }
        Err(ApplyError::Load(LoadError::Lists(e))) => {
            state
                .handler
                .stats
                .admin_changes
                .with_label_values(&["invalid"])
                .inc();
            return problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    state
        .handler
        .stats
        .admin_changes
        .with_label_values(&["applied"])
        .inc();
    let (before_view, after_view) = (view(&before), view(&after));
    audit_change(
        state,
        (&request.principal.name, &request.principal.role.to_string()),
        request.action,
        &request.subject,
        "",
        &before_view.to_string(),
        &after_view.to_string(),
    )
    .await;
    info!(
        actor = %request.principal.name,
        role = %request.principal.role,
        action = request.action,
        subject = %request.subject,
        millis = started.elapsed().as_millis() as u64,
        "policy changed through the management API"
    );
    with_etag(
        axum::Json(json!({ "changed": true, "value": after_view })).into_response(),
        &edit::etag(&new_text),
    )
}

async fn audit_change(
    state: &AppState,
    principal: (&str, &str),
    action: &str,
    subject: &str,
    detail: &str,
    before: &str,
    after: &str,
) {
    let Some(store) = state.store.clone() else {
        return;
    };
    let (actor, role) = (principal.0.to_string(), principal.1.to_string());
    let (action, subject, detail, before, after) = (
        action.to_string(),
        subject.to_string(),
        detail.to_string(),
        before.to_string(),
        after.to_string(),
    );
    let now = state.handler.clock.now().as_second();
    let result = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        audit::record(
            store.connection(),
            now,
            &Change {
                actor: &actor,
                role: &role,
                action: &action,
                subject: &subject,
                detail: &detail,
                before: &before,
                after: &after,
            },
        )
    })
    .await;
    if !matches!(result, Ok(Ok(_))) {
        warn!("cannot write the audit log entry for {}", principal.0);
    }
}

type Peer = ConnectInfo<SocketAddr>;

macro_rules! auth {
    ($state:expr, $peer:expr, $headers:expr) => {
        match authenticate(&$state, $peer.0, &$headers) {
            Ok(p) => p,
            Err(r) => return r,
        }
    };
}

macro_rules! write_check {
    ($state:expr, $headers:expr, $needs_body:expr) => {
        if let Err(r) = check_write(&$state, &$headers, $needs_body) {
            return r;
        }
    };
}

// ---- Read endpoints ----

pub async fn whoami(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    axum::Json(json!({ "name": who.name, "role": who.role.to_string(), "token_id": who.token_id }))
        .into_response()
}

pub async fn schools(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let list: Vec<Value> = (0..config.schools.len())
        .filter(|&i| {
            who.role == Role::Office
                || who.role.covers_school(&config.schools[i].id)
                || who.role == Role::Auditor
        })
        .map(|i| json!(edit::school_view(config, i)))
        .collect();
    let bands: Vec<Value> = (0..config.bands.len())
        .map(|i| json!({ "id": config.bands[i].id, "name": config.bands[i].name }))
        .collect();
    with_etag(
        axum::Json(json!({ "schools": list, "bands": bands })).into_response(),
        &current_etag(&state),
    )
}

pub async fn school(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = auth!(state, peer, headers);
    if !(who.role.covers_school(&id) || who.role == Role::Auditor) {
        return forbidden(&state, &who, &format!("read school {id}"));
    }
    let snapshot = state.handler.snapshot.load_full();
    let Some(index) = snapshot.config.schools.iter().position(|s| s.id == id) else {
        return problem(StatusCode::NOT_FOUND, format!("no school {id:?}"));
    };
    with_etag(
        axum::Json(json!(edit::school_view(&snapshot.config, index))).into_response(),
        &current_etag(&state),
    )
}

pub async fn bands(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let bands: Vec<Value> = (0..config.bands.len())
        .map(|i| json!(edit::band_view(config, i)))
        .collect();
    let categories: Vec<Value> = config
        .categories
        .iter()
        .map(|c| json!({ "id": c.id, "name": c.name }))
        .collect();
    with_etag(
        axum::Json(json!({ "bands": bands, "categories": categories })).into_response(),
        &current_etag(&state),
    )
}

pub async fn band(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let Some(index) = snapshot.config.bands.iter().position(|b| b.id == id) else {
        return problem(StatusCode::NOT_FOUND, format!("no band {id:?}"));
    };
    with_etag(
        axum::Json(json!(edit::band_view(&snapshot.config, index))).into_response(),
        &current_etag(&state),
    )
}

pub async fn office(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    with_etag(
        axum::Json(json!(edit::office_view(&snapshot.config))).into_response(),
        &current_etag(&state),
    )
}

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

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "read the audit log");
    }
    let Ok(Query(query)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expected ?limit=N&before=ID (numbers)",
        );
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        audit::list(store.connection(), limit, query.before, None)
    })
    .await;
    match entries {
        Ok(Ok(entries)) => axum::Json(json!({ "entries": entries })).into_response(),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the audit log",
        ),
    }
}

// ---- Changes ----

pub async fn patch_band(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change band policies");
    }
    write_check!(state, headers, true);
    let patch: BandPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let band_id = id.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: true,
            action: "band.update",
            subject: format!("band:{id}"),
        },
        |doc| edit::apply_band(doc, &id, &patch).map(|()| true),
        move |config| {
            config
                .bands
                .iter()
                .position(|b| b.id == band_id)
                .map_or(Value::Null, |i| json!(edit::band_view(config, i)))
        },
    )
    .await
}

pub async fn patch_school(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if !who.role.covers_school(&id) {
        return forbidden(&state, &who, &format!("change school {id}"));
    }
    write_check!(state, headers, true);
    let patch: SchoolPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let school_id = id.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: true,
            action: "school.update",
            subject: format!("school:{id}"),
        },
        |doc| edit::apply_school(doc, &id, &patch).map(|()| true),
        move |config| {
            config
                .schools
                .iter()
                .position(|s| s.id == school_id)
                .map_or(Value::Null, |i| {
                    let v = edit::school_view(config, i);
                    json!({ "allow": v.allow, "deny": v.deny })
                })
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    domain: String,
}

fn normalized(domain: &str) -> Result<String, Response> {
    let text = domain.trim();
    let text = text.strip_prefix("*.").unwrap_or(text);
    crate::lists::name::normalize(text)
        .map(|n| n.into_owned())
        .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("domain {domain:?}: {e}")))
}

async fn office_list_change(
    state: AppState,
    who: Principal,
    headers: HeaderMap,
    list: String,
    domain: String,
    add: bool,
) -> Response {
    let domain = match normalized(&domain) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let list_name = list.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: false,
            action: if add { "office.add" } else { "office.remove" },
            subject: format!("office:{list}:{domain}"),
        },
        |doc| edit::apply_office(doc, &list, &domain, add),
        move |config| {
            let v = edit::office_view(config);
            json!(if list_name == "allow" {
                v.allow
            } else {
                v.deny
            })
        },
    )
    .await
}

pub async fn office_add(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(list): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change the office's lists");
    }
    write_check!(state, headers, true);
    let domain = match body::<DomainBody>(&bytes) {
        Ok(b) => b.domain,
        Err(r) => return r,
    };
    office_list_change(state, who, headers, list, domain, true).await
}

pub async fn office_remove(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path((list, domain)): Path<(String, String)>,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change the office's lists");
    }
    write_check!(state, headers, false);
    office_list_change(state, who, headers, list, domain, false).await
}

pub async fn reload(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "trigger a reload");
    }
    write_check!(state, headers, false);
    let Some(reloader) = state.reloader.clone() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "reloads are not running");
    };
    match reloader.reload("management API").await {
        Ok(generation) => {
            audit_change(
                &state,
                (&who.name, &who.role.to_string()),
                "reload",
                "config",
                "",
                "",
                &generation.to_string(),
            )
            .await;
            axum::Json(json!({ "generation": generation })).into_response()
        }
        Err(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("reload failed; the running configuration stays in force: {e}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    name: String,
    school: String,
    band: String,
    /// RFC 3339 time to judge at (schedules); default now.
    at: Option<String>,
}

/// "Would NAME be blocked for school X, band Y, and why?" — the same code
/// as `edudns explain`.
pub async fn test(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, true);
    let request: TestBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !who.role.covers_school(&request.school) {
        return forbidden(&state, &who, &format!("test school {}", request.school));
    }
    let name = match normalized(&request.name) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let at = match &request.at {
        None => state.handler.clock.now(),
        Some(text) => match text.parse::<jiff::Timestamp>() {
            Ok(t) => t,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("at {text:?}: {e} (RFC 3339, e.g. 2026-11-24T08:00:00+07:00)"),
                );
            }
        },
    };
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let Some(school) = config.schools.iter().position(|s| s.id == request.school) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no school {:?}", request.school),
        );
    };
    let Some(band) = config.bands.iter().position(|b| b.id == request.band) else {
        return problem(StatusCode::NOT_FOUND, format!("no band {:?}", request.band));
    };
    let client = crate::client::Client { school, band };
    let verdict = snapshot.evaluate(client, &name, at);
    let mut explanation = format!("name:    {name}\n");
    crate::snapshot::explain::explain_client(&snapshot, client, &name, at, &mut explanation);
    let (word, category, rule) = match &verdict {
        crate::policy::Verdict::Allow { rule } => (
            "allowed",
            None,
            rule.as_ref()
                .map(|r| crate::snapshot::explain::describe(&snapshot, r)),
        ),
        crate::policy::Verdict::Block { category, rule, .. } => (
            "blocked",
            category.map(|c| config.categories[c].id.clone()),
            Some(crate::snapshot::explain::describe(&snapshot, rule)),
        ),
        crate::policy::Verdict::Rewrite { target, .. } => (
            "safe_search",
            None,
            Some(format!("answered as an alias of {target}")),
        ),
    };
    axum::Json(json!({
        "name": name,
        "school": request.school,
        "band": request.band,
        "verdict": word,
        "blocked": verdict.is_blocked(),
        "category": category,
        "rule": rule,
        "explanation": explanation,
    }))
    .into_response()
}

// ---- Review queue ----

#[derive(Deserialize)]
pub struct ReviewQuery {
    status: Option<String>,
}

pub async fn reviews(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<ReviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role == Role::Auditor {
        return forbidden(&state, &who, "read the review queue");
    }
    let status = query.ok().and_then(|Query(q)| q.status);
    if let Some(s) = &status
        && !["pending", "accepted", "rejected"].contains(&s.as_str())
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("status {s:?}: expected pending, accepted or rejected"),
        );
    }
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let listed = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        crate::admin::reviews::list(store.connection(), status.as_deref())
    })
    .await;
    match listed {
        Ok(Ok(all)) => {
            let visible: Vec<_> = all
                .into_iter()
                .filter(|r| who.role.covers_school(&r.school))
                .collect();
            axum::Json(json!({ "reviews": visible })).into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the review queue",
        ),
    }
}

pub async fn review_decide(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path((id, decision)): Path<(i64, String)>,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, false);
    let accept = match decision.as_str() {
        "accept" => true,
        "reject" => false,
        other => {
            return problem(
                StatusCode::NOT_FOUND,
                format!("no action {other:?}: accept or reject"),
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
    let now = state.handler.clock.now().as_second();
    let role = who.role.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        let db = store.connection();
        let found = crate::admin::reviews::list(db, None)?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(crate::admin::reviews::ReviewError::NotFound(id))?;
        if !role.covers_school(&found.school) {
            return Ok(Err(found));
        }
        crate::admin::reviews::decide(db, &snapshot.config, id, accept, now).map(Ok)
    })
    .await;
    let review = match decided {
        Ok(Ok(Ok(review))) => review,
        Ok(Ok(Err(found))) => {
            return forbidden(
                &state,
                &who,
                &format!("decide reviews of school {}", found.school),
            );
        }
        Ok(Err(e @ crate::admin::reviews::ReviewError::NotFound(_))) => {
            return problem(StatusCode::NOT_FOUND, e.to_string());
        }
        Ok(Err(e @ crate::admin::reviews::ReviewError::AlreadyDecided { .. })) => {
            return problem(StatusCode::CONFLICT, e.to_string());
        }
        Ok(Err(e)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    audit_change(
        &state,
        (&who.name, &who.role.to_string()),
        if accept {
            "review.accept"
        } else {
            "review.reject"
        },
        &format!("school:{}/review:{}", review.school, review.id),
        &review.domain,
        "pending",
        &review.status,
    )
    .await;
    if accept && let Some(reloader) = state.reloader.clone() {
        // The accepted entry is in the school's allow file: load it now
        // rather than at the next file poll.
        let _ = reloader.reload("review accepted").await;
    }
    axum::Json(json!(review)).into_response()
}

// ---- Temporary allowances ----

pub async fn allowances_list(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role == Role::Auditor {
        return forbidden(&state, &who, "read temporary allowances");
    }
    let now = state.handler.clock.now().as_second();
    let list: Vec<Allowance> = state
        .handler
        .snapshot
        .load()
        .allowances
        .all()
        .into_iter()
        .filter(|a| a.until > now && who.role.covers_school(&a.school))
        .collect();
    axum::Json(json!({ "allowances": list })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowanceBody {
    school: String,
    band: String,
    domain: String,
    minutes: u32,
    #[serde(default)]
    reason: String,
}

pub async fn allowances_add(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, true);
    let request: AllowanceBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !who.role.covers_school(&request.school) {
        return forbidden(
            &state,
            &who,
            &format!("allow for school {}", request.school),
        );
    }
    let snapshot = state.handler.snapshot.load_full();
    if !snapshot
        .config
        .schools
        .iter()
        .any(|s| s.id == request.school)
    {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no school {:?}", request.school),
        );
    }
    if !snapshot.config.bands.iter().any(|b| b.id == request.band) {
        return problem(StatusCode::NOT_FOUND, format!("no band {:?}", request.band));
    }
    if request.minutes == 0 || request.minutes > allowances::MAX_MINUTES {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("minutes must be 1 to {}", allowances::MAX_MINUTES),
        );
    }
    let domain = match normalized(&request.domain) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let reason: String = request
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let now = state.handler.clock.now().as_second();
    let allowance = Allowance {
        id: 0,
        school: request.school,
        band: request.band,
        domain,
        until: now + i64::from(request.minutes) * 60,
        reason,
        actor: who.name.clone(),
        created_at: now,
    };
    let overlay = snapshot.allowances.clone();
    let added = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        allowances::add(store.connection(), &overlay, allowance)
    })
    .await;
    let Ok(Ok(added)) = added else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the allowance",
        );
    };
    audit_change(
        &state,
        (&who.name, &who.role.to_string()),
        "allowance.add",
        &format!("school:{}/band:{}", added.school, added.band),
        &added.domain,
        "",
        &json!(added).to_string(),
    )
    .await;
    (StatusCode::CREATED, axum::Json(json!(added))).into_response()
}

pub async fn allowances_remove(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, false);
    let snapshot = state.handler.snapshot.load_full();
    let Some(found) = snapshot.allowances.all().into_iter().find(|a| a.id == id) else {
        return problem(StatusCode::NOT_FOUND, format!("no running allowance #{id}"));
    };
    if !who.role.covers_school(&found.school) {
        return forbidden(
            &state,
            &who,
            &format!("end allowances of school {}", found.school),
        );
    }
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let overlay = snapshot.allowances.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        allowances::remove(store.connection(), &overlay, id)
    })
    .await;
    audit_change(
        &state,
        (&who.name, &who.role.to_string()),
        "allowance.remove",
        &format!("school:{}/band:{}", found.school, found.band),
        &found.domain,
        &json!(found).to_string(),
        "",
    )
    .await;
    StatusCode::NO_CONTENT.into_response()
}

/// Removes lapsed allowances from the database and audits each, forever.
pub async fn sweep_allowances(state: AppState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(store) = state.store.clone() else {
            return;
        };
        let overlay = state.handler.snapshot.load().allowances.clone();
        let now = state.handler.clock.now().as_second();
        let lapsed = tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            allowances::sweep(store.connection(), &overlay, now)
        })
        .await;
        if let Ok(Ok(lapsed)) = lapsed {
            for a in lapsed {
                info!(id = a.id, domain = %a.domain, school = %a.school, band = %a.band, "temporary allowance lapsed");
                audit_change(
                    &state,
                    ("edudns", "system"),
                    "allowance.expired",
                    &format!("school:{}/band:{}", a.school, a.band),
                    &a.domain,
                    &json!(a).to_string(),
                    "",
                )
                .await;
            }
        }
    }
}

/// Whether `method` changes state (for the router's catch-all checks).
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `GET /api/v1/policy`: the policy tables (`[office]`, `[[category]]`,
/// `[[band]]`, `[[school]]`) of this server's configuration, as TOML — what
/// nodes with `[central] url` pull. ETag/If-None-Match (304) so a node that
/// is current costs one small request. Office and auditor tokens; a school's
/// token is refused (the policy holds every school).
pub async fn policy(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    if matches!(who.role, Role::School(_)) {
        return forbidden(&state, &who, "read the whole policy");
    }
    let (text, _) = match current_text(&state) {
        Ok(current) => current,
        Err(response) => return response,
    };
    let policy = match state.reloader.as_ref().and_then(|r| r.config_path()) {
        // This server pulls its own policy from further up: pass that on.
        Some(path) => match crate::config::central::central_ref(
            &text,
            path.parent().unwrap_or(std::path::Path::new(".")),
        ) {
            Some(central) => match std::fs::read_to_string(&central.cache_file) {
                Ok(policy) => policy,
                Err(e) => {
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("no central policy cached yet: {e}"),
                    );
                }
            },
            None => edit::policy_tables(&text),
        },
        None => edit::policy_tables(&text),
    };
    let etag = edit::etag(&policy);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if fresh {
        return with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag);
    }
    let mut response = policy.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml; charset=utf-8"),
    );
    with_etag(response, &etag)
}
