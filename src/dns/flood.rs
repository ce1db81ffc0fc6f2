//! Which upstream lookups may start now: flood detection per parent domain
//! and a fair share per client network (docs/reliability.md, "Bursts and
//! floods").
//!
//! A random-subdomain ("water torture") flood is recognised the way the
//! resolvers that defend against it recognise it: by what the upstream
//! says. Under a parent domain whose recent upstream answers are mostly
//! NXDOMAIN or failures, only a few lookups run at once (probes, so the
//! limit lifts by itself) and the rest get a quick SERVFAIL with an
//! Extended DNS Error; names the upstream answered recently are still
//! looked up. A parent with good recent answers has no limit at all, and
//! one with no history yet lets [`PROBATION_IN_FLIGHT`] lookups run at once
//! while the rest *wait* for a slot instead of failing: a room of laptops
//! waking under `microsoft.com` is served in a few upstream round trips.
//!
//! Independently, one client network (an IPv4 /24, an IPv6 /56) has at
//! most `upstream.max_lookups_per_client` lookups upstream at once and as
//! many waiting; beyond that its questions get SERVFAIL, so one device
//! cannot take the upstream from the others.

use dashmap::DashMap;
use hickory_proto::rr::Name;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{info, warn};

/// The length of one counting window; the signal is read over the current
/// and the previous window (10–20 s of answers).
pub const WINDOW: Duration = Duration::from_secs(10);
/// Fewer bad upstream answers than this in the windows never limit a
/// parent. Counted in bad answers, not in all answers, so a good answer can
/// never be what tips a parent into the limit: after a flood, a few bad
/// answers left in the window and a burst of good ones stay unlimited.
pub const MIN_SAMPLES: u32 = 20;
/// A parent whose answers in the windows are at least this share NXDOMAIN
/// or failures (timeouts, SERVFAIL, REFUSED) is limited.
pub const BAD_PERCENT: u32 = 80;
/// Good (NOERROR) answers in the windows after which a parent is trusted:
/// no limit on its lookups.
pub const TRUSTED_AFTER: u32 = 4;
/// Lookups at once under a parent with no good answer yet; more wait.
pub const PROBATION_IN_FLIGHT: u32 = 64;
/// Lookups at once under a limited parent (probes); more are refused.
pub const PROBES_IN_FLIGHT: u32 = 4;
/// How long a name answered NOERROR is still looked up under a limited parent.
pub const GOOD_NAME_MEMORY: Duration = Duration::from_secs(600);
/// Names remembered as answered NOERROR.
const GOOD_NAMES: usize = 65_536;
/// A limited parent is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Admissions between sweeps of idle parents and clients.
const SWEEP_EVERY: u64 = 4096;

/// What the upstream said, as the flood signal counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR, with records or without (NODATA).
    Good,
    NxDomain,
    /// Timeout, SERVFAIL, REFUSED, an unusable answer.
    Failed,
}

/// Why a lookup did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The parent looks like a flood target.
    Flood {
        parent: String,
        bad: u32,
        total: u32,
    },
    /// The client's network has its share in flight and waiting.
    ClientShare { share: usize },
    /// No slot came free before the lookup's deadline.
    Waited { parent: String },
}

