//! The tester: would a name be blocked for a school's band, and why.

use super::auth::forbidden;
use super::reply::{BodyErrors, Forbidden, NotFound, Peer, body, normalized, problem};
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A name to judge for a client of one band of one school.
#[derive(Deserialize, ToSchema)]
#[schema(as = TestRequest)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    name: String,
    school: String,
    band: String,
    /// RFC 3339 time to judge at (schedules); default now.
    at: Option<String>,
}

/// The verdict and the explanation `edudns explain` gives.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    pub band: String,
    pub blocked: bool,
    /// The blocking category, if a category blocks it.
    pub category: Option<String>,
    /// Every step of the decision, one a line.
    pub explanation: String,
    /// The name, normalized.
    pub name: String,
    /// The rule that decided.
    pub rule: Option<String>,
    pub school: String,
    pub verdict: Verdict,
}

/// What a client would get.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    Blocked,
    /// Answered as an alias of the search engine's safe-search host.
    SafeSearch,
}

/// Would NAME be blocked for a client of school X, band Y, and why (the code of `edudns explain`)
///
/// Roles: office, school:<id>.
#[utoipa::path(post, path = "/test", request_body = TestBody, responses(
    (status = 200, description = "the verdict", body = TestResult),
    (status = 403, response = Forbidden),
    (status = 404, response = NotFound),
    BodyErrors,
))]
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
            Verdict::Allowed,
            None,
            rule.as_ref()
                .map(|r| crate::snapshot::explain::describe(&snapshot, r)),
        ),
        crate::policy::Verdict::Block { category, rule, .. } => (
            Verdict::Blocked,
            category.map(|c| config.categories[c].id.clone()),
            Some(crate::snapshot::explain::describe(&snapshot, rule)),
        ),
        crate::policy::Verdict::Rewrite { target, .. } => (
            Verdict::SafeSearch,
            None,
            Some(format!("answered as an alias of {target}")),
        ),
    };
    axum::Json(TestResult {
        band: request.band,
        blocked: verdict.is_blocked(),
        category,
        explanation,
        name,
        rule,
        school: request.school,
        verdict: word,
    })
    .into_response()
}
