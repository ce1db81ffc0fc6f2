//! The education office's side of a node: the policy pull today
//! ([`pull`]: conditional GET of `[central] url`, validate, swap), with room
//! for the upload of statistics and district reports.
//!
//! Uses: `config` (the `[central]` merge and validation), `app::reload` (to
//! swap a new policy in), `lists::download` (the conditional GET).
//! Used by: `app` (started with the service).

pub mod pull;