impl Refusal {
    /// The metric label (bounded).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Flood { .. } => "flood",
            Refusal::ClientShare { .. } => "client_share",
            Refusal::Waited { .. } => "waited",
        }
    }

    /// The Extended DNS Error text (RFC 8914 info-code 0, "Other").
    pub fn text(&self) -> String {
        match self {
            Refusal::Flood { parent, bad, total } => format!(
                "edudns: lookups under {parent} limited: {bad} of {total} recent upstream answers were NXDOMAIN or failures (random-subdomain flood)"
            ),
            Refusal::ClientShare { share } => format!(
                "edudns: this network already has {share} lookups upstream and {share} waiting"
            ),
            Refusal::Waited { parent } => {
                format!("edudns: no upstream slot under {parent} before the deadline")
            }
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    good: u32,
    bad: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Probation,
    Trusted,
    Limited,
}

struct Parent {
    label: Box<str>,
    in_flight: u32,
    buckets: [Bucket; 2],
    limited: bool,
    last_log: Option<Instant>,
}

impl Parent {
    /// Good and bad answers in the current and the previous window.
    fn counts(&self, epoch: u64) -> (u32, u32) {
        self.buckets
            .iter()
            .filter(|b| b.epoch + 1 >= epoch)
            .fold((0, 0), |(g, b), bucket| (g + bucket.good, b + bucket.bad))
    }

    fn state(&self, epoch: u64) -> State {
        let (good, bad) = self.counts(epoch);
        let total = good + bad;
        if bad >= MIN_SAMPLES && bad * 100 >= BAD_PERCENT * total {
            State::Limited
        } else if good >= TRUSTED_AFTER {
            State::Trusted
        } else {
            State::Probation
        }
    }

    fn record(&mut self, epoch: u64, outcome: Outcome) {
        let bucket = &mut self.buckets[(epoch % 2) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        match outcome {
            Outcome::Good => bucket.good += 1,
            Outcome::NxDomain | Outcome::Failed => bucket.bad += 1,
        }
    }

    /// Logs a change of state: a limit begins (then at most once a minute
    /// while it lasts) or lifts.
    fn note(&mut self, state: State, epoch: u64) {
        let limited = state == State::Limited;
        if limited && !self.limited {
            let (good, bad) = self.counts(epoch);
            warn!(
                parent = %self.label,
                bad,
                total = good + bad,
                "lookups under this domain limited: its upstream answers are mostly NXDOMAIN or failures (random-subdomain flood?); cached and recently answered names are still served"
            );
            self.last_log = Some(Instant::now());
        } else if !limited && self.limited {
            info!(parent = %self.label, "limit on lookups under this domain lifted");
        }
        self.limited = limited;
    }
}

#[derive(Default)]
struct ClientLoad {
    in_flight: usize,
    waiting: usize,
}

/// The flood and fairness state of one upstream.
pub struct FloodGuard {
    started: Instant,
    parents: DashMap<u64, Parent>,
    clients: DashMap<u128, ClientLoad>,
    good_names: quick_cache::sync::Cache<u64, Instant>,
    /// Woken whenever a slot frees or a parent's answers change its state.
    changed: Notify,
    client_share: usize,
    hasher: std::collections::hash_map::RandomState,
    admissions: AtomicU64,
    /// Refusals by reason; handed on to the guard of a rebuilt upstream.
    refused: Arc<[AtomicU64; 3]>,
}

/// An admitted lookup: holds its slots until dropped; [`Admission::finish`]
/// counts what the upstream said.
pub struct Admission {
    guard: Arc<FloodGuard>,
    parent: u64,
    name: u64,
    client: Option<u128>,
}

impl Admission {
    pub fn finish(self, outcome: Outcome) {
        let epoch = self.guard.epoch();
        if let Some(mut parent) = self.guard.parents.get_mut(&self.parent) {
            parent.record(epoch, outcome);
            let state = parent.state(epoch);
            parent.note(state, epoch);
        }
        if outcome == Outcome::Good {
            self.guard.good_names.insert(self.name, Instant::now());
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(mut parent) = self.guard.parents.get_mut(&self.parent) {
            parent.in_flight = parent.in_flight.saturating_sub(1);
        }
        if let Some(client) = self.client
            && let Some(mut load) = self.guard.clients.get_mut(&client)
        {
            load.in_flight = load.in_flight.saturating_sub(1);
        }
        self.guard.changed.notify_waiters();
    }
}

/// A lookup waiting for its slots: counted in its client network's
/// `waiting` until dropped.
struct Waiting<'a> {
    guard: &'a FloodGuard,
    client: Option<u128>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client
            && let Some(mut load) = self.guard.clients.get_mut(&client)
        {
            load.waiting = load.waiting.saturating_sub(1);
        }
    }
}

/// The client network a lookup is counted under: IPv4 /24, IPv6 /56.
fn client_network(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => (1u128 << 127) | u128::from(u32::from(v4) & 0xffff_ff00),
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 72) - 1),
    }
}

