//! What the DoT and DoH listeners share: the handler, the in-flight
//! slots, the connection gate, the band tokens and the limits.

use super::gate::Gate;
use super::identity::Identities;
use crate::dns::Handler;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What every encrypted connection shares.
pub struct Shared {
    pub handler: Arc<Handler>,
    /// The UDP and TCP listeners' `max_in_flight` slots, shared.
    pub in_flight: Arc<Semaphore>,
    pub gate: Arc<Gate>,
    pub identities: Identities,
    pub limits: crate::config::EncryptedLimits,
}
