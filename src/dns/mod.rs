//! The DNS side: listeners, the request pipeline, answers and forwarding.
//! Only this module touches hickory types.
//!
//! A packet's path: `server` (UDP batches and TCP) → `fast` (plain queries
//! answered from wire bytes: `wire`, `cache`) or `handler` (the general
//! pipeline) → `answer` (blocked, refused, error answers) or `upstream`
//! (cache, serve-stale, coalescing; `flood` admits lookups) → `forward`
//! (own UDP/TCP sockets; `forward_encrypted` for DoT/DoH upstreams through
//! hickory-net) → `reply` (what the upstream said).
//!
//! Uses: `snapshot`, `policy`, `client`, `lists`, `stats`, `config`.
//! Used by: `app`, `takedown::feed`, `web` (metrics, health), `stats`.

pub mod answer;
mod batch;
pub mod cache;
pub mod counters;
pub mod fast;
pub mod flood;
pub mod forward;
mod forward_encrypted;
mod forward_udp;
pub mod handler;
pub mod ratelimit;
pub mod reply;
pub mod server;
pub mod upstream;
mod wire;

pub use forward_encrypted::EncryptedCounters;
pub use handler::{Handler, Transport};
pub use server::{DnsServer, Limits};
pub use upstream::Upstream;
