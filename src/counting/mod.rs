//! Per-school counter handles that each answer is counted into.
//!
//! A [`CounterTable`] is a flat vector of Prometheus counter handles indexed
//! by (school, band, category slot, verdict): counting a query is one index
//! computation and one atomic add. Blocked domains go to a bounded top-k
//! sketch per school ([`TopBlocked`], sharded so no lock is shared by all
//! queries). The table belongs to one snapshot; its handles come from the
//! metric families of the running service through a [`CounterSource`].
//!
//! Uses: `crate::client` (who asked) and `crate::config` (the schools, bands
//! and categories a table is laid out for); nothing above them.
//! Used by: `crate::snapshot` (each `Snapshot` holds its table),
//! `crate::stats` (fills the table, drains the sketches) and `crate::dns`
//! (counts every answer).

pub mod topk;

use crate::client::Client;
use crate::config::Config;
use prometheus::IntCounter;
use std::sync::{Arc, Mutex};
use topk::SpaceSaving;

/// The `verdict` label values, in counter-table order.
pub const VERDICTS: [&str; 3] = ["allowed", "blocked", "safe_search"];

/// What happened to a query, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed = 0,
    Blocked = 1,
    SafeSearch = 2,
}

/// The `category` label of a query: a configured category, or one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategorySlot {
    Category(usize),
    /// Allowed or rewritten: no category.
    None,
    /// Blocked by a deny entry of the config.
    DenyList,
    /// Blocked by a built-in bypass rule (DoH canary, DDR, Private Relay).
    Bypass,
    /// Blocked by the authorities' takedown list.
    Takedown,
}

const EXTRA_SLOTS: [&str; 4] = ["none", "deny_list", "bypass", "takedown"];
const TOP_SHARDS: usize = 8;
/// Domains tracked per shard of a school's sketch.
const TOP_CAPACITY: usize = 128;

/// A school's top-blocked sketch, sharded by domain hash.
#[derive(Debug)]
pub struct TopBlocked {
    shards: Vec<Mutex<SpaceSaving>>,
    /// Seeded per process: blocked names come from clients.
    hasher: foldhash::quality::RandomState,
}

impl Default for TopBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl TopBlocked {
    pub fn new() -> Self {
        TopBlocked {
            shards: (0..TOP_SHARDS)
                .map(|_| Mutex::new(SpaceSaving::new(TOP_CAPACITY)))
                .collect(),
            hasher: Default::default(),
        }
    }

    fn offer(&self, domain: &str) {
        use std::hash::BuildHasher;
        let key = self.hasher.hash_one(domain);
        // The high bits pick the shard; the sketch's map uses them all.
        let shard = (key >> 32) as usize % TOP_SHARDS;
        if let Ok(mut sketch) = self.shards[shard].lock() {
            sketch.offer(key, domain);
        }
    }

    /// Takes every count out (the flusher adds them to the store).
    pub fn drain(&self) -> Vec<(Box<str>, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            if let Ok(mut sketch) = shard.lock() {
                out.extend(sketch.drain());
            }
        }
        out
    }
}

/// Where a [`CounterTable`] gets its handles (the metric families of
/// `stats::Stats`, which also keep every handle for the durable store).
pub trait CounterSource {
    /// The query counter of one (school, band, category, verdict) by ids.
    fn query(
        &mut self,
        school: &str,
        band: &str,
        category: &str,
        verdict: &'static str,
    ) -> IntCounter;
    /// Forwarded queries of (school, band) answered from the cache.
    fn cache_hit(&mut self, school: &str, band: &str) -> IntCounter;
    /// Forwarded queries of (school, band) answered SERVFAIL by the upstream.
    fn upstream_error(&mut self, school: &str, band: &str) -> IntCounter;
    /// The top-blocked sketch of a school.
    fn top_blocked(&mut self, school: &str) -> Arc<TopBlocked>;
}

/// Counter handles for one snapshot's schools, bands and categories.
#[derive(Debug, Default)]
pub struct CounterTable {
    bands: usize,
    slots: usize,
    categories: usize,
    queries: Vec<IntCounter>,
    cache_hits: Vec<IntCounter>,
    upstream_errors: Vec<IntCounter>,
    top: Vec<Arc<TopBlocked>>,
}

impl CounterTable {
    /// A table that counts nothing (explain, check-config, benchmarks without stats).
    pub fn empty() -> Self {
        CounterTable::default()
    }

    /// The table for a configuration (cold path, at load), laid out in the
    /// order [`CounterTable::count`] indexes it.
    pub fn for_config(config: &Config, source: &mut impl CounterSource) -> Self {
        let categories = config.categories.len();
        let slots = categories + EXTRA_SLOTS.len();
        let bands = config.bands.len();
        let mut table = CounterTable {
            bands,
            slots,
            categories,
            ..CounterTable::default()
        };
        for school in &config.schools {
            for band in &config.bands {
                for slot in 0..slots {
                    let category = if slot < categories {
                        config.categories[slot].id.as_str()
                    } else {
                        EXTRA_SLOTS[slot - categories]
                    };
                    for verdict in VERDICTS {
                        let counter = source.query(&school.id, &band.id, category, verdict);
                        table.queries.push(counter);
                    }
                }
                table
                    .cache_hits
                    .push(source.cache_hit(&school.id, &band.id));
                table
                    .upstream_errors
                    .push(source.upstream_error(&school.id, &band.id));
            }
            table.top.push(source.top_blocked(&school.id));
        }
        table
    }

    fn slot_index(&self, slot: CategorySlot) -> usize {
        match slot {
            CategorySlot::Category(c) => c,
            CategorySlot::None => self.categories,
            CategorySlot::DenyList => self.categories + 1,
            CategorySlot::Bypass => self.categories + 2,
            CategorySlot::Takedown => self.categories + 3,
        }
    }

    /// Counts one answered query.
    #[inline]
    pub fn count(&self, client: Client, slot: CategorySlot, outcome: Outcome) {
        let index = ((client.school * self.bands + client.band) * self.slots
            + self.slot_index(slot))
            * VERDICTS.len()
            + outcome as usize;
        if let Some(counter) = self.queries.get(index) {
            counter.inc();
        }
    }

    /// Remembers a blocked domain (the listed domain, not the full name asked).
    #[inline]
    pub fn blocked_domain(&self, client: Client, domain: &str) {
        if let Some(top) = self.top.get(client.school) {
            top.offer(domain);
        }
    }

    pub fn cache_hit(&self, client: Client) {
        if let Some(c) = self
            .cache_hits
            .get(client.school * self.bands + client.band)
        {
            c.inc();
        }
    }

    pub fn upstream_error(&self, client: Client) {
        if let Some(c) = self
            .upstream_errors
            .get(client.school * self.bands + client.band)
        {
            c.inc();
        }
    }
}
