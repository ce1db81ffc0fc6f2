//! The tester: would a name be blocked for a school's band, and why.

use super::auth::forbidden;
use super::reply::{Peer, body, normalized, problem};
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

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
