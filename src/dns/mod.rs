//! The DNS side: listeners, the request pipeline, answers and forwarding.
//! Only this module touches hickory types.

pub mod answer;
mod batch;
pub mod cache;
pub mod counters;
pub mod fast;
pub mod flood;
pub mod forward;
pub mod handler;
pub mod ratelimit;
pub mod reply;
pub mod server;
pub mod upstream;
mod wire;

pub use handler::{Handler, Transport};
pub use server::{DnsServer, Limits};
pub use upstream::Upstream;
