//! The "blocked by mistake" review queue: listing and deciding.

use super::audit::audit_change;
use super::auth::forbidden;
use super::reply::{BadRequest, Conflict, Forbidden, NotFound, Peer, Unavailable, problem};
use crate::admin::reviews::Review;
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// Where a request stands.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReviewStatus {
    Pending,
    Accepted,
    Rejected,
}

/// What the office or the school decides.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Decision {
    Accept,
    Reject,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Only the requests in this state (default: all).
    #[param(inline, value_type = Option<ReviewStatus>)]
    status: Option<String>,
}

/// The review queue.
#[derive(Serialize, ToSchema)]
pub struct Reviews {
    #[schema(value_type = Vec<Review>)]
    pub reviews: Vec<Value>,
}

/// The 'blocked by mistake' review queue (school staff: their school)
///
/// Roles: office, school:<id>.
#[utoipa::path(get, path = "/reviews", params(ReviewQuery), responses(
    (status = 200, description = "requests", body = Reviews),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 503, response = Unavailable),
))]
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
            axum::Json(Reviews {
                reviews: visible.iter().map(|r| json!(r)).collect(),
            })
            .into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the review queue",
        ),
    }
}

/// Accept (the domain is allowed for the school at once) or reject a request
///
/// Roles: office, school:<id of the request>.
#[utoipa::path(post, path = "/reviews/{id}/{decision}",
    params(("id" = i64, Path, description = "the request's id"), ("decision" = inline(Decision), Path)),
    responses(
        (status = 200, description = "the decided request", body = Review),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
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
