//! Per-school statistics: lock-free counters on the hot path, Prometheus
//! exposition, durable hourly roll-ups in SQLite, and reports.
//!
//! The hot path touches only a [`CounterTable`] held by the snapshot: a flat
//! vector of counter handles indexed by (school, band, category slot,
//! verdict), each one atomic add. Labels are ids of schools, bands and
//! categories — never a domain or a client address. Blocked domains go to a
//! bounded top-k sketch per school (sharded, so no lock is shared by all
//! queries), which only the durable store ever reads.
//!
//! The table itself lives below this room, in [`crate::counting`]; this room
//! owns the metric families its handles come from ([`Stats`]; their names,
//! help texts and the `/metrics` text format are in `exposition.rs`), hands
//! their values to the durable store ([`flusher`], [`store`]), and makes,
//! signs and merges the reports ([`report`], [`sign`]).
//!
//! Uses: `crate::counting` (the table it fills), `crate::snapshot` (what a
//! snapshot loaded, the incident log setting), `crate::config`,
//! `crate::client` and `crate::dns::counters` (the protocol counters it
//! exposes). Used by: `crate::app` (wiring, reload), `crate::dns` (latency
//! histograms), `crate::web` (/metrics, reports), `crate::cli` (`edudns
//! report`, `keys`), `crate::takedown` (the store).

mod exposition;
pub mod flusher;
pub mod report;
pub mod sign;
pub mod store;

use crate::client::Client;
use crate::config::Config;
use crate::counting::{CategorySlot, CounterSource, CounterTable, TopBlocked};
use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Key of one durable counter: (school, band, category, verdict) ids.
pub type CounterKey = (String, String, String, &'static str);

/// All metric families, registered once for the life of the process.
pub struct Stats {
    registry: Registry,
    queries: IntCounterVec,
    cache_hits: IntCounterVec,
    upstream_errors: IntCounterVec,
    pub refused_outside: IntCounter,
    pub answer_duration: HistogramVec,
    pub upstream_duration: Histogram,
    pub list_entries: IntGaugeVec,
    pub list_skipped: IntGaugeVec,
    pub list_loaded: prometheus::GaugeVec,
    pub reloads: IntCounterVec,
    /// Management API requests refused: reason = missing_token, bad_token,
    /// forbidden, locked_out, cross_origin.
    pub admin_refused: IntCounterVec,
    /// Configuration changes through the management API, by result.
    pub admin_changes: IntCounterVec,
    pub generation: IntGauge,
    /// Subscription downloads by source and result.
    pub list_downloads: IntCounterVec,
    pub list_download_success: prometheus::GaugeVec,
    /// Per subscribed source: entries in force and lines left out because
    /// they would block a protected name.
    pub source_entries: prometheus::GaugeVec,
    pub source_protected_ignored: prometheus::GaugeVec,
    /// Subscriptions with no downloaded copy yet (first start).
    pub subscriptions_pending: IntGauge,
    /// Downloads running now.
    pub downloads_running: IntGauge,
    /// Central policy fetches by result (updated, not_modified, invalid, error).
    pub central_fetches: IntCounterVec,
    /// Unix time the node last knew it held the office's current policy.
    pub central_success: prometheus::Gauge,
    packets: IntCounterVec,
    in_flight: IntGauge,
    in_flight_peak: IntGauge,
    upstream_refused: IntCounterVec,
    limited_domains: IntGauge,
    /// Every query counter handed out, for the durable flusher.
    handles: Mutex<HashMap<CounterKey, IntCounter>>,
    /// Top-k sketches by school id (kept across reloads).
    top: Mutex<HashMap<String, Arc<TopBlocked>>>,
    /// The opt-in incident log, waiting for the flusher (empty when off).
    incidents: Mutex<Vec<Incident>>,
}

/// One blocked query with its client address: only recorded when
/// `privacy.incident_log_days` > 0, and deleted after that many days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub at: i64,
    pub school: String,
    pub band: String,
    pub client: String,
    pub domain: String,
    pub category: String,
}

/// Incidents held in memory between flushes at most (the rest are dropped).
const MAX_PENDING_INCIDENTS: usize = 100_000;

