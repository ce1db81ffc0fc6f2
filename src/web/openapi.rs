//! The OpenAPI document of `/api/v1`, generated instead of kept by hand:
//! each handler's `#[utoipa::path]` describes its operation, the request
//! and response types derive `ToSchema`, and the router that serves the
//! API (`web::api` with `utoipa_axum`) collects both from one list, so the
//! document cannot drift from the handlers. This file adds what belongs to
//! the whole document: the title, the server prefix, the bearer-token
//! security scheme, the shared error responses, and the 401/429 answers
//! every operation that needs a token can give.
//!
//! May use: `crate::web::admin::reply` (the error responses). Used by
//! `crate::web` (the router and `GET /api/v1/openapi.json`).

use crate::web::admin::reply::{
    Issue, Problem, TooManyAttempts, Unauthorized, error_ref, error_responses,
};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; the paths and their schemas come from the
/// handlers as the router collects them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "edudns administration API",
        version = "1",
        description = "Policy administration for edudns (education office, school IT staff, auditors). Bearer tokens from `edudns tokens create`. State-changing requests need Content-Type: application/json (when they have a body) and, from a browser, a same-origin Origin. See docs/administration.md."
    ),
    servers((url = "/api/v1")),
    security(("bearer" = [])),
    modifiers(&BearerTokens),
    components(schemas(Problem, Issue))
)]
pub struct ApiDoc;

/// The `bearer` security scheme (the tokens `edudns tokens create` makes)
/// and the error answers the operations refer to.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut Document) {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("edudns_<id>_<secret>".to_string());
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        components.responses.extend(error_responses());
    }
}

/// Adds the answers of [`authenticate`](crate::web::admin::authenticate)
/// (401 without a valid token, 429 after too many failed ones) to every
/// operation that uses the document's bearer security, that is every one
/// that does not set its own.
pub fn finish(mut document: Document) -> Document {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.security.is_some() {
                continue;
            }
            for (status, name) in [
                (Unauthorized::STATUS, "Unauthorized"),
                (TooManyAttempts::STATUS, "TooManyAttempts"),
            ] {
                operation
                    .responses
                    .responses
                    .insert(status.to_string(), error_ref(name));
            }
        }
    }
    document
}
