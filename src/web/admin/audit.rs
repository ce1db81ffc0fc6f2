//! The audit log: writing an entry for each change, and reading it.

use super::auth::forbidden;
use super::reply::{BadRequest, Forbidden, Peer, Unavailable, problem};
use crate::admin::audit::{self, Change};
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// The audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditEntries {
    #[schema(value_type = Vec<audit::Entry>)]
    pub entries: Vec<Value>,
}
use tracing::warn;

pub(super) async fn audit_change(
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many entries (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// only entries with a smaller id (paging)
    before: Option<i64>,
}

/// The append-only audit log, newest first
///
/// Roles: office.
#[utoipa::path(get, path = "/audit", params(AuditQuery), responses(
    (status = 200, description = "entries", body = AuditEntries),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 503, response = Unavailable),
))]
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
        Ok(Ok(entries)) => axum::Json(AuditEntries {
            entries: entries.iter().map(|e| json!(e)).collect(),
        })
        .into_response(),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the audit log",
        ),
    }
}
