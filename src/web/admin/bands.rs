//! Bands: every band's policy, one band, and changing one.

use super::auth::forbidden;
use super::config::{ChangeResult, EditRequest, current_etag, edit_config};
use super::reply::{EditErrors, IF_MATCH, NotFound, Peer, body, problem, with_etag};
use crate::admin::edit;
use crate::admin::tokens::Role;
use crate::web::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Every band's policy, and the categories.
#[derive(Serialize, ToSchema)]
pub struct BandList {
    #[schema(value_type = Vec<edit::BandView>)]
    pub bands: Vec<Value>,
    /// `{id, name}` of every category.
    #[schema(value_type = Vec<Object>)]
    pub categories: Vec<Value>,
}

/// Every band's policy and the categories
///
/// Roles: any.
#[utoipa::path(get, path = "/bands", responses(
    (status = 200, description = "bands and categories", body = BandList,
        headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
))]
pub async fn bands(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let config = &snapshot.config;
    let bands: Vec<Value> = (0..config.bands.len())
        .map(|i| json!(edit::band_view(config, i)))
        .collect();
    let categories: Vec<Value> = config
        .categories
        .iter()
        .map(|c| json!({ "id": c.id, "name": c.name }))
        .collect();
    with_etag(
        axum::Json(BandList { bands, categories }).into_response(),
        &current_etag(&state),
    )
}

/// One band's policy
///
/// Roles: any.
#[utoipa::path(get, path = "/bands/{id}", params(("id" = String, Path, description = "band id")), responses(
    (status = 200, description = "the band", body = edit::BandView,
        headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
    (status = 404, response = NotFound),
))]
pub async fn band(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    let Some(index) = snapshot.config.bands.iter().position(|b| b.id == id) else {
        return problem(StatusCode::NOT_FOUND, format!("no band {id:?}"));
    };
    with_etag(
        axum::Json(json!(edit::band_view(&snapshot.config, index))).into_response(),
        &current_etag(&state),
    )
}

/// Change a band's policy (fields left out stay)
///
/// Validated like check-config, applied through the reload path within a
/// second with no failed queries, written atomically, audited.
///
/// Roles: office.
#[utoipa::path(patch, path = "/bands/{id}",
    params(("id" = String, Path, description = "band id"), ("If-Match" = String, Header, description = IF_MATCH)),
    request_body = edit::BandPatch,
    responses(
        (status = 200, description = "the new policy", body = ChangeResult,
            headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
        EditErrors,
    ))]
pub async fn patch_band(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change band policies");
    }
    write_check!(state, headers, true);
    let patch: edit::BandPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let band_id = id.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: true,
            action: "band.update",
            subject: format!("band:{id}"),
        },
        |doc| edit::apply_band(doc, &id, &patch).map(|()| true),
        move |config| {
            config
                .bands
                .iter()
                .position(|b| b.id == band_id)
                .map_or(Value::Null, |i| json!(edit::band_view(config, i)))
        },
    )
    .await
}
