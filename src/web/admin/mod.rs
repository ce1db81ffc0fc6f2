//! The administration API (`/api/v1/...`) on the management listener, one
//! file per resource: authentication by bearer token, roles, lock-out after
//! failed attempts and cross-site request checks (`auth.rs`, `lockout.rs`),
//! the shared answer helpers (`reply.rs`), configuration edits and reloads
//! (`config.rs`: every change goes through `edit_config`, validated by the
//! same code as `check-config`, applied through the reload path, written
//! atomically, protected by ETag / If-Match, and audited), and the
//! endpoints for schools, bands, the office's lists and policy, lists and
//! categories, the tester, reviews, temporary allowances, takedowns,
//! reports, the schools' statistics and heartbeats (`ingest.rs`,
//! `heartbeat.rs`), the console's overview (`dashboard.rs`) and the audit log.
//!
//! May use: `crate::admin` (tokens, edits, allowances, reviews, audit),
//! `crate::app::reload`, `crate::config`, `crate::lists`, `crate::office`
//! (ingest, heartbeats, the overview's sums), `crate::policy`,
//! `crate::snapshot`, `crate::stats`, `crate::takedown`, and
//! `crate::web::state` for the handlers' state. Used by `crate::web` (the
//! router and the OpenAPI document) and `crate::app` (the [`Admin`] state
//! and the allowance sweep). Inside, the files are layered and none uses
//! `mod.rs`: `reply.rs` and `lockout.rs` use no other file here; `auth.rs`
//! uses `reply.rs`; `audit.rs` uses those two; `config.rs` uses `audit.rs`;
//! each resource file uses only those, so no two files use each other.
//!
//! Each handler carries its `#[utoipa::path]` (the OpenAPI operation,
//! summary and description from its doc comment) and its request and
//! answer types derive `ToSchema`. So do the types of other rooms that
//! the API reads or answers with (`admin::edit`'s views and patches,
//! `admin::audit::Entry`, `admin::allowances::Allowance`,
//! `admin::reviews::Review`, `lists::download::IgnoredLine`,
//! `lists::status::State`, `takedown::Takedown`, `office::dashboard`'s
//! cells and school statuses): they derive it in their
//! own files, keeping their component names with `#[schema(as = ...)]`,
//! and the operations here name them directly, so neither a field's name
//! nor its type can drift from what is served (those rooms gain only the
//! derive, and use nothing of `crate::web`). Answer structs list their
//! fields in alphabetical order and hold other rooms' types as `json!`
//! values (`#[schema(value_type = ...)]` names the real type), so the JSON
//! is what it was when whole answers were built with `json!` (sorted keys).
//!
//! Helpers return `Result<_, Response>`: the error *is* the HTTP answer,
//! sent at once, so boxing it (what clippy's `result_large_err` suggests)
//! would only add noise on a path that is not hot.
#![allow(clippy::result_large_err)]

/// `let who = auth!(state, peer, headers);`: the caller, or return the
/// refusal (401, 429).
macro_rules! auth {
    ($state:expr, $peer:expr, $headers:expr) => {
        match $crate::web::admin::auth::authenticate(&$state, $peer.0, &$headers) {
            Ok(p) => p,
            Err(r) => return r,
        }
    };
}

/// `write_check!(state, headers, needs_body);`: return the refusal of a
/// cross-site or non-JSON state-changing request.
macro_rules! write_check {
    ($state:expr, $headers:expr, $needs_body:expr) => {
        if let Err(r) = $crate::web::admin::auth::check_write(&$state, &$headers, $needs_body) {
            return r;
        }
    };
}

pub mod allowances;
pub mod audit;
pub mod auth;
pub mod bands;
pub mod config;
pub mod dashboard;
pub mod explain;
pub mod heartbeat;
pub mod ingest;
pub mod lists;
pub mod lockout;
pub mod office;
pub mod reply;
pub mod reports;
pub mod reviews;
pub mod schools;
pub mod takedowns;

pub use allowances::sweep_allowances;
pub use auth::{authenticate, check_write, is_write};
pub use lockout::{Admin, LOCKOUT_FAILURES, LOCKOUT_WINDOW};
pub use reply::problem;
