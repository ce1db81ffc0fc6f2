//! A school's statistics report for the authorities (signed JSON, CSV or
//! HTML).

use super::auth::authenticate;
use super::reply::{BadRequest, Forbidden, Unavailable, problem};
use crate::admin::tokens::Role;
use crate::stats::{report, sign};
use crate::web::state::AppState;
use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};

/// The report's formats.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReportFormat {
    Json,
    Csv,
    Html,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The school's id (its own statistics on this node).
    #[serde(default)]
    school: Option<String>,
    /// Instead of `school`: a district report merged from what the schools
    /// sent to this office (`POST /ingest`): `all`, or school ids separated
    /// by commas. Roles office and auditor.
    #[serde(default)]
    district: Option<String>,
    /// YYYY-MM-DD
    from: String,
    /// YYYY-MM-DD
    to: String,
    /// json (default, signed with the school's key when it has one), csv or html
    #[serde(default)]
    #[param(inline, value_type = Option<ReportFormat>)]
    format: Option<String>,
}

/// A school's statistics report for the authorities (JSON signed with the school's key, CSV or HTML)
///
/// Roles: office, auditor, school:<id>.
#[utoipa::path(get, path = "/reports", params(ReportQuery), responses(
    (status = 200, description = "the report", content(
        (Object = "application/json"),
        (String = "text/csv"),
        (String = "text/html"),
    )),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 503, response = Unavailable),
))]
pub async fn reports(
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
    let school = match (query.school.clone(), query.district.clone()) {
        (Some(school), None) => school,
        (None, Some(district)) => {
            return district_report(&state, &who.role, &district, query).await;
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "give either school=<id> (this node's statistics) or district=all|<id>,<id> (what the schools sent to this office)",
            );
        }
    };
    if !(who.role == Role::Auditor || who.role.covers_school(&school)) {
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not read reports of school {}",
                who.role, school
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
            &school,
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
    let school = report.schools[0].id.clone();
    let (key, _) = sign::key_paths(&snapshot.config.stats.key_dir, &school);
    render(report, format.as_deref(), &key)
}

/// The report as JSON (signed with `key` when it exists), CSV or HTML.
fn render(report: report::Report, format: Option<&str>, key: &std::path::Path) -> Response {
    match format.unwrap_or("json") {
        "json" => match sign::sign_if_key(report, key) {
            Ok(signed) => Json(signed).into_response(),
            Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
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

/// A district report from the inputs the schools sent to this office.
async fn district_report(
    state: &AppState,
    role: &Role,
    district: &str,
    query: ReportQuery,
) -> Response {
    if !matches!(role, Role::Office | Role::Auditor) {
        return problem(
            StatusCode::FORBIDDEN,
            format!("role {role} may not read district reports"),
        );
    }
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let schools: Option<Vec<String>> = (district != "all").then(|| {
        district
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let key = state
        .handler
        .snapshot
        .load()
        .config
        .stats
        .key_dir
        .join("office.key");
    let (from, to) = (query.from.clone(), query.to.clone());
    let built = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        crate::office::district::district_report(store.connection(), &from, &to, schools.as_deref())
    })
    .await;
    match built {
        Ok(Ok(merged)) => render(merged.report, query.format.as_deref(), &key),
        Ok(Err(crate::office::district::DistrictError::Nothing { from, to })) => problem(
            StatusCode::NOT_FOUND,
            format!("no school sent statistics for {from} to {to}"),
        ),
        Ok(Err(crate::office::district::DistrictError::Database(e))) => {
            problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Ok(Err(e)) => problem(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