/// Second-level labels under which a two-letter country code registers
/// names (`example.com.vn`, `school.edu.vn`, `example.co.uk`).
const SECOND_LEVELS: [&[u8]; 14] = [
    b"com", b"net", b"org", b"edu", b"gov", b"ac", b"co", b"info", b"biz", b"int", b"name", b"pro",
    b"health", b"mil",
];

/// The labels that make the parent domain of `name`: the last two, or the
/// last three under a country code's generic second level (`com.vn`), so a
/// flood under one `.com.vn` site does not limit every other.
fn parent_labels(name: &Name) -> Vec<&[u8]> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let n = labels.len();
    let three = n >= 3
        && labels[n - 1].len() == 2
        && SECOND_LEVELS
            .iter()
            .any(|s| labels[n - 2].eq_ignore_ascii_case(s));
    labels[n.saturating_sub(if three { 3 } else { 2 })..].to_vec()
}

impl FloodGuard {
    pub fn new(client_share: usize, refused: Arc<[AtomicU64; 3]>) -> FloodGuard {
        FloodGuard {
            started: Instant::now(),
            parents: DashMap::new(),
            clients: DashMap::new(),
            good_names: quick_cache::sync::Cache::new(GOOD_NAMES),
            changed: Notify::new(),
            client_share,
            hasher: std::collections::hash_map::RandomState::new(),
            admissions: AtomicU64::new(0),
            refused,
        }
    }

    fn epoch(&self) -> u64 {
        (self.started.elapsed().as_millis() / WINDOW.as_millis()) as u64
    }

