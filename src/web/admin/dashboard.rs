//! The console's overview: `GET /district` (what every school sent to this
//! office, per day and per school) and `GET /dashboard` (one school from
//! this node's own statistics). `office::dashboard` sums and publishes;
//! this file checks roles and parameters and builds the node's days.

use super::auth::forbidden;
use super::reply::{BadRequest, Forbidden, NotFound, Peer, Unavailable, problem};
use crate::admin::tokens::Role;
use crate::office::dashboard::{
    self, DayCells, DomainTotal, PeriodError, SchoolStatus, blocked_by_day, top_domains,
};
use crate::stats::report::{self, Report, Stage};
use crate::web::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DistrictQuery {
    /// First day, YYYY-MM-DD (default: 30 days before `to`).
    #[serde(default)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (default: yesterday in Asia/Ho_Chi_Minh).
    #[serde(default)]
    to: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// The school's id (its statistics on this node).
    #[serde(default)]
    school: Option<String>,
    /// First day, YYYY-MM-DD (default: 30 days before `to`).
    #[serde(default)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (default: today in the school's time zone).
    #[serde(default)]
    to: Option<String>,
}

/// The district's overview.
#[derive(Serialize, ToSchema)]
pub struct DistrictAnswer {
    /// Every day of the period: blocked queries per category and per band,
    /// summed over the schools; cells under k hidden (null).
    pub blocked_by_day: Vec<DayCells>,
    pub from: String,
    /// The office's `privacy.k_anonymity`.
    pub k_anonymity: u64,
    /// Every school the office knows: its configuration's and any that sent.
    pub schools: Vec<SchoolStatus>,
    pub to: String,
    /// Domains blocked at least k times in the period across the schools (20 at most).
    pub top_blocked_domains: Vec<DomainTotal>,
}

/// One school's overview from this node's statistics.
#[derive(Serialize, ToSchema)]
pub struct DashboardAnswer {
    /// Every day of the period: blocked queries per category and per band;
    /// cells under k hidden (null).
    pub blocked_by_day: Vec<DayCells>,
    pub from: String,
    /// This node's `privacy.k_anonymity`.
    pub k_anonymity: u64,
    pub school: String,
    pub to: String,
    /// Domains blocked at least k times in the period (20 at most).
    pub top_blocked_domains: Vec<DomainTotal>,
}

fn bad_query(e: QueryRejection) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        format!("{e}; expected from and to as YYYY-MM-DD"),
    )
}

fn bad_period(e: PeriodError) -> Response {
    problem(StatusCode::BAD_REQUEST, e.to_string())
}

/// The district: every school's last report and heartbeat, blocked queries per day, top blocked domains
///
/// Roles: office, auditor. From the inputs the schools sent to this office
/// (`POST /ingest`). A school is `reporting` when its last day received is
/// yesterday or the day before (Asia/Ho_Chi_Minh); `filter_up` when its
/// nodes' heartbeats (`POST /heartbeat`) of the last 2 hours say so. Per day, cells between
/// 1 and k-1 are null, with complementary suppression; domains under k are
/// left out. Default period: the 30 days ending yesterday.
#[utoipa::path(get, path = "/district", params(DistrictQuery), responses(
    (status = 200, description = "the district's overview", body = DistrictAnswer),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 503, response = Unavailable),
))]
pub async fn district(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<DistrictQuery>, QueryRejection>,
) -> Response {
    let who = auth!(state, peer, headers);
    if !matches!(who.role, Role::Office | Role::Auditor) {
        return forbidden(&state, &who, "read the district's overview");
    }
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let today = dashboard::office_today();
    let yesterday = today.yesterday().unwrap_or(today);
    let (from, to) = match dashboard::period(query.from.as_deref(), query.to.as_deref(), yesterday)
    {
        Ok(period) => period,
        Err(e) => return bad_period(e),
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let snapshot = state.handler.snapshot.load_full();
    let k = snapshot.config.privacy.k_anonymity;
    let known: Vec<(String, String)> = snapshot
        .config
        .schools
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let built = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        dashboard::district(
            store.connection(),
            &known,
            from,
            to,
            k,
            today,
            jiff::Timestamp::now().as_second(),
        )
    })
    .await;
    match built {
        Ok(Ok(district)) => axum::Json(DistrictAnswer {
            blocked_by_day: district.blocked_by_day,
            from: from.to_string(),
            k_anonymity: k,
            schools: district.schools,
            to: to.to_string(),
            top_blocked_domains: district.top_blocked_domains,
        })
        .into_response(),
        Ok(Err(e)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("office database: {e}"),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One school: blocked queries per day and top blocked domains, from this node's statistics
///
/// Roles: office, auditor, school:<id>. The hourly counts grouped per
/// local day of the school, with the same k rules as `GET /district`.
/// Default period: the 30 days ending today (the school's time zone).
#[utoipa::path(get, path = "/dashboard", params(DashboardQuery), responses(
    (status = 200, description = "the school's overview", body = DashboardAnswer),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 404, response = NotFound),
    (status = 503, response = Unavailable),
))]
pub async fn school_dashboard(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Response {
    let who = auth!(state, peer, headers);
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let Some(school) = query.school.filter(|s| !s.is_empty()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "school: required (the school's id, e.g. school=s1)",
        );
    };
    if !(who.role == Role::Auditor || who.role.covers_school(&school)) {
        return forbidden(
            &state,
            &who,
            &format!("read the overview of school {school}"),
        );
    }
    let snapshot = state.handler.snapshot.load_full();
    let Some(config_school) = snapshot.config.schools.iter().find(|s| s.id == school) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("school: no school {school:?} on this node"),
        );
    };
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(config_school.timezone.clone())
        .date();
    let (from, to) = match dashboard::period(query.from.as_deref(), query.to.as_deref(), today) {
        Ok(period) => period,
        Err(e) => return bad_period(e),
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let k = snapshot.config.privacy.k_anonymity;
    let id = school.clone();
    // Each day as the merge input the node sends for it, summed by the
    // same code as the district's.
    let built = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        let mut days: Vec<Report> = Vec::new();
        let mut day = from;
        while day <= to {
            let text = day.to_string();
            days.push(report::build_stage(
                store.connection(),
                &snapshot.config,
                &id,
                &text,
                &text,
                k,
                Stage::MergeInput,
            )?);
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        Ok::<_, report::ReportError>(days)
    })
    .await;
    match built {
        Ok(Ok(days)) => axum::Json(DashboardAnswer {
            blocked_by_day: blocked_by_day(&days, from, to, k),
            from: from.to_string(),
            k_anonymity: k,
            school,
            to: to.to_string(),
            top_blocked_domains: top_domains(&days, k),
        })
        .into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
