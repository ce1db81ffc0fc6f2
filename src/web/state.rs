//! What every management handler is handed: the DNS handler (snapshot,
//! stats, upstream), the durable store, the reload path and the API's own
//! authentication state ([`Admin`]). The handlers use it; of the handlers'
//! files it uses only `admin/lockout.rs`, a leaf, so no two files use each other.

use crate::app::reload::Reloader;
use crate::dns::Handler;
use crate::stats::flusher::SharedStore;
use crate::web::admin::lockout::Admin;
use std::sync::Arc;

/// What the management handlers read.
#[derive(Clone)]
pub struct AppState {
    pub handler: Arc<Handler>,
    pub store: Option<SharedStore>,
    /// Applies policy changes (absent in tools that only read).
    pub reloader: Option<Arc<Reloader>>,
    pub admin: Arc<Admin>,
    /// What this node's statistics upload did (`[upload]`).
    pub upload: Arc<crate::office::upload::UploadFigures>,
    /// What this node's heartbeat sent, and what this office received on
    /// `/api/v1/heartbeat`.
    pub heartbeat: Arc<crate::office::heartbeat::HeartbeatFigures>,
    /// What this office received on `/api/v1/ingest`, and the inputs
    /// waiting for its writer (group commit).
    pub ingest: Arc<crate::office::ingest::Ingest>,
}
