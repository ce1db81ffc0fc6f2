//! The shared helpers of the integration tests, one file per concern;
//! everything is re-exported here, so a test file needs only
//! `use crate::harness::*;`.
//! - `config`: the base configuration, its default lists, test data paths;
//! - `server`: `TestServer`, the real edudns started in-process on
//!   127.0.0.1:0 with a config written to a temporary directory,
//!   forwarding to a `TestUpstream`;
//! - `dns`: clients: hickory's UDP client bound to any 127.x source (to
//!   pretend to be another school or band), a TCP client, and raw UDP for
//!   broken packets; reading answers;
//! - `http`: plain HTTP/1.1 on loopback, and serving a test app;
//! - `metrics`: parsing the Prometheus exposition;
//! - `browser`: chromedriver and a headless Chromium session.

mod browser;
mod config;
mod dns;
mod http;
mod metrics;
mod server;

pub use browser::*;
pub use config::*;
pub use dns::*;
pub use http::*;
pub use metrics::*;
pub use server::*;