    /// Keyed per process, so the buckets cannot be aimed at from outside;
    /// lowercase, so letter case does not make new parents.
    fn hash<'a>(&self, labels: impl Iterator<Item = &'a [u8]>) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for label in labels {
            hasher.write_usize(label.len());
            for b in label {
                hasher.write_u8(b.to_ascii_lowercase());
            }
        }
        hasher.finish()
    }

    /// Waits until a lookup of `name` for `client` may start, or says why
    /// it may not. Never waits past `deadline`.
    pub async fn admit(
        self: &Arc<Self>,
        name: &Name,
        client: Option<IpAddr>,
        deadline: Instant,
    ) -> Result<Admission, Refusal> {
        let labels = parent_labels(name);
        let parent_key = self.hash(labels.iter().copied());
        let name_key = self.hash(name.iter());
        let known_good = self
            .good_names
            .get(&name_key)
            .is_some_and(|at| at.elapsed() < GOOD_NAME_MEMORY);
        let client = client.filter(|_| self.client_share > 0).map(client_network);
        if self.admissions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        // Counted as waiting for the client's share until dropped, also
        // when this future is dropped while it waits.
        let mut waiting: Option<Waiting<'_>> = None;
        let result = loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.try_admit(parent_key, &labels, known_good, client, waiting.is_some()) {
                Ok(true) => {
                    break Ok(Admission {
                        guard: self.clone(),
                        parent: parent_key,
                        name: name_key,
                        client,
                    });
                }
                Ok(false) => {}
                Err(refusal) => break Err(refusal),
            }
            if waiting.is_none() {
                if let Some(client) = client {
                    let mut load = self.clients.entry(client).or_default();
                    if load.waiting >= self.client_share {
                        break Err(Refusal::ClientShare {
                            share: self.client_share,
                        });
                    }
                    load.waiting += 1;
                }
                waiting = Some(Waiting {
                    guard: self,
                    client,
                });
            }
            if tokio::time::timeout_at(deadline.into(), changed)
                .await
                .is_err()
            {
                break Err(Refusal::Waited {
                    parent: label_text(&labels),
                });
            }
        };
        drop(waiting);
        if let Err(refusal) = &result {
            self.refused_counter(refusal)
                .fetch_add(1, Ordering::Relaxed);
            if let Refusal::Flood { .. } = refusal
                && let Some(mut parent) = self.parents.get_mut(&parent_key)
                && parent.last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY)
            {
                parent.last_log = Some(Instant::now());
                warn!(parent = %parent.label, "lookups under this domain still limited (random-subdomain flood?)");
            }
        }
        result
    }

    /// `Ok(true)`: slots taken; `Ok(false)`: wait; `Err`: refused now.
    fn try_admit(
        &self,
        parent_key: u64,
        labels: &[&[u8]],
        known_good: bool,
        client: Option<u128>,
        waiting: bool,
    ) -> Result<bool, Refusal> {
        let epoch = self.epoch();
        let mut parent = self.parents.entry(parent_key).or_insert_with(|| Parent {
            label: label_text(labels).into(),
            in_flight: 0,
            buckets: [Bucket::default(); 2],
            limited: false,
            last_log: None,
        });
        let state = parent.state(epoch);
        parent.note(state, epoch);
        let parent_free = match state {
            State::Trusted => true,
            State::Probation => parent.in_flight < PROBATION_IN_FLIGHT,
            State::Limited => known_good || parent.in_flight < PROBES_IN_FLIGHT,
        };
        if !parent_free && state == State::Limited {
            let (good, bad) = parent.counts(epoch);
            return Err(Refusal::Flood {
                parent: parent.label.to_string(),
                bad,
                total: good + bad,
            });
        }
        if !parent_free {
            return Ok(false);
        }
        if let Some(client) = client {
            let mut load = self.clients.entry(client).or_default();
            if load.in_flight >= self.client_share {
                if !waiting && load.waiting >= self.client_share {
                    return Err(Refusal::ClientShare {
                        share: self.client_share,
                    });
                }
                return Ok(false);
            }
            load.in_flight += 1;
        }
        parent.in_flight += 1;
        Ok(true)
    }

    fn refused_counter(&self, refusal: &Refusal) -> &AtomicU64 {
        &self.refused[match refusal {
            Refusal::Flood { .. } => 0,
            Refusal::ClientShare { .. } => 1,
            Refusal::Waited { .. } => 2,
        }]
    }

    /// The refusal counters, for the guard of a rebuilt upstream.
    pub fn refused_counters(&self) -> &Arc<[AtomicU64; 3]> {
        &self.refused
    }

    /// Lookups refused so far, by [`Refusal::label`].
    pub fn refused(&self) -> [(&'static str, u64); 3] {
        [
            ("flood", self.refused[0].load(Ordering::Relaxed)),
            ("client_share", self.refused[1].load(Ordering::Relaxed)),
            ("waited", self.refused[2].load(Ordering::Relaxed)),
        ]
    }

    /// Parent domains limited right now.
    pub fn limited_parents(&self) -> usize {
        let epoch = self.epoch();
        self.parents
            .iter()
            .filter(|p| p.state(epoch) == State::Limited)
            .count()
    }

    /// Forgets parents and clients with nothing in flight and no recent
    /// answers, so a flood over many parents does not grow the tables.
    fn sweep(&self) {
        let epoch = self.epoch();
        self.parents.retain(|_, p| {
            let (good, bad) = p.counts(epoch);
            p.in_flight > 0 || good + bad > 0
        });
        self.clients
            .retain(|_, load| load.in_flight > 0 || load.waiting > 0);
    }
}

