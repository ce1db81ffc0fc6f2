//! Forwarding allowed names (through our own [`Forwarder`]), the
//! TTL-honouring answer cache, serve-stale, and coalescing of identical
//! questions in flight.
//!
//! When a thousand students open the same page at 8:00, the first question
//! for `(name, type)` goes upstream and every identical one asked before it
//! returns waits for that one answer instead of sending its own.

use super::flood::{FloodGuard, Outcome, Refusal};
use super::forward::{Forwarder, ForwarderCounters};
use super::reply::{UpstreamAnswer, unix_ms};
use crate::config::{UpstreamConfig, UpstreamProtocol};
use dashmap::DashMap;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) type Key = (Name, RecordType);
type Pending = Shared<BoxFuture<'static, (Arc<UpstreamAnswer>, Option<Refusal>)>>;

/// One cached answer and when it expires.
struct Cached {
    answer: Arc<UpstreamAnswer>,
    stored: Instant,
    ttl: u32,
}

/// The result of [`Upstream::resolve`].
pub struct Resolved {
    pub answer: Arc<UpstreamAnswer>,
    /// Answered from edudns's cache, without the upstream.
    pub from_cache: bool,
    /// Time the upstream took, on a cache miss.
    pub upstream_time: Option<Duration>,
    /// An expired answer served because the upstream failed (RFC 8767).
    pub stale: bool,
    /// The lookup did not start (flood limit, client share): the answer is
    /// a failure, not cached, and the client is told why (EDE).
    pub refused: Option<Refusal>,
}

/// Answers of at most this TTL are cached for negative answers without SOA.
const NEGATIVE_TTL_WITHOUT_SOA: u32 = 30;

/// The upstream resolver, the answer cache and the table of questions in flight.
pub struct Upstream {
    forwarder: Arc<Forwarder>,
    in_flight: DashMap<Key, Pending>,
    /// Bounded, sharded cache (S3-FIFO): knowing what was a hit is what the
    /// per-school cache-hit counters need, which hickory's internal cache
    /// does not tell.
    cache: Option<quick_cache::sync::Cache<Key, Arc<Cached>>>,
    /// Flood detection per parent domain and each client network's share.
    flood: Arc<FloodGuard>,
    config: UpstreamConfig,
    /// Unix time in ms of the last answer an upstream gave (0 = none yet):
    /// what `/readyz` reads before it sends a probe of its own.
    last_answer_ms: Arc<AtomicU64>,
}

/// Removes the in-flight entry even if the leading query is cancelled.
struct InFlightGuard<'a> {
    table: &'a DashMap<Key, Pending>,
    key: Option<Key>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table.remove(&key);
        }
    }
}

impl Upstream {
    pub fn new(config: &UpstreamConfig) -> Result<Self, std::io::Error> {
        Self::with_counters(config, ForwarderCounters::default(), Arc::default())
    }

    /// An upstream built on reload: the counts of refused replies and
    /// lookups go on from `previous`'s (the metrics are counters).
    pub fn succeeding(
        config: &UpstreamConfig,
        previous: &Upstream,
    ) -> Result<Self, std::io::Error> {
        Self::with_counters(
            config,
            previous.forwarder.counters().clone(),
            previous.flood.refused_counters().clone(),
        )
    }

