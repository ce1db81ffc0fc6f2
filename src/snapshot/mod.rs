//! One immutable version of everything a query needs, swapped whole.
//!
//! A [`Snapshot`] holds the validated config, the network map, the compiled
//! policies and the category trie. It is shared as [`SharedSnapshot`]
//! (`ArcSwap`): each query loads one consistent version, and a reload
//! ([`crate::app::reload`]) builds a new one off the hot path and swaps it in only
//! when everything loaded.
//!
//! Uses: `crate::config`, `crate::client` (the network map),
//! `crate::lists` (the trie, list loading), `crate::policy`,
//! `crate::takedown` and `crate::admin::allowances` (overlays shared by
//! every snapshot) and `crate::counting` (the counter table each snapshot
//! holds). Used by: `crate::dns` (every query), `crate::app` (building and
//! swapping on reload), `crate::stats` (what a snapshot loaded),
//! `crate::web` and `crate::cli` (explain, check-config).

mod build;
pub mod cache;
pub mod explain;

pub use build::{BuildError, ListIssue, LoadedList, build, build_cached, build_reusing};

use crate::client::{Client, NetworkMap};
use crate::config::Config;
use crate::lists::trie::DomainTrie;
use crate::policy::{Policies, Verdict};
use arc_swap::ArcSwap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Everything one query reads, in one consistent version.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub networks: NetworkMap,
    pub policies: Policies,
    /// All category lists in one trie (one bit per category). Shared with
    /// the next snapshot when a policy edit leaves every list as it was.
    pub lists: Arc<DomainTrie>,
    /// Modification time and size of each list file when it was read, in
    /// config order (to tell whether the trie can be reused).
    pub list_stamps: Vec<Option<(SystemTime, u64)>>,
    /// What was loaded, in `Rule::List::list` order.
    pub lists_loaded: Vec<LoadedList>,
    /// 1 for the first snapshot, +1 for each successful reload.
    pub generation: u64,
    /// Per-school counter handles (empty until the running service attaches them).
    pub counters: crate::counting::CounterTable,
    /// The takedown overlay (shared by every snapshot of the service).
    pub takedowns: std::sync::Arc<crate::takedown::Takedowns>,
    /// Temporary allowances (shared by every snapshot of the service).
    pub allowances: std::sync::Arc<crate::admin::allowances::Allowances>,
    pub built_at: SystemTime,
}

/// The running snapshot, readable without locks.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// What was loaded of list `display` of category `category` (an index
    /// into `config.categories`); `None` when it could not be read.
    pub fn loaded_list(&self, category: usize, display: &str) -> Option<&LoadedList> {
        self.lists_loaded
            .iter()
            .find(|l| l.category == category && l.display == display)
    }

    /// The school and band of a source address.
    pub fn classify(&self, ip: IpAddr) -> Option<Client> {
        self.networks.classify(ip)
    }

    /// The verdict for `name` (lowercase, trailing dot optional) asked by
    /// `client` at `now`.
    pub fn evaluate(&self, client: Client, name: &str, now: jiff::Timestamp) -> Verdict {
        self.judge(client, name, now, true)
    }

    /// [`Snapshot::evaluate`] for answering: the same verdict, but a list
    /// rule does not look up which file and line listed the domain
    /// (`Rule::List` has `list = usize::MAX`, `line = 0`): only `explain`,
    /// the warning page and the API show those, and the lookup is a cache
    /// miss per blocked query.
    pub fn evaluate_for_answer(&self, client: Client, name: &str, now: jiff::Timestamp) -> Verdict {
        self.judge(client, name, now, false)
    }

    fn judge(&self, client: Client, name: &str, now: jiff::Timestamp, provenance: bool) -> Verdict {
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(entry) = self.takedowns.find(name) {
            return Verdict::Block {
                category: None,
                rule: crate::policy::Rule::Takedown {
                    domain: entry.domain.clone(),
                    reference: entry.reference.clone(),
                    date: entry.date.clone(),
                },
                schedule: None,
            };
        }
        if let Some(allowance) = self.allowances.find(
            &self.config.schools[client.school].id,
            &self.config.bands[client.band].id,
            name,
            now.as_second(),
        ) {
            let verdict = Verdict::Allow {
                rule: Some(crate::policy::Rule::Temporary {
                    id: allowance.id,
                    domain: allowance.domain.clone(),
                    until: allowance.until,
                    reason: allowance.reason.clone(),
                }),
            };
            return self.policies.with_safe_search(client, name, verdict);
        }
        self.policies
            .evaluate(client, name, &self.lists, now, provenance)
    }
}