impl Stats {
    /// Builds the counter table for a configuration (cold path, at load).
    pub fn table_for(&self, config: &Config) -> CounterTable {
        let mut source = TableSource {
            stats: self,
            handles: self.handles.lock().unwrap_or_else(|e| e.into_inner()),
            tops: self.top.lock().unwrap_or_else(|e| e.into_inner()),
        };
        CounterTable::for_config(config, &mut source)
    }

    /// Current value of every query counter, for the durable flusher.
    pub fn counter_values(&self) -> Vec<(CounterKey, u64)> {
        let handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.iter().map(|(k, c)| (k.clone(), c.get())).collect()
    }

    /// Drains the top-k sketches: (school id, domain, count).
    pub fn drain_top_blocked(&self) -> Vec<(String, Box<str>, u64)> {
        let tops = self.top.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (school, top) in tops.iter() {
            out.extend(top.drain().into_iter().map(|(d, c)| (school.clone(), d, c)));
        }
        out
    }

    /// Adds a blocked query to the incident log, if the setting asks for one.
    pub fn record_incident(
        &self,
        snapshot: &crate::snapshot::Snapshot,
        client: Client,
        ip: std::net::IpAddr,
        domain: &str,
        slot: CategorySlot,
    ) {
        if snapshot.config.privacy.incident_log_days == 0 {
            return;
        }
        let config = &snapshot.config;
        let category = match slot {
            CategorySlot::Category(c) => config.categories[c].id.clone(),
            CategorySlot::None => "none".into(),
            CategorySlot::DenyList => "deny_list".into(),
            CategorySlot::Bypass => "bypass".into(),
            CategorySlot::Takedown => "takedown".into(),
        };
        let mut pending = self.incidents.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() < MAX_PENDING_INCIDENTS {
            pending.push(Incident {
                at: jiff::Timestamp::now().as_second(),
                school: config.schools[client.school].id.clone(),
                band: config.bands[client.band].id.clone(),
                client: ip.to_string(),
                domain: domain.to_string(),
                category,
            });
        }
    }

    /// Takes the pending incidents (the flusher stores them).
    pub fn drain_incidents(&self) -> Vec<Incident> {
        std::mem::take(&mut *self.incidents.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The handles [`Stats::table_for`] hands out, each also kept for the
/// durable flusher (the two locks are held while one table is built).
struct TableSource<'a> {
    stats: &'a Stats,
    handles: MutexGuard<'a, HashMap<CounterKey, IntCounter>>,
    tops: MutexGuard<'a, HashMap<String, Arc<TopBlocked>>>,
}

impl CounterSource for TableSource<'_> {
    fn query(
        &mut self,
        school: &str,
        band: &str,
        category: &str,
        verdict: &'static str,
    ) -> IntCounter {
        let counter = self
            .stats
            .queries
            .with_label_values(&[school, band, category, verdict]);
        self.handles.insert(
            (
                school.to_string(),
                band.to_string(),
                category.to_string(),
                verdict,
            ),
            counter.clone(),
        );
        counter
    }

    fn cache_hit(&mut self, school: &str, band: &str) -> IntCounter {
        self.stats.cache_hits.with_label_values(&[school, band])
    }

    fn upstream_error(&mut self, school: &str, band: &str) -> IntCounter {
        self.stats
            .upstream_errors
            .with_label_values(&[school, band])
    }

    fn top_blocked(&mut self, school: &str) -> Arc<TopBlocked> {
        self.tops
            .entry(school.to_string())
            .or_insert_with(|| Arc::new(TopBlocked::new()))
            .clone()
    }
}

/// What the upstream counts, for [`Stats::render`].
pub struct UpstreamFigures {
    /// Upstream replies refused as forgeries.
    pub rejected: u64,
    /// Lookups the flood guard refused, by reason (counters that survive
    /// reloads).
    pub refused: [(&'static str, u64); 3],
    /// Parent domains limited now.
    pub limited_domains: usize,
    /// Encrypted upstreams: connections opened, questions sent, TLS
    /// failures.
    pub encrypted: [u64; 3],
}
