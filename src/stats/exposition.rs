//! The Prometheus exposition: every metric family's name, help text and
//! labels, registered once for the life of the process ([`Stats::new`]);
//! the gauges of what a snapshot loaded ([`Stats::record_snapshot`]); and
//! the text format `/metrics` serves ([`Stats::render`]), with the
//! protocol and upstream counters brought up to date.

use super::{Stats, UpstreamFigures};
use crate::dns::counters::CountersSnapshot;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::Mutex;

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(gauge.clone()))
        .expect("unique metric");
    gauge
}

/// Latency buckets from 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}
impl Stats {
    pub fn new() -> Self {
        let registry = Registry::new();
        let labels = ["school", "band", "category", "verdict"];
        let queries = counter_vec(
            &registry,
            "edudns_queries_total",
            "Queries answered, by school, grade band, category and verdict.",
            &labels,
        );
        let cache_hits = counter_vec(
            &registry,
            "edudns_cache_hits_total",
            "Forwarded queries answered from the cache.",
            &["school", "band"],
        );
        let upstream_errors = counter_vec(
            &registry,
            "edudns_upstream_errors_total",
            "Forwarded queries answered SERVFAIL because the upstream failed.",
            &["school", "band"],
        );
        let refused_outside = IntCounter::new(
            "edudns_refused_total",
            "Queries from clients outside every school network.",
        )
        .expect("valid");
        registry
            .register(Box::new(refused_outside.clone()))
            .expect("unique");
        let answer_duration = HistogramVec::new(
            HistogramOpts::new(
                "edudns_answer_duration_seconds",
                "Time from receiving a query to its answer.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["path"],
        )
        .expect("valid");
        registry
            .register(Box::new(answer_duration.clone()))
            .expect("unique");
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "edudns_upstream_duration_seconds",
                "Time the upstream took to answer a cache miss.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid");
        registry
            .register(Box::new(upstream_duration.clone()))
            .expect("unique");
        let list_entries = IntGaugeVec::new(
            Opts::new("edudns_list_entries", "Entries loaded per category."),
            &["category"],
        )
        .expect("valid");
        registry
            .register(Box::new(list_entries.clone()))
            .expect("unique");
        let list_skipped = IntGaugeVec::new(
            Opts::new(
                "edudns_list_skipped_lines",
                "List lines skipped as invalid, per category.",
            ),
            &["category"],
        )
        .expect("valid");
        registry
            .register(Box::new(list_skipped.clone()))
            .expect("unique");
        let list_loaded = prometheus::GaugeVec::new(
            Opts::new(
                "edudns_list_last_load_timestamp_seconds",
                "Unix time of the last successful load of a category's lists.",
            ),
            &["category"],
        )
        .expect("valid");
        registry
            .register(Box::new(list_loaded.clone()))
            .expect("unique");
        let reloads = counter_vec(
            &registry,
            "edudns_reloads_total",
            "Configuration reloads, by result.",
            &["result"],
        );
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        let admin_refused = counter_vec(
            &registry,
            "edudns_admin_refused_total",
            "Management API requests refused, by reason (missing_token, bad_token, forbidden, locked_out, cross_origin).",
            &["reason"],
        );
        for reason in [
            "missing_token",
            "bad_token",
            "forbidden",
            "locked_out",
            "cross_origin",
        ] {
            admin_refused.with_label_values(&[reason]);
        }
        let admin_changes = counter_vec(
            &registry,
            "edudns_admin_changes_total",
            "Policy changes through the management API, by result (applied, invalid, conflict).",
            &["result"],
        );
        for result in ["applied", "invalid", "conflict"] {
            admin_changes.with_label_values(&[result]);
        }
        let list_downloads = counter_vec(
            &registry,
            "edudns_list_downloads_total",
            "Subscribed list downloads, by source and result (updated, not_modified, rejected).",
            &["source", "result"],
        );
        let list_download_success = prometheus::GaugeVec::new(
            Opts::new(
                "edudns_list_download_last_success_timestamp_seconds",
                "Unix time of the last accepted download of a subscribed list.",
            ),
            &["source"],
        )
        .expect("valid");
        registry
            .register(Box::new(list_download_success.clone()))
            .expect("unique");
        let source_gauge = |name: &str, help: &str| {
            let gauge =
                prometheus::GaugeVec::new(Opts::new(name, help), &["source"]).expect("valid");
            registry.register(Box::new(gauge.clone())).expect("unique");
            gauge
        };
        let source_entries = source_gauge(
            "edudns_list_source_entries",
            "Entries of a subscribed list in force (its last accepted copy).",
        );
        let source_protected_ignored = source_gauge(
            "edudns_list_protected_ignored",
            "Lines of a subscribed list ignored because they would block a protected name.",
        );
        let subscriptions_pending = int_gauge(
            &registry,
            "edudns_list_subscriptions_pending",
            "Subscribed lists with no downloaded copy yet (the curated floor filters meanwhile).",
        );
        let downloads_running = int_gauge(
            &registry,
            "edudns_list_downloads_running",
            "Subscribed list downloads in progress.",
        );
        let central_fetches = counter_vec(
            &registry,
            "edudns_central_policy_fetches_total",
            "Central policy fetches ([central] url), by result (updated, not_modified, invalid, error).",
            &["result"],
        );
        let central_success = prometheus::Gauge::new(
            "edudns_central_policy_last_success_timestamp_seconds",
            "Unix time the node last confirmed it holds the central policy's current version (0 = never since start).",
        )
        .expect("valid");
        registry
            .register(Box::new(central_success.clone()))
            .expect("unique");
        let generation = IntGauge::new(
            "edudns_config_generation",
            "Generation of the configuration in force (1 at start, +1 per successful reload).",
        )
        .expect("valid");
        registry
            .register(Box::new(generation.clone()))
            .expect("unique");
        let build_info = IntGaugeVec::new(
            Opts::new("edudns_build_info", "Build information (always 1)."),
            &["version"],
        )
        .expect("valid");
        registry
            .register(Box::new(build_info.clone()))
            .expect("unique");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let packets = counter_vec(
            &registry,
            "edudns_packets_total",
            "Packets by what the server did with them that is not an answer count (dropped, shed, truncated …).",
            &["event"],
        );
        let in_flight = IntGauge::new(
            "edudns_in_flight",
            "Forwarded queries being answered now (each holds one of server.max_in_flight slots).",
        )
        .expect("valid");
        let in_flight_peak = IntGauge::new(
            "edudns_in_flight_peak",
            "Most forwarded queries answered at once since the start.",
        )
        .expect("valid");
        let upstream_refused = counter_vec(
            &registry,
            "edudns_upstream_refused_total",
            "Lookups answered SERVFAIL (with an Extended DNS Error) without asking the upstream: flood = under a domain whose upstream answers are mostly NXDOMAIN or failures, client_share = the client network's share in flight and waiting, waited = no slot before the deadline.",
            &["reason"],
        );
        let limited_domains = IntGauge::new(
            "edudns_upstream_limited_domains",
            "Parent domains whose upstream lookups are limited now (random-subdomain flood signal).",
        )
        .expect("valid");
        for gauge in [&in_flight, &in_flight_peak, &limited_domains] {
            registry.register(Box::new(gauge.clone())).expect("unique");
        }
        Stats {
            registry,
            queries,
            cache_hits,
            upstream_errors,
            refused_outside,
            answer_duration,
            upstream_duration,
            list_entries,
            list_skipped,
            list_loaded,
            reloads,
            admin_refused,
            admin_changes,
            generation,
            list_downloads,
            list_download_success,
            source_entries,
            source_protected_ignored,
            subscriptions_pending,
            downloads_running,
            central_fetches,
            central_success,
            packets,
            in_flight,
            in_flight_peak,
            upstream_refused,
            limited_domains,
            handles: Mutex::new(HashMap::new()),
            top: Mutex::new(HashMap::new()),
            incidents: Mutex::new(Vec::new()),
        }
    }

