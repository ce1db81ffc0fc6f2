//! The education office's own allow and deny lists, and the policy
//! tables that nodes with `[central] url` pull.

use super::auth::forbidden;
use super::config::{ChangeResult, EditRequest, current_etag, current_text, edit_config};
use super::reply::{
    BadRequest, BodyErrors, Forbidden, NotFound, Peer, PreconditionFailed, Unavailable,
    Unprocessable, body, normalized, problem, with_etag,
};
use crate::admin::edit::{self};
use crate::admin::tokens::{Principal, Role};
use crate::web::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// Which of the office's lists.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OfficeList {
    Allow,
    Deny,
}

/// The education office's own allow and deny entries (every school, every band)
///
/// Roles: any.
#[utoipa::path(get, path = "/office", responses(
    (status = 200, description = "the lists", body = edit::OfficeView,
        headers(("ETag" = String, description = "Version of the configuration file; send it back as If-Match when changing"))),
))]
pub async fn office(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let _who = auth!(state, peer, headers);
    let snapshot = state.handler.snapshot.load_full();
    with_etag(
        axum::Json(json!(edit::office_view(&snapshot.config))).into_response(),
        &current_etag(&state),
    )
}

/// A domain to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    domain: String,
}

async fn office_list_change(
    state: AppState,
    who: Principal,
    headers: HeaderMap,
    list: String,
    domain: String,
    add: bool,
) -> Response {
    let domain = match normalized(&domain) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let list_name = list.clone();
    edit_config(
        &state,
        EditRequest {
            principal: &who,
            headers: &headers,
            require_if_match: false,
            action: if add { "office.add" } else { "office.remove" },
            subject: format!("office:{list}:{domain}"),
        },
        |doc| edit::apply_office(doc, &list, &domain, add),
        move |config| {
            let v = edit::office_view(config);
            json!(if list_name == "allow" {
                v.allow
            } else {
                v.deny
            })
        },
    )
    .await
}

/// Add a domain to the office's allow or deny list
///
/// Roles: office.
#[utoipa::path(post, path = "/office/{list}",
    params(("list" = inline(OfficeList), Path), ("If-Match" = Option<String>, Header, description = "optional ETag check")),
    request_body = DomainBody,
    responses(
        (status = 200, description = "the list after the change", body = ChangeResult),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        BodyErrors,
        (status = 422, response = Unprocessable),
    ))]
pub async fn office_add(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(list): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change the office's lists");
    }
    write_check!(state, headers, true);
    let domain = match body::<DomainBody>(&bytes) {
        Ok(b) => b.domain,
        Err(r) => return r,
    };
    office_list_change(state, who, headers, list, domain, true).await
}

/// Remove a domain from the office's allow or deny list
///
/// Roles: office.
#[utoipa::path(delete, path = "/office/{list}/{domain}",
    params(("list" = inline(OfficeList), Path), ("domain" = String, Path),
        ("If-Match" = Option<String>, Header, description = "optional ETag check")),
    responses(
        (status = 200, description = "the list after the change", body = ChangeResult),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
    ))]
pub async fn office_remove(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path((list, domain)): Path<(String, String)>,
) -> Response {
    let who = auth!(state, peer, headers);
    if who.role != Role::Office {
        return forbidden(&state, &who, "change the office's lists");
    }
    write_check!(state, headers, false);
    office_list_change(state, who, headers, list, domain, false).await
}

/// The policy tables of this server's configuration, for nodes with [central] url
///
/// Roles: office, auditor. The `[office]`, `[[category]]`, `[[band]]` and
/// `[[school]]` tables as TOML (comments kept): what nodes with
/// `[central] url` pull. Send If-None-Match with the last ETag: 304 when
/// unchanged, so a node that is current costs one small request
/// (docs/scaling.md, 'Central policy'). A school's token is refused (the
/// policy holds every school).
#[utoipa::path(get, path = "/policy",
    params(("If-None-Match" = Option<String>, Header, description = "the ETag of the copy the node holds")),
    responses(
        (status = 200, description = "the policy document", body = String, content_type = "application/toml",
            headers(("ETag" = String, description = "Version of the policy document"))),
        (status = 304, description = "the node's copy is current"),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ))]
pub async fn policy(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    let who = auth!(state, peer, headers);
    if matches!(who.role, Role::School(_)) {
        return forbidden(&state, &who, "read the whole policy");
    }
    let (text, _) = match current_text(&state) {
        Ok(current) => current,
        Err(response) => return response,
    };
    let policy = match state.reloader.as_ref().and_then(|r| r.config_path()) {
        // This server pulls its own policy from further up: pass that on.
        Some(path) => match crate::config::central::central_ref(
            &text,
            path.parent().unwrap_or(std::path::Path::new(".")),
        ) {
            Some(central) => match std::fs::read_to_string(&central.cache_file) {
                Ok(policy) => policy,
                Err(e) => {
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("no central policy cached yet: {e}"),
                    );
                }
            },
            None => edit::policy_tables(&text),
        },
        None => edit::policy_tables(&text),
    };
    let etag = edit::etag(&policy);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if fresh {
        return with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag);
    }
    let mut response = policy.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml; charset=utf-8"),
    );
    with_etag(response, &etag)
}