    fn with_counters(
        config: &UpstreamConfig,
        counters: ForwarderCounters,
        refused: Arc<[AtomicU64; 3]>,
    ) -> Result<Self, std::io::Error> {
        // check-config read the file already; a file broken since is an
        // error here too, never a silent start without its roots.
        let extra_roots = match &config.tls_ca_file {
            Some(path) => crate::config::validate::upstream::load_ca_file(path)
                .map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let forwarder = Forwarder::new(
            &config.servers,
            config.timeout,
            config.protocol == UpstreamProtocol::Tcp,
            config.case_randomization,
            extra_roots,
            counters,
        )
        .map_err(std::io::Error::other)?;
        Ok(Upstream {
            forwarder: Arc::new(forwarder),
            in_flight: DashMap::new(),
            cache: (config.cache_size > 0)
                .then(|| quick_cache::sync::Cache::new(config.cache_size)),
            flood: Arc::new(FloodGuard::new(config.max_lookups_per_client, refused)),
            config: config.clone(),
            last_answer_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The settings this upstream was built from (a reload rebuilds it only
    /// when they change, so the cache survives ordinary reloads).
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Resolves `(name, type)` from the cache, or upstream sharing one query
    /// among identical questions in flight. Never hangs: one deadline bounds it.
    ///
    /// Serve-stale (RFC 8767): when a cached answer has expired and the
    /// upstream fails or has not answered within 1.8 s, the expired answer is
    /// served with a 30 s TTL while the refresh goes on in the background.
    /// Failures themselves are remembered for 5 s so a dead upstream is not
    /// asked again for every query.
    pub async fn resolve(self: &Arc<Self>, name: &Name, record_type: RecordType) -> Resolved {
        self.resolve_for(name, record_type, None).await
    }

    /// [`Upstream::resolve`] for a client: its network's share of lookups
    /// in flight applies (`upstream.max_lookups_per_client`).
    pub async fn resolve_for(
        self: &Arc<Self>,
        name: &Name,
        record_type: RecordType,
        client: Option<IpAddr>,
    ) -> Resolved {
        let key = (name.to_lowercase(), record_type);
        let stale = match self.cached(&key) {
            Lookup::Fresh(answer) => {
                return Resolved {
                    answer,
                    from_cache: true,
                    upstream_time: None,
                    stale: false,
                    refused: None,
                };
            }
            Lookup::Stale(answer) => Some(answer),
            Lookup::Miss => None,
        };
        let started = Instant::now();
        let (answer, refused) = match stale {
            None => {
                self.resolve_upstream(key.clone(), record_type, client)
                    .await
            }
            Some(stale) => {
                let this = self.clone();
                let refresh_key = key.clone();
                let mut refresh = tokio::spawn(async move {
                    let (answer, refused) = this
                        .resolve_upstream(refresh_key.clone(), record_type, client)
                        .await;
                    if refused.is_none() {
                        this.store(refresh_key, &answer);
                    }
                    answer
                });
                match tokio::time::timeout(STALE_ANSWER_AFTER, &mut refresh).await {
                    Ok(Ok(answer)) if !matches!(answer.as_ref(), UpstreamAnswer::Failed { .. }) => {
                        (answer, None)
                    }
                    _ => {
                        return Resolved {
                            answer: stale,
                            from_cache: true,
                            upstream_time: None,
                            stale: true,
                            refused: None,
                        };
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        if refused.is_none() {
            self.store(key, &answer);
        }
        Resolved {
            answer,
            from_cache: false,
            upstream_time: refused.is_none().then_some(elapsed),
            stale: false,
            refused,
        }
    }

    /// A fresh cached answer for `(name, type)`, without waiting or asking
    /// upstream: lets the listener answer cache hits without taking an
    /// in-flight slot, so they never queue behind a slow upstream.
    pub fn fresh(&self, name: &Name, record_type: RecordType) -> Option<Arc<UpstreamAnswer>> {
        self.cache.as_ref()?;
        match self.cached(&(name.to_lowercase(), record_type)) {
            Lookup::Fresh(answer) => Some(answer),
            Lookup::Stale(_) | Lookup::Miss => None,
        }
    }

    /// Caches an answer; a failure never replaces a good (even stale) answer.
    pub(crate) fn store(&self, key: Key, answer: &Arc<UpstreamAnswer>) {
        let Some(cache) = &self.cache else { return };
        let Some(ttl) = cacheable_ttl(answer) else {
            return;
        };
        if matches!(answer.as_ref(), UpstreamAnswer::Failed { .. })
            && cache
                .get(&key)
                .is_some_and(|c| !matches!(c.answer.as_ref(), UpstreamAnswer::Failed { .. }))
        {
            return;
        }
        cache.insert(
            key,
            Arc::new(Cached {
                answer: answer.clone(),
                stored: Instant::now(),
                ttl,
            }),
        );
    }

    /// A cached answer: fresh (TTLs counted down), stale (expired less than
    /// a day ago: TTL 30 s), or nothing.
    fn cached(&self, key: &Key) -> Lookup {
        self.cached_at(key, Instant::now())
    }

    /// [`Upstream::cached`] as seen at `now` (the fuzz target moves time).
    pub(crate) fn cached_at(&self, key: &Key, now: Instant) -> Lookup {
        let Some(cache) = self.cache.as_ref() else {
            return Lookup::Miss;
        };
        let Some(entry) = cache.get(key) else {
            return Lookup::Miss;
        };
        let age = now
            .saturating_duration_since(entry.stored)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32;
        let failed = matches!(entry.answer.as_ref(), UpstreamAnswer::Failed { .. });
        if age >= entry.ttl {
            if failed || age >= entry.ttl.saturating_add(STALE_KEEP_SECS) {
                cache.remove(key);
                return Lookup::Miss;
            }
            return Lookup::Stale(Arc::new(with_ttl(&entry.answer, |_| STALE_TTL)));
        }
        if age == 0 {
            return Lookup::Fresh(entry.answer.clone());
        }
        Lookup::Fresh(Arc::new(with_ttl(&entry.answer, |ttl| {
            ttl.saturating_sub(age)
        })))
    }

    /// The upstream's answer, sharing one lookup among identical questions
    /// in flight, including those still waiting for the flood guard to
    /// admit the lookup: a client's retries while its question waits join
    /// it rather than taking more of the client's share.
    async fn resolve_upstream(
        &self,
        key: Key,
        record_type: RecordType,
        client: Option<IpAddr>,
    ) -> (Arc<UpstreamAnswer>, Option<Refusal>) {
        let future = match self.in_flight.entry(key.clone()) {
            dashmap::Entry::Occupied(entry) => {
                let pending = entry.get().clone();
                drop(entry);
                return pending.await;
            }
            dashmap::Entry::Vacant(entry) => {
                let flood = self.flood.clone();
                let forwarder = self.forwarder.clone();
                let name = key.0.clone();
                let last_answer = self.last_answer_ms.clone();
                let deadline = Instant::now() + self.config.timeout;
                let future = async move {
                    let admission = match flood.admit(&name, client, deadline).await {
                        Ok(admission) => admission,
                        Err(refusal) => {
                            let answer = UpstreamAnswer::Failed {
                                reason: refusal.text(),
                            };
                            return (Arc::new(answer), Some(refusal));
                        }
                    };
                    // The forwarder keeps one deadline (`timeout_ms`) across
                    // servers, transports and CNAME hops: a prompt SERVFAIL.
                    let answer = forwarder.lookup(&name, record_type).await;
                    if !matches!(answer, UpstreamAnswer::Failed { .. }) {
                        last_answer.store(unix_ms(), Ordering::Relaxed);
                    }
                    admission.finish(flood_outcome(&answer));
                    (Arc::new(answer), None)
                }
                .boxed()
                .shared();
                entry.insert(future.clone());
                future
            }
        };
        let _guard = InFlightGuard {
            table: &self.in_flight,
            key: Some(key),
        };
        future.await
    }

    /// Lookups the flood guard refused, by reason (for the metrics).
    pub fn refused_lookups(&self) -> [(&'static str, u64); 3] {
        self.flood.refused()
    }

    /// Parent domains whose lookups are limited right now.
    pub fn limited_parents(&self) -> usize {
        self.flood.limited_parents()
    }

    /// Drops a cached answer (the fuzz target keeps its cache empty).
    pub(crate) fn forget(&self, key: &Key) {
        if let Some(cache) = &self.cache {
            cache.remove(key);
        }
    }

    /// How long ago an upstream last answered a forwarded question.
    pub fn last_answer_age(&self) -> Option<Duration> {
        match self.last_answer_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(unix_ms().saturating_sub(ms))),
        }
    }

    /// Asks the upstreams a question no cache can hold (a random name under
    /// the root, never sent again) and reports whether any answer came back
    /// within the configured timeout. Any response code counts: the question
    /// is whether the upstream can be reached, not what it thinks of the name.
    pub async fn probe(&self) -> Result<Duration, String> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| e.to_string())?;
        let label: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = Name::from_ascii(format!("edudns-probe-{label}.")).map_err(|e| e.to_string())?;
        let elapsed = self.forwarder.probe(&name, RecordType::SOA).await?;
        self.last_answer_ms.store(unix_ms(), Ordering::Relaxed);
        Ok(elapsed)
    }

    /// Upstream replies refused as forgeries (unknown id, another question
    /// or letter case) since this upstream was built.
    pub fn rejected_replies(&self) -> u64 {
        self.forwarder.counters().rejected.load(Ordering::Relaxed)
    }

    /// What the encrypted upstreams did: connections opened, questions
    /// sent, TLS failures (certificates that did not verify).
    pub fn encrypted_figures(&self) -> [u64; 3] {
        let counters = &self.forwarder.counters().encrypted;
        [
            counters.connections.load(Ordering::Relaxed),
            counters.questions.load(Ordering::Relaxed),
            counters.tls_failed.load(Ordering::Relaxed),
        ]
    }

    /// Questions being resolved right now (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// What the cache holds for a question.
pub(crate) enum Lookup {
    Fresh(Arc<UpstreamAnswer>),
    Stale(Arc<UpstreamAnswer>),
    Miss,
}

/// RFC 8767 values: the client-response timer, the TTL of stale answers,
/// and how long past expiry an answer may still be served stale.
const STALE_ANSWER_AFTER: Duration = Duration::from_millis(1800);
const STALE_TTL: u32 = 30;
const STALE_KEEP_SECS: u32 = 86_400;
/// How long a failed lookup is remembered.
const FAILURE_TTL: u32 = 5;

/// A copy of `answer` with every record's TTL mapped.
fn with_ttl(answer: &UpstreamAnswer, ttl: impl Fn(u32) -> u32) -> UpstreamAnswer {
    let map = |records: &[Record]| -> Vec<Record> {
        records
            .iter()
            .cloned()
            .map(|mut r| {
                r.ttl = ttl(r.ttl);
                r
            })
            .collect()
    };
    match answer {
        UpstreamAnswer::Records {
            answers,
            authorities,
        } => UpstreamAnswer::Records {
            answers: map(answers),
            authorities: map(authorities),
        },
        UpstreamAnswer::Negative { code, authorities } => UpstreamAnswer::Negative {
            code: *code,
            authorities: map(authorities),
        },
        failed => failed.clone(),
    }
}

/// How long an answer may be cached: the smallest TTL of its records (the
/// SOA minimum for negative answers, RFC 2308); failures for 5 s.
fn cacheable_ttl(answer: &UpstreamAnswer) -> Option<u32> {
    match answer {
        UpstreamAnswer::Records { answers, .. } => {
            answers.iter().map(|r| r.ttl).min().filter(|ttl| *ttl > 0)
        }
        UpstreamAnswer::Negative { authorities, .. } => Some(
            authorities
                .iter()
                .find_map(|r| match &r.data {
                    hickory_proto::rr::RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                    _ => None,
                })
                .unwrap_or(NEGATIVE_TTL_WITHOUT_SOA),
        )
        .filter(|ttl| *ttl > 0),
        UpstreamAnswer::Failed { .. } => Some(FAILURE_TTL),
    }
}

/// What an answer tells the flood signal.
fn flood_outcome(answer: &UpstreamAnswer) -> Outcome {
    match answer {
        UpstreamAnswer::Records { .. } => Outcome::Good,
        UpstreamAnswer::Negative { code, .. } if *code == ResponseCode::NoError => Outcome::Good,
        UpstreamAnswer::Negative { code, .. } if *code == ResponseCode::NXDomain => {
            Outcome::NxDomain
        }
        UpstreamAnswer::Negative { .. } | UpstreamAnswer::Failed { .. } => Outcome::Failed,
    }
}
