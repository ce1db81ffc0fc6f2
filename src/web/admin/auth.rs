//! Who is calling: bearer tokens, roles, lock-out, and the checks on
//! state-changing requests a browser could be tricked into sending.

use super::reply::{Peer, problem};
use crate::admin::tokens::Principal;
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use tracing::warn;
use utoipa::ToSchema;

pub(super) fn refused(state: &AppState, reason: &str) {
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

pub(super) fn forbidden(state: &AppState, principal: &Principal, what: &str) -> Response {
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

/// Whether `method` changes state (for the router's catch-all checks).
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Who a token belongs to.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The name given at `edudns tokens create`.
    pub name: String,
    /// `office`, `auditor` or `school:<id>`.
    pub role: String,
    pub token_id: String,
}

/// Who the token belongs to (the console signs in with it)
///
/// Roles: any.
#[utoipa::path(get, path = "/whoami", responses((status = 200, description = "name and role", body = WhoAmI)))]
pub async fn whoami(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    axum::Json(WhoAmI {
        name: who.name,
        role: who.role.to_string(),
        token_id: who.token_id,
    })
    .into_response()
}
