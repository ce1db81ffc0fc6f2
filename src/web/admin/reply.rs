//! The answer helpers every handler shares: the JSON error body, JSON
//! request bodies, ETags and domain names from requests.

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::net::SocketAddr;

/// A JSON error body: `{"error": "..."}`.
pub fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

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
