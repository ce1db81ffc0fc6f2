//! Policy administration: API tokens and roles, the audit log, temporary
//! allowances and the edits the management API makes to the config file.
//! The HTTP side is `web::admin`; the CLI side is `edudns tokens`.
//!
//! Uses: `config`, `takedown` (audit rows of takedowns).
//! Used by: `snapshot` (allowances), `stats` (the audit tables), `web`,
//! `cli`, `app`.

pub mod allowances;
pub mod audit;
pub mod edit;
pub mod reviews;
pub mod tokens;
