//! Schools: the list, one school, and a school's own allow/deny entries.

use super::auth::forbidden;
use super::config::{ChangeResult, EditRequest, current_etag, edit_config};
use super::reply::{EditErrors, Forbidden, IF_MATCH, NotFound, Peer, body, problem, with_etag};
use crate::admin::edit;
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The schools a token may see, and the band ids.
#[derive(Serialize, ToSchema)]
pub struct SchoolList {
    /// `{id, name}` of every band.
    #[schema(value_type = Vec<Object>)]
    pub bands: Vec<Value>,
    #[schema(value_type = Vec<edit::SchoolView>)]
    pub schools: Vec<Value>,
}

/// Schools (school staff see their own) and the band ids
///
/// Roles: any.
#[utoipa::path(get, path = "/schools", responses(
    (status = 200, description = "schools and bands", body = SchoolList,
        headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
))]
pub async fn schools(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let list: Vec<Value> = (0..config.schools.len())
        .filter(|&i| {
            who.role == Role::Office
                || who.role.covers_school(&config.schools[i].id)
                || who.role == Role::Auditor
        })
        .map(|i| json!(edit::school_view(config, i)))
        .collect();
    let bands: Vec<Value> = (0..config.bands.len())
        .map(|i| json!({ "id": config.bands[i].id, "name": config.bands[i].name }))
        .collect();
    with_etag(
        axum::Json(SchoolList {
            bands,
            schools: list,
        })
        .into_response(),
        &current_etag(&state),
    )
}

/// One school: networks, bands, own allow and deny entries
///
/// Roles: office, auditor, school:<id>.
#[utoipa::path(get, path = "/schools/{id}", params(("id" = String, Path, description = "school id")), responses(
    (status = 200, description = "the school", body = edit::SchoolView,
        headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
    (status = 403, response = Forbidden),
    (status = 404, response = NotFound),
))]
pub async fn school(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = auth!(state, peer, headers);
    if !(who.role.covers_school(&id) || who.role == Role::Auditor) {
        return forbidden(&state, &who, &format!("read school {id}"));
    }
    let snapshot = state.handler.snapshot.load_full();
    let Some(index) = snapshot.config.schools.iter().position(|s| s.id == id) else {
        return problem(StatusCode::NOT_FOUND, format!("no school {id:?}"));
    };
    with_etag(
        axum::Json(json!(edit::school_view(&snapshot.config, index))).into_response(),
        &current_etag(&state),
    )
}

/// Change a school's own allow/deny entries
///
/// Validated like check-config, applied through the reload path, written
/// atomically, audited.
///
/// Roles: office, school:<id>.
#[utoipa::path(patch, path = "/schools/{id}",
    params(("id" = String, Path, description = "school id"), ("If-Match" = String, Header, description = IF_MATCH)),
    request_body = edit::SchoolPatch,
    responses(
        (status = 200, description = "the new entries", body = ChangeResult,
            headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
        EditErrors,
    ))]
pub async fn patch_school(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if !who.role.covers_school(&id) {
        return forbidden(&state, &who, &format!("change school {id}"));
    }
    write_check!(state, headers, true);
    let patch: edit::SchoolPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let school_id = id.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: true,
            action: "school.update",
            subject: format!("school:{id}"),
        },
        |doc| edit::apply_school(doc, &id, &patch).map(|()| true),
        move |config| {
            config
                .schools
                .iter()
                .position(|s| s.id == school_id)
                .map_or(Value::Null, |i| {
                    let v = edit::school_view(config, i);
                    json!({ "allow": v.allow, "deny": v.deny })
                })
        },
    )
    .await
}
