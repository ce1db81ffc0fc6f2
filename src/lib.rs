//! edudns — a content-filtering DNS resolver for school networks.
//!
//! Each query goes through one fixed pipeline (see [`dns::handler`]):
//!
//! ```text
//! UDP/TCP socket (dns::server: caps on in-flight queries and TCP connections)
//!   or DoT/DoH (encrypted: TLS, HTTP, band tokens, per-client limits)
//!   → dns::Handler::decide
//!       snapshot = shared.load()                       one consistent version per query
//!       client   = snapshot.classify(src_ip)           school + grade band, or outside → REFUSED
//!       verdict  = snapshot.evaluate(client, qname)    Allow | Block { category, rule }
//!       Block → dns::answer::blocked                   sinkhole / null / NXDOMAIN, EDE 15
//!       Allow → fresh in the cache: answered at once (no in-flight slot)
//!             else dns::Upstream::resolve (cache, coalescing) → dns::forward (own sockets)
//!   → encode with the UDP size limit (TC when too big)
//! ```
//!
//! State lives in one immutable [`snapshot::Snapshot`] swapped whole by
//! [`reload`]; configuration is validated in two stages in [`config`]; the
//! category lists are parsed by [`lists::formats`] into the hash trie of
//! [`lists::trie`].

pub mod admin;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod counting;
pub mod dns;
pub mod encrypted;
#[doc(hidden)]
pub mod fuzzing;
pub mod lists;
pub mod office;
pub mod policy;
pub mod snapshot;
pub mod stats;
pub mod takedown;
pub mod web;
