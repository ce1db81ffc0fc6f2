//! The answer helpers every handler shares: the JSON error body and the
//! error responses the OpenAPI document names, JSON request bodies, ETags
//! and domain names from requests.

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{ToResponse, ToSchema};

/// Every error answer's body.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct Problem {
    /// What is wrong, in words for the person at the console.
    pub error: String,
    /// Only when a configuration change does not validate: each problem
    /// with its key path and line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<Issue>>,
}

/// One problem in a configuration change.
#[derive(Serialize, ToSchema)]
pub struct Issue {
    /// Key path in the TOML document, e.g. `band[1].block`.
    pub key: String,
    /// 1-based line (0 when the problem is not tied to a line).
    pub line: usize,
    pub message: String,
}

/// A JSON error body: `{"error": "..."}`.
pub fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    let body = Problem {
        error: message.into(),
        issues: None,
    };
    (status, axum::Json(body)).into_response()
}

/// The error answers, each a reusable response of the OpenAPI document
/// (`#/components/responses/...`) with the [`Problem`] body and its
/// status; the doc comment is the response's description.
macro_rules! error_responses {
    ($($(#[doc = $doc:literal])+ $status:literal $name:ident,)+) => {
        $(
            $(#[doc = $doc])+
            #[derive(ToResponse)]
            pub struct $name(#[allow(dead_code)] Problem);

            impl $name {
                pub const STATUS: &str = $status;
            }
        )+

        /// Every error answer, for the document's components.
        pub fn error_responses() -> Vec<(String, RefOr<utoipa::openapi::Response>)> {
            vec![$({
                let (name, response) = <$name as ToResponse>::response();
                (name.to_string(), response)
            }),+]
        }
    };
}

error_responses! {
    /// Bad request: the message names the field
    "400" BadRequest,
    /// Missing, unknown or revoked token
    "401" Unauthorized,
    /// The token's role may not do this, or a cross-site request
    "403" Forbidden,
    /// No such school, band, list or entry
    "404" NotFound,
    /// Conflict (already decided; embedded configuration; file on disk invalid)
    "409" Conflict,
    /// If-Match does not match the current ETag (someone else changed the configuration)
    "412" PreconditionFailed,
    /// Body over 1 MiB
    "413" TooLarge,
    /// Body is not Content-Type: application/json
    "415" NotJson,
    /// The change does not validate (issues name the field and line) or the lists do not build; nothing was changed
    "422" Unprocessable,
    /// If-Match is required
    "428" PreconditionRequired,
    /// Too many failed sign-ins from this address (Retry-After)
    "429" TooManyAttempts,
    /// The statistics database is not open, reloads are not running, or no central policy is cached yet
    "503" Unavailable,
}

/// A reference to the error answer `name` of the document's components.
pub fn error_ref(name: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::Ref(Ref::from_response_name(name))
}

/// Error answers that several operations share, for their
/// `#[utoipa::path(responses(...))]`.
macro_rules! response_sets {
    ($($(#[doc = $doc:literal])+ $set:ident = [$($name:ident),+];)+) => {
        $(
            $(#[doc = $doc])+
            pub struct $set;

            impl utoipa::IntoResponses for $set {
                fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                    [$(($name::STATUS, stringify!($name))),+]
                        .into_iter()
                        .map(|(status, name)| (status.to_string(), error_ref(name)))
                        .collect()
                }
            }
        )+
    };
}

response_sets! {
    /// The errors of any request with a JSON body.
    BodyErrors = [BadRequest, TooLarge, NotJson];
    /// The errors of a change to a band's or a school's policy (`PATCH`):
    /// every way `config::edit_config` can refuse it.
    EditErrors = [
        BadRequest,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        TooLarge,
        NotJson,
        Unprocessable,
        PreconditionRequired
    ];
}

/// The If-Match header's description where it is required.
pub const IF_MATCH: &str = "ETag read with GET (or * to overwrite whatever is there)";

/// Parses a JSON body, naming the field that is wrong.
pub(super) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        problem(
            StatusCode::BAD_REQUEST,
            if path == "." {
                format!("invalid JSON body: {inner}")
            } else {
                format!("invalid JSON body at {path}: {inner}")
            },
        )
    })
}

pub(super) fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

pub(super) fn normalized(domain: &str) -> Result<String, Response> {
    let text = domain.trim();
    let text = text.strip_prefix("*.").unwrap_or(text);
    crate::lists::name::normalize(text)
        .map(|n| n.into_owned())
        .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("domain {domain:?}: {e}")))
}

pub(super) type Peer = ConnectInfo<SocketAddr>;
