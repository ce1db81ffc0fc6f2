//! Temporary allowances: list, add, end early, and the sweep that ends
//! lapsed ones.

use super::audit::audit_change;
use super::auth::forbidden;
use super::reply::{BodyErrors, Forbidden, NotFound, Peer, Unavailable, body, normalized, problem};
use crate::admin::allowances::{self, Allowance};
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use tracing::info;
use utoipa::ToSchema;

/// The allowances running now.
#[derive(Serialize, ToSchema)]
pub struct Allowances {
    #[schema(value_type = Vec<Allowance>)]
    pub allowances: Vec<Value>,
}

/// Temporary allowances running now
///
/// Roles: office, school:<id>.
#[utoipa::path(get, path = "/allowances", responses(
    (status = 200, description = "allowances", body = Allowances),
    (status = 403, response = Forbidden),
))]
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
    let list: Vec<Value> = state
        .handler
        .snapshot
        .load()
        .allowances
        .all()
        .into_iter()
        .filter(|a| a.until > now && who.role.covers_school(&a.school))
        .map(|a| json!(a))
        .collect();
    axum::Json(Allowances { allowances: list }).into_response()
}

/// A domain to allow for one band of one school for some minutes.
#[derive(Deserialize, ToSchema)]
#[schema(as = AllowanceRequest)]
#[serde(deny_unknown_fields)]
pub struct AllowanceBody {
    school: String,
    band: String,
    domain: String,
    /// How long, 1 to 720 minutes.
    #[schema(minimum = 1, maximum = 720)]
    minutes: u32,
    /// Why (shown in the audit log; at most 200 characters are kept).
    #[serde(default)]
    reason: String,
}

/// Allow a domain for one band of one school for N minutes (lapses by itself; audited)
///
/// Roles: office, school:<id>.
#[utoipa::path(post, path = "/allowances", request_body = AllowanceBody, responses(
    (status = 201, description = "the allowance", body = Allowance),
    (status = 403, response = Forbidden),
    (status = 404, response = NotFound),
    BodyErrors,
    (status = 503, response = Unavailable),
))]
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

/// End a temporary allowance early
///
/// Roles: office, school:<id>.
#[utoipa::path(delete, path = "/allowances/{id}", params(("id" = i64, Path, description = "the allowance's id")), responses(
    (status = 204, description = "ended"),
    (status = 403, response = Forbidden),
    (status = 404, response = NotFound),
    (status = 503, response = Unavailable),
))]
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
