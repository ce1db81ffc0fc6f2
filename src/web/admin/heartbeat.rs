//! `POST /api/v1/heartbeat`: a school node's heartbeat (it runs, whether
//! its filter is up, its last policy fetch), the latest kept per school and
//! node by the office (`office::heartbeat` checks and keeps; this file maps
//! it to HTTP).

use super::reply::{BadRequest, Forbidden, NotJson, TooLarge, Unavailable, problem};
use crate::admin::tokens::Role;
use crate::office::heartbeat::{self, Refused};
use crate::web::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// What the office did with a heartbeat.
#[derive(Serialize, ToSchema)]
pub struct HeartbeatAnswer {
    pub node: String,
    /// When the office received it (RFC 3339).
    pub received_at: String,
    pub school: String,
    /// `stored`: the latest of this school and node.
    pub status: String,
}

/// A school node says it runs: version, start, filter up, last policy fetch
///
/// Role: school:<id>, for that school only. Sent by a node with `[upload]`
/// every `heartbeat_interval` (1 h) and at start; the office keeps the
/// latest per school and node, and the console's overview shows it. Each
/// 400 names the field. No client address or device is sent or kept.
#[utoipa::path(post, path = "/heartbeat", request_body(content = heartbeat::Heartbeat, content_type = "application/json"), responses(
    (status = 200, description = "kept", body = HeartbeatAnswer),
    (status = 400, response = BadRequest),
    (status = 403, response = Forbidden),
    (status = 413, response = TooLarge),
    (status = 415, response = NotJson),
    (status = 503, response = Unavailable),
))]
pub async fn heartbeat(
    State(state): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    write_check!(state, headers, true);
    let figures = state.heartbeat.clone();
    let refuse = |status: StatusCode, message: String| {
        figures.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(token = %who.token_id, "heartbeat refused: {message}");
        problem(status, message)
    };
    let Role::School(school) = who.role.clone() else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not send a heartbeat: use the school's own token (school:<id>)",
                who.role
            ),
        );
    };
    if body.len() > heartbeat::MAX_BODY {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a heartbeat is at most {} bytes", heartbeat::MAX_BODY),
        );
    }
    let now = jiff::Timestamp::now();
    let kept = match heartbeat::check(&body, &school, now.as_second()) {
        Ok(kept) => kept,
        Err(refused) => {
            let status = match refused {
                Refused::OtherSchool { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            return refuse(status, refused.to_string());
        }
    };
    let Some(store) = state.store.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "statistics database is not open",
        );
    };
    let saved = kept.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        heartbeat::store(store.connection(), &saved)
    })
    .await;
    match outcome {
        Ok(Ok(())) => {
            figures.stored.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(school = %kept.school, node = %kept.node, filter_up = kept.filter_up, "heartbeat received");
            axum::Json(HeartbeatAnswer {
                node: kept.node,
                received_at: now.to_string(),
                school: kept.school,
                status: "stored".into(),
            })
            .into_response()
        }
        Ok(Err(e)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("office database: {e}"),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
