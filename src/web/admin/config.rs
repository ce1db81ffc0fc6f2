//! Configuration edits: every change to the file goes through
//! `edit_config` (validated like `check-config`, applied through the
//! reload path, written atomically, ETag / If-Match, audited), and the
//! reload endpoint.

use super::audit::audit_change;
use super::auth::forbidden;
use super::reply::{
    Forbidden, Issue, Peer, Problem, Unavailable, Unprocessable, problem, with_etag,
};
use crate::admin::edit::{self, EditError};
use crate::admin::tokens::{Principal, Role};
use crate::app::reload::{ApplyError, LoadError};
use crate::config::{Config, ConfigError};
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A configuration change's answer: whether anything changed, and the
/// edited object after it (or as it is, when nothing changed).
#[derive(Serialize, ToSchema)]
pub struct ChangeResult {
    pub changed: bool,
    pub value: Value,
}

use std::time::Instant;
use tracing::info;

/// The configuration text in force on disk and its ETag.
pub(super) fn current_text(state: &AppState) -> Result<(String, String), Response> {
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

pub(super) fn current_etag(state: &AppState) -> String {
    current_text(state).map(|(_, e)| e).unwrap_or_default()
}

fn config_error_response(error: &ConfigError) -> Response {
    let issues = match error {
        ConfigError::Invalid { issues, .. } => issues
            .iter()
            .map(|i| Issue {
                key: i.key.clone(),
                line: i.line,
                message: i.message.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let body = Problem {
        error: error.to_string(),
        issues: Some(issues),
    };
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// What one configuration edit is.
pub(super) struct EditRequest<'a> {
    pub principal: &'a Principal,
    pub headers: &'a HeaderMap,
    /// 428 when the request has no If-Match.
    pub require_if_match: bool,
    pub action: &'a str,
    pub subject: String,
}

/// Read the file, check If-Match, change the document, validate, build,
/// write, swap in, audit. `view` renders the edited object before and after.
pub(super) async fn edit_config(
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
                axum::Json(ChangeResult {
                    changed: false,
                    value: view(&before),
                })
                .into_response(),
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
        axum::Json(ChangeResult {
            changed: true,
            value: after_view,
        })
        .into_response(),
        &edit::etag(&new_text),
    )
}

/// The configuration generation now in force.
#[derive(Serialize, ToSchema)]
pub struct Generation {
    pub generation: u64,
}

/// Reload the configuration and lists now
///
/// Roles: office.
#[utoipa::path(post, path = "/reload", responses(
    (status = 200, description = "the new generation", body = Generation),
    (status = 403, response = Forbidden),
    (status = 422, response = Unprocessable),
    (status = 503, response = Unavailable),
))]
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
            axum::Json(Generation { generation }).into_response()
        }
        Err(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("reload failed; the running configuration stays in force: {e}"),
        ),
    }
}
