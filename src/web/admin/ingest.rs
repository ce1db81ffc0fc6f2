//! `POST /api/v1/ingest`: a school node's signed merge input for one closed
//! day, kept by the office (`office::ingest` does the checks and the
//! storage; this file maps them to HTTP).

use super::reply::{BadRequest, Conflict, Forbidden, NotJson, TooLarge, Unavailable, problem};
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// What the office did with an input.
#[derive(Serialize, ToSchema)]
pub struct IngestAnswer {
    pub day: String,
    /// The sending node (its statistics database id).
    pub node: String,
    pub school: String,
    /// `stored` (new) or `duplicate` (kept already: counted once).
    pub status: String,
}

/// A school node sends one closed day's signed merge input (`edudns report --for-merge`)
///
/// Role: school:<id>, for that school only. The input must be a merge
/// input of one school and one day, not in the future, signed with a key
/// registered at the office (`<stats.key_dir>/<school>.pub`). The same
/// school, node and day is kept once: sent again it is answered
/// `duplicate`; different content for a day kept already is refused (409).
#[utoipa::path(post, path = "/ingest", request_body(content = Object, content_type = "application/json", description = "the signed merge input"), responses(
    (status = 200, description = "kept (or kept already)", body = IngestAnswer),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 409, response = Conflict),
    (status = 413, response = TooLarge),
    (status = 415, response = NotJson),
    (status = 503, response = Unavailable),
))]
pub async fn ingest(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, true);
    let ingest = state.ingest.clone();
    let figures = &ingest.figures;
    let Role::School(school) = who.role.clone() else {
        figures.refused.fetch_add(1, Ordering::Relaxed);
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not send statistics: use the school's own token (school:<id>)",
                who.role
            ),
        );
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let snapshot = state.handler.snapshot.load_full();
    let key_dir = snapshot.config.stats.key_dir.clone();
    // UTC with a day of slack (office::ingest) covers every school time zone.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    // The checks (JSON, signature) on a thread of this request's own; the
    // writing with every other input waiting, in one transaction.
    let checked = tokio::task::spawn_blocking(move || {
        crate::office::ingest::check_input(&body, &school, &key_dir, today)
    })
    .await;
    let outcome = match checked {
        Ok(Ok(checked)) => match ingest.submit(store, checked).await {
            Ok(kept) => Ok(kept),
            Err(_) => Err("the office's writer stopped before answering".to_string()),
        },
        Ok(Err(refused)) => Ok(Ok(Err(refused))),
        Err(e) => Err(e.to_string()),
    };
    use crate::office::ingest::{Refused, Stored};
    match outcome {
        Ok(Ok(Ok(receipt))) => {
            let counter = match receipt.stored {
                Stored::New => &figures.stored,
                Stored::Duplicate => &figures.duplicate,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(school = %receipt.school, node = %receipt.node, day = %receipt.day,
                duplicate = receipt.stored == Stored::Duplicate, "statistics received");
            axum::Json(IngestAnswer {
                status: match receipt.stored {
                    Stored::New => "stored",
                    Stored::Duplicate => "duplicate",
                }
                .into(),
                school: receipt.school,
                node: receipt.node,
                day: receipt.day,
            })
            .into_response()
        }
        Ok(Ok(Err(refused))) => {
            figures.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(token = %who.token_id, "statistics refused: {refused}");
            let status = match refused {
                Refused::OtherSchool { .. } => StatusCode::FORBIDDEN,
                Refused::Conflict { .. } => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            problem(status, refused.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!("statistics not kept: {e}");
            problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