fn label_text(labels: &[&[u8]]) -> String {
    labels
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn the_parent_of_a_name_under_a_country_second_level_keeps_three_labels() {
        let text = |n: &str| label_text(&parent_labels(&name(n)));
        assert_eq!(text("a.b.Example.COM."), "example.com");
        assert_eq!(text("www.nguyendu.edu.vn."), "nguyendu.edu.vn");
        assert_eq!(text("shop.example.com.vn."), "example.com.vn");
        assert_eq!(text("x.bbc.co.uk."), "bbc.co.uk");
        assert_eq!(text("a.b.example.vn."), "example.vn");
        assert_eq!(text("com.vn."), "com.vn");
    }

    #[test]
    fn client_networks_are_a_slash_24_and_a_slash_56() {
        let net = |ip: &str| client_network(ip.parse().unwrap());
        assert_eq!(net("10.1.2.3"), net("10.1.2.250"));
        assert_ne!(net("10.1.2.3"), net("10.1.3.3"));
        assert_eq!(net("2001:db8:0:ff::1"), net("2001:db8:0:aa::2"));
        assert_ne!(net("2001:db8:0:100::1"), net("2001:db8:0:200::1"));
        assert_eq!(net("::ffff:10.1.2.3"), net("10.1.2.9"));
    }

    #[tokio::test]
    async fn nxdomain_answers_limit_a_parent_and_good_ones_trust_it() {
        let guard = Arc::new(FloodGuard::new(0, Arc::default()));
        let deadline = Instant::now() + Duration::from_secs(1);
        for i in 0..MIN_SAMPLES {
            let a = guard
                .admit(&name(&format!("r{i}.flood.example.")), None, deadline)
                .await
                .unwrap();
            a.finish(Outcome::NxDomain);
        }
        // Limited: PROBES_IN_FLIGHT probes start, the next is refused.
        let mut probes = Vec::new();
        for i in 0..PROBES_IN_FLIGHT {
            let probe = guard
                .admit(&name(&format!("p{i}.flood.example.")), None, deadline)
                .await;
            probes.push(probe.unwrap());
        }
        let refused = guard
            .admit(&name("x.flood.example."), None, deadline)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.label(), "flood");
        assert_eq!(guard.limited_parents(), 1);
        drop(probes);

        // Another parent with good answers has no limit.
        let mut held = Vec::new();
        for i in 0..(PROBATION_IN_FLIGHT + 50) {
            let a = guard
                .admit(&name(&format!("h{i}.good.example.")), None, deadline)
                .await
                .unwrap();
            if i < TRUSTED_AFTER {
                a.finish(Outcome::Good);
            } else {
                held.push(a);
            }
        }
        assert_eq!(held.len() as u32, PROBATION_IN_FLIGHT + 50 - TRUSTED_AFTER);
    }

    #[tokio::test]
    async fn good_answers_never_tip_a_parent_into_the_limit() {
        // What a flood leaves behind: bad answers just under the threshold.
        let guard = Arc::new(FloodGuard::new(0, Arc::default()));
        let deadline = Instant::now() + Duration::from_secs(1);
        for i in 0..MIN_SAMPLES - 3 {
            let a = guard
                .admit(&name(&format!("r{i}.flood.example.")), None, deadline)
                .await
                .unwrap();
            a.finish(Outcome::NxDomain);
        }
        // Then a burst of real names answered NOERROR: each one lowers the
        // bad share, so none of them limits the parent.
        for i in 0..PROBATION_IN_FLIGHT {
            let a = guard
                .admit(&name(&format!("n{i}.flood.example.")), None, deadline)
                .await
                .unwrap();
            a.finish(Outcome::Good);
            assert_eq!(guard.limited_parents(), 0, "limited after {} good", i + 1);
        }
    }

    #[tokio::test]
    async fn a_wait_given_up_early_leaves_the_clients_share() {
        let guard = Arc::new(FloodGuard::new(1, Arc::default()));
        let client = Some("192.0.2.7".parse().unwrap());
        let later = Instant::now() + Duration::from_secs(5);
        let held = guard
            .admit(&name("a.one.example."), client, later)
            .await
            .unwrap();
        // Waits (the share is in flight), then is dropped while waiting.
        let given_up = tokio::time::timeout(
            Duration::from_millis(20),
            guard.admit(&name("b.two.example."), client, later),
        )
        .await;
        assert!(given_up.is_err(), "it waited");
        // Had the dropped wait kept its place, this one would be refused
        // at once (share 1 in flight and 1 waiting); it waits instead.
        let soon = Instant::now() + Duration::from_millis(50);
        let third = guard.admit(&name("c.three.example."), client, soon).await;
        match third {
            Err(Refusal::Waited { .. }) => {}
            Err(other) => panic!("refused at once: {other:?}"),
            Ok(_) => panic!("admitted beyond the share"),
        }
        drop(held);
        let fourth = guard.admit(&name("d.four.example."), client, later).await;
        assert!(fourth.is_ok());
    }
}