    /// Records what a freshly installed snapshot loaded.
    pub fn record_snapshot(&self, snapshot: &crate::snapshot::Snapshot) {
        self.generation.set(snapshot.generation as i64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for (index, category) in snapshot.config.categories.iter().enumerate() {
            let lists = snapshot.lists_loaded.iter().filter(|l| l.category == index);
            let (entries, skipped) = lists.fold((0, 0), |(e, s), l| (e + l.entries, s + l.skipped));
            self.list_entries
                .with_label_values(&[&category.id])
                .set(entries as i64);
            self.list_skipped
                .with_label_values(&[&category.id])
                .set(skipped as i64);
            self.list_loaded.with_label_values(&[&category.id]).set(now);
        }
        let mut pending = 0;
        for (_, spec, download) in snapshot.config.downloads() {
            let loaded = snapshot
                .lists_loaded
                .iter()
                .find(|l| l.subscribed && l.display == spec.display);
            match loaded {
                Some(list) => {
                    self.source_entries
                        .with_label_values(&[&download.name])
                        .set(list.entries as f64);
                    self.source_protected_ignored
                        .with_label_values(&[&download.name])
                        .set(list.protected_ignored as f64);
                }
                None => pending += 1,
            }
        }
        self.subscriptions_pending.set(pending);
    }

    /// The text exposition format, with the protocol counters brought up to date.
    /// `in_flight` is (now, peak) of forwarded queries holding a slot.
    pub fn render(
        &self,
        protocol: &CountersSnapshot,
        in_flight: (u64, u64),
        upstream: &UpstreamFigures,
    ) -> String {
        let upstream_rejected = upstream.rejected;
        for (reason, value) in upstream.refused {
            let counter = self.upstream_refused.with_label_values(&[reason]);
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        self.limited_domains.set(upstream.limited_domains as i64);
        self.in_flight.set(in_flight.0 as i64);
        self.in_flight_peak.set(in_flight.1 as i64);
        self.refused_outside.inc_by(
            protocol
                .refused_outside
                .saturating_sub(self.refused_outside.get()),
        );
        for (event, value) in [
            ("dropped_short", protocol.dropped_short),
            ("dropped_response", protocol.dropped_response),
            ("shed_in_flight", protocol.shed_in_flight),
            ("shed_tcp_connection", protocol.shed_tcp_connections),
            ("malformed", protocol.malformed),
            ("truncated", protocol.truncated),
            ("not_implemented", protocol.not_implemented),
            ("rate_limited", protocol.rate_limited),
            ("fast_path", protocol.fast_path),
            ("dot_query", protocol.dot_queries),
            ("doh_query", protocol.doh_queries),
            ("encrypted_connection", protocol.encrypted_connections),
            (
                "shed_encrypted_connection",
                protocol.shed_encrypted_connections,
            ),
            ("tls_handshake_failed", protocol.tls_handshake_failed),
            ("band_token_refused", protocol.band_token_refused),
            ("doh_bad_request", protocol.doh_bad_request),
            (
                "tls_certificate_reload_failed",
                protocol.tls_certificate_reload_failed,
            ),
            ("upstream_reply_rejected", upstream_rejected),
            ("upstream_encrypted_connection", upstream.encrypted[0]),
            ("upstream_encrypted_question", upstream.encrypted[1]),
            ("upstream_tls_failed", upstream.encrypted[2]),
        ] {
            let counter = self.packets.with_label_values(&[event]);
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        let _ = encoder.encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
