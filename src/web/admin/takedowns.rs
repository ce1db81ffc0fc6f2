//! Takedowns ordered by the authorities: the entries in force, and pushing
//! new ones (an office token or the authorities' push token).

use super::auth::{authenticate, check_write};
use super::reply::{BodyErrors, Forbidden, Unavailable, problem};
use crate::admin::tokens::Role;
use crate::takedown::Takedown;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use utoipa::ToSchema;

/// The takedown entries in force.
#[derive(Serialize, ToSchema)]
pub struct Takedowns {
    #[schema(value_type = Vec<Takedown>)]
    pub takedowns: Vec<Value>,
}

/// How many pushed entries were new.
#[derive(Serialize, ToSchema)]
pub struct Added {
    pub added: usize,
}

/// Takedown entries in force
///
/// Roles: office, auditor.
#[utoipa::path(get, path = "/takedowns", responses(
    (status = 200, description = "entries", body = Takedowns),
    (status = 403, response = Forbidden),
))]
pub async fn takedowns_list(
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
    let all = state.handler.snapshot.load().takedowns.all();
    Json(Takedowns {
        takedowns: all.iter().map(|t| json!(t)).collect(),
    })
    .into_response()
}

/// Push takedown entries (every band, at once)
///
/// A JSON array of `{domain, reference, date}`, with
/// `Authorization: Bearer TOKEN`: an office token, or the authorities' push
/// token whose SHA-256 is `takedown.push_token_sha256` (a system with no
/// console account).
///
/// Roles: office, or the authorities' push token (takedown.push_token_sha256).
#[utoipa::path(post, path = "/takedowns", request_body = Vec<Takedown>, responses(
    (status = 200, description = "how many were added", body = Added),
    (status = 403, response = Forbidden),
    BodyErrors,
    (status = 503, response = Unavailable),
))]
pub async fn takedowns_push(
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
    if let Err(r) = check_write(&state, &headers, true) {
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
        Ok((added, _)) => Json(Added { added }).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
