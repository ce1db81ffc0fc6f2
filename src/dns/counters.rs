//! Server-wide counters of what happened to packets, lock-free.
//!
//! These are the protocol-level counts (dropped, shed, truncated …); the
//! per-school statistics build on them.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, one atomic each.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A plain copy of [`Counters`] at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct CountersSnapshot {
            $(pub $name: u64,)*
        }

        impl Counters {
            pub fn snapshot(&self) -> CountersSnapshot {
                CountersSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Queries that got an answer of any kind.
    answered,
    /// Queries answered from the sinkhole (or NXDOMAIN) because of a rule.
    blocked,
    /// Queries forwarded upstream (or answered for ANY) because nothing blocked them.
    allowed,
    /// Clients outside every school network (refused or dropped).
    refused_outside,
    /// Packets shorter than a DNS header: no answer.
    dropped_short,
    /// Packets with QR=1 (responses sent to us): no answer.
    dropped_response,
    /// Queries dropped because `max_in_flight` were already being answered.
    shed_in_flight,
    /// TCP connections closed at once because `tcp_max_connections` were open.
    shed_tcp_connections,
    /// Unparseable queries answered FORMERR.
    malformed,
    /// Upstream failures answered SERVFAIL.
    upstream_errors,
    /// UDP answers too large for the client, sent with TC=1.
    truncated,
    /// Non-QUERY opcodes and classes other than IN.
    not_implemented,
    /// Queries dropped by the per-client rate limit of the client's band.
    rate_limited,
    /// Questions received over DNS over TLS and DNS over HTTPS.
    dot_queries,
    doh_queries,
    /// Encrypted-DNS connections accepted.
    encrypted_connections,
    /// Encrypted-DNS connections closed at once: `max_connections` open,
    /// or the client address at its connection or handshake limit.
    shed_encrypted_connections,
    /// TLS handshakes that failed or did not finish in time.
    tls_handshake_failed,
    /// Questions or connections with a band token that is not valid.
    band_token_refused,
    /// DoH requests answered 4xx (bad path, method, type, body).
    doh_bad_request,
    /// Certificate reloads that kept the old certificate (bad new files).
    tls_certificate_reload_failed,
    /// Queries answered by the UDP fast path (blocked names and cached
    /// answers written from wire bytes; also counted as answered).
    fast_path,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Forwarded queries being answered now (each holds a `max_in_flight`
/// slot), and the most there have been at once since the start.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicU64,
    peak: AtomicU64,
}

/// One forwarded query being answered; leaves the count when dropped.
pub struct InFlightSlot<'a>(&'a InFlight);

impl InFlight {
    /// Counts one more query in flight until the returned slot is dropped.
    pub fn enter(&self) -> InFlightSlot<'_> {
        let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        InFlightSlot(self)
    }

    /// (in flight now, peak since the start).
    pub fn get(&self) -> (u64, u64) {
        (
            self.now.load(Ordering::Relaxed),
            self.peak.load(Ordering::Relaxed),
        )
    }
}

impl Drop for InFlightSlot<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::Relaxed);
    }
}
