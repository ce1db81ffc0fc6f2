//! The request pipeline, as straight-line code:
//!
//! ```text
//! bytes → sanity (short / QR=1: no answer) → parse (FORMERR)
//!       → snapshot = shared.load()             one version per query
//!       → client   = snapshot.classify(src)     school + band, or outside → REFUSED
//!                    (or the band a token names: encrypted DNS)
//!       → verdict  = snapshot.evaluate(client, name, clock.now())
//!       → Block: answer::blocked   Allow: ANY → RFC 8482, fresh in cache → answer,
//!                                         else (in-flight slot) upstream.resolve
//!       → count (school, band, category, verdict), encode (UDP size limit, TC)
//! ```

use super::answer::{self, BlockedAnswer};
use super::counters::{Counters, bump};
use super::reply::UpstreamAnswer;
use super::upstream::Upstream;
use crate::client::{Client, NamedBand};
use crate::config::OutsideClients;
use crate::counting::{CategorySlot, Outcome};
use crate::policy::clock::Clock;
use crate::policy::{Rule, Verdict};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::stats::Stats;
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tracing::debug;

/// How the query arrived; decides the answer size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The outcome of [`Handler::decide`].
pub enum Step {
    /// Send this (or nothing) back now.
    Reply(Option<Vec<u8>>),
    /// An allowed name: resolve it upstream with [`Handler::finish`].
    Forward(Box<ForwardJob>),
}

/// A parsed, allowed query waiting for the upstream.
pub struct ForwardJob {
    request: Message,
    /// The request as received, when its answer may go to the fast path's
    /// wire cache (UDP, fast path on, no safe-search rewrite).
    raw: Option<Box<[u8]>>,
    limit: usize,
    client: Client,
    /// The asking address: its network's share of upstream lookups applies.
    source: IpAddr,
    snapshot: Arc<Snapshot>,
    /// Safe search: resolve this name instead and answer with a CNAME to it.
    rewrite: Option<Name>,
    received: Instant,
}

impl ForwardJob {
    /// The question being forwarded (one per query: `decide` checks).
    pub(crate) fn question(&self) -> &Query {
        &self.request.queries[0]
    }
}

enum Response {
    Ready(Message),
    Forward {
        client: Client,
        rewrite: Option<Name>,
    },
}

/// Everything the pipeline needs, shared by all listeners.
pub struct Handler {
    pub snapshot: SharedSnapshot,
    pub upstream: ArcSwap<Upstream>,
    pub counters: Counters,
    /// Time source of schedules.
    pub clock: Arc<dyn Clock>,
    /// Metric families (histograms); per-school counters live in the snapshot.
    pub stats: Arc<Stats>,
    /// Per-client rate limit buckets.
    pub limiter: super::ratelimit::RateLimiter,
    /// Forwarded queries holding an in-flight slot (for /metrics).
    pub in_flight: super::counters::InFlight,
    /// Encoded answers of allowed names for the UDP fast path.
    pub wire: super::cache::WireCache,
    /// `edudns_answer_duration_seconds{path="local"}` and `{path="forwarded"}`.
    pub local_duration: prometheus::Histogram,
    pub forwarded_duration: prometheus::Histogram,
    /// Whether UDP listeners try [`super::fast::answer`] first.
    pub fast_path: bool,
}

/// The category label and top-k domain of a blocking rule.
fn block_labels(category: Option<usize>, rule: &Rule) -> (CategorySlot, Option<&str>) {
    match rule {
        Rule::List { domain, .. } => (
            category.map_or(CategorySlot::DenyList, CategorySlot::Category),
            Some(domain),
        ),
        Rule::Config { domain, .. } | Rule::Temporary { domain, .. } => {
            (CategorySlot::DenyList, Some(domain))
        }
        Rule::Takedown { domain, .. } => (CategorySlot::Takedown, Some(domain)),
        Rule::CnameTarget { target, inner } => (block_labels(category, inner).0, Some(target)),
        Rule::DohCanary | Rule::DesignatedResolver | Rule::PrivateRelay => {
            (CategorySlot::Bypass, None)
        }
    }
}

impl Handler {
    pub fn new(
        snapshot: SharedSnapshot,
        upstream: Upstream,
        clock: Arc<dyn Clock>,
        stats: Arc<Stats>,
    ) -> Self {
        let cache_size = upstream.config().cache_size.max(16);
        let fast_path = snapshot.load().config.server.fast_path;
        Handler {
            wire: super::cache::WireCache::new(cache_size),
            local_duration: stats.answer_duration.with_label_values(&["local"]),
            forwarded_duration: stats.answer_duration.with_label_values(&["forwarded"]),
            fast_path,
            snapshot,
            upstream: ArcSwap::from_pointee(upstream),
            counters: Counters::default(),
            clock,
            stats,
            limiter: Default::default(),
            in_flight: Default::default(),
        }
    }

    /// Answers one DNS message; `None` means send nothing back.
    pub async fn handle(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        match self.decide(packet, src, transport) {
            Step::Reply(reply) => reply,
            Step::Forward(job) => self.finish(job).await,
        }
    }

    /// Everything that needs no waiting: sanity checks, parsing, policy, and
    /// the blocked/refused/error answers, and allowed names with a fresh
    /// cached answer. Only allowed names that need the upstream go on to
    /// [`Handler::finish`], so listeners spawn a task (and take an in-flight
    /// slot) for those alone.
    pub fn decide(&self, packet: &[u8], src: SocketAddr, transport: Transport) -> Step {
        self.decide_as(packet, src, transport, None)
    }

    /// [`Handler::decide`] for a client that named its school and band
    /// with a band token (encrypted DNS): served from any address.
    pub fn decide_as(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        named: Option<&NamedBand>,
    ) -> Step {
        let received = Instant::now();
        if packet.len() < 12 {
            bump(&self.counters.dropped_short);
            return Step::Reply(None);
        }
        if packet[2] & 0x80 != 0 {
            bump(&self.counters.dropped_response);
            return Step::Reply(None);
        }
        let request = match Message::from_vec(packet) {
            Ok(request) => request,
            Err(error) => {
                debug!(%src, %error, "malformed query");
                bump(&self.counters.malformed);
                bump(&self.counters.answered);
                return Step::Reply(Some(answer::format_error(packet)));
            }
        };
        let limit = match transport {
            Transport::Udp => answer::udp_limit(&request),
            Transport::Tcp => usize::from(u16::MAX),
        };
        match self.respond(&request, src, named) {
            Some(Response::Ready(response)) => {
                let reply = self.encode(&response, limit);
                self.local_duration
                    .observe(received.elapsed().as_secs_f64());
                Step::Reply(reply)
            }
            Some(Response::Forward { client, rewrite }) => {
                let job = Box::new(ForwardJob {
                    raw: (self.fast_path && transport == Transport::Udp && rewrite.is_none())
                        .then(|| packet.into()),
                    request,
                    limit,
                    client,
                    source: src.ip(),
                    snapshot: self.snapshot.load_full(),
                    rewrite,
                    received,
                });
                match self.answer_from_cache(&job) {
                    Some(reply) => Step::Reply(reply),
                    None => Step::Forward(job),
                }
            }
            None => Step::Reply(None),
        }
    }

    /// REFUSED with an Extended DNS Error 18 (Prohibited) saying the band
    /// token is not valid: what a client that sent a wrong, revoked or
    /// expired token gets for every question (never its address's policy).
    pub fn refuse_token(&self, packet: &[u8]) -> Option<Vec<u8>> {
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            bump(&self.counters.dropped_short);
            return None;
        }
        let Ok(request) = Message::from_vec(packet) else {
            bump(&self.counters.malformed);
            bump(&self.counters.answered);
            return Some(answer::format_error(packet));
        };
        let mut response = answer::response_to(&request, ResponseCode::Refused);
        answer::add_extended_error(
            &mut response,
            18,
            "edudns: band token not valid (mã nhóm lớp không hợp lệ)",
        );
        self.encode(&response, usize::from(u16::MAX))
    }

    /// A fresh cached answer needs no upstream: answered here, without an
    /// in-flight slot, so cache hits never wait behind (or get shed
    /// because of) slow upstream lookups.
    fn answer_from_cache(&self, job: &ForwardJob) -> Option<Option<Vec<u8>>> {
        let query = job.question();
        let asked = job.rewrite.as_ref().unwrap_or(&query.name);
        let said = self.upstream.load().fresh(asked, query.query_type)?;
        job.snapshot.counters.cache_hit(job.client);
        let response = self.compose(job, query, &said);
        let reply = self.encode(&response, job.limit);
        self.remember(job, &said, &response, reply.as_deref());
        self.forwarded_duration
            .observe(job.received.elapsed().as_secs_f64());
        Some(reply)
    }

    /// Forwards an allowed question and encodes the answer.
    pub async fn finish(&self, job: Box<ForwardJob>) -> Option<Vec<u8>> {
        let query = job.request.queries.first()?;
        let (response, said) = self.forward(&job, query).await;
        let reply = self.encode(&response, job.limit);
        if let Some(said) = said {
            self.remember(&job, &said, &response, reply.as_deref());
        }
        self.forwarded_duration
            .observe(job.received.elapsed().as_secs_f64());
        reply
    }

    /// Puts an answer in the fast path's wire cache when it may be replayed
    /// to any client: a plain allowed UDP query (no safe-search rewrite), a
    /// fresh answer, no CNAME (its target may be blocked for another band),
    /// no error, not truncated.
    pub(crate) fn remember(
        &self,
        job: &ForwardJob,
        said: &UpstreamAnswer,
        response: &Message,
        reply: Option<&[u8]>,
    ) {
        let (Some(raw), Some(reply)) = (&job.raw, reply) else {
            return;
        };
        let plain = match said {
            UpstreamAnswer::Records { answers, .. } => {
                !answers.iter().any(|r| r.record_type() == RecordType::CNAME)
            }
            UpstreamAnswer::Negative { .. } => true,
            UpstreamAnswer::Failed { .. } => false,
        };
        if plain
            && matches!(
                response.metadata.response_code,
                ResponseCode::NoError | ResponseCode::NXDomain
            )
        {
            super::cache::remember(&self.wire, raw, reply);
        }
    }

    pub(crate) fn encode(&self, response: &Message, limit: usize) -> Option<Vec<u8>> {
        let bytes = answer::encode(response, limit)?;
        if bytes[2] & 0x02 != 0 {
            bump(&self.counters.truncated);
        }
        bump(&self.counters.answered);
        Some(bytes)
    }

    fn respond(
        &self,
        request: &Message,
        src: SocketAddr,
        named: Option<&NamedBand>,
    ) -> Option<Response> {
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        if request.metadata.op_code != OpCode::Query {
            bump(&self.counters.not_implemented);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::NotImp,
            )));
        }
        // EDNS versions other than 0 get BADVERS with our version (RFC 6891).
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            bump(&self.counters.not_implemented);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::BADVERS,
            )));
        }
        let [query] = request.queries.as_slice() else {
            bump(&self.counters.malformed);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::FormErr,
            )));
        };
        let snapshot = self.snapshot.load();
        let client = match named {
            Some(named) => named.resolve(&snapshot.config),
            None => snapshot.classify(src.ip()),
        };
        let Some(client) = client else {
            bump(&self.counters.refused_outside);
            return match snapshot.config.server.outside_clients {
                OutsideClients::Refuse => Some(Response::Ready(answer::response_to(
                    request,
                    ResponseCode::Refused,
                ))),
                OutsideClients::Drop => None,
            };
        };
        let qps = snapshot.config.bands[client.band].max_qps_per_client;
        if qps > 0 && !self.limiter.allow(src.ip(), qps, Instant::now()) {
            bump(&self.counters.rate_limited);
            return None;
        }
        if query.query_class != DNSClass::IN {
            bump(&self.counters.not_implemented);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::Refused,
            )));
        }
        let mut name = query.name.to_ascii();
        name.make_ascii_lowercase();
        match snapshot.evaluate_for_answer(client, &name, self.clock.now()) {
            Verdict::Block { category, rule, .. } => {
                bump(&self.counters.blocked);
                self.count_block(&snapshot, client, category, &rule, src);
                Some(Response::Ready(blocked_answer(
                    &snapshot, request, query, category, &rule,
                )))
            }
            Verdict::Rewrite { target, .. } => {
                bump(&self.counters.allowed);
                let rewrite = Name::from_ascii(format!("{target}.")).ok();
                Some(Response::Forward { client, rewrite })
            }
            Verdict::Allow { .. } => {
                bump(&self.counters.allowed);
                if query.query_type == RecordType::ANY {
                    snapshot
                        .counters
                        .count(client, CategorySlot::None, Outcome::Allowed);
                    return Some(Response::Ready(answer::any_minimal(request, query)));
                }
                Some(Response::Forward {
                    client,
                    rewrite: None,
                })
            }
        }
    }

    pub(super) fn count_block(
        &self,
        snapshot: &Snapshot,
        client: Client,
        category: Option<usize>,
        rule: &Rule,
        src: SocketAddr,
    ) {
        let (slot, domain) = block_labels(category, rule);
        snapshot.counters.count(client, slot, Outcome::Blocked);
        if let Some(domain) = domain {
            snapshot.counters.blocked_domain(client, domain);
            self.stats
                .record_incident(snapshot, client, src.ip(), domain, slot);
        }
    }

    /// The answer, and what the upstream said when it may be replayed by
    /// the fast path (not a stale answer served while the upstream fails).
    async fn forward(
        &self,
        job: &ForwardJob,
        query: &Query,
    ) -> (Message, Option<Arc<UpstreamAnswer>>) {
        let counters = &job.snapshot.counters;
        let upstream = self.upstream.load_full();
        let asked = job.rewrite.as_ref().unwrap_or(&query.name);
        let resolved = upstream
            .resolve_for(asked, query.query_type, Some(job.source))
            .await;
        if resolved.from_cache {
            counters.cache_hit(job.client);
        }
        if let Some(elapsed) = resolved.upstream_time {
            self.stats.upstream_duration.observe(elapsed.as_secs_f64());
        }
        let mut response = self.compose(job, query, resolved.answer.as_ref());
        if let Some(refused) = &resolved.refused {
            answer::add_extended_error(&mut response, answer::EDE_OTHER, &refused.text());
        }
        (response, (!resolved.stale).then_some(resolved.answer))
    }

    /// The answer to an allowed question from what the upstream (or the
    /// cache) said: CNAME cloaking, the name as asked, safe-search CNAME.
    /// No waiting and no network, so the fuzz targets run it directly.
    pub(crate) fn compose(
        &self,
        job: &ForwardJob,
        query: &Query,
        said: &UpstreamAnswer,
    ) -> Message {
        let request = &job.request;
        let counters = &job.snapshot.counters;
        let asked = job.rewrite.as_ref().unwrap_or(&query.name);
        let outcome = if job.rewrite.is_some() {
            Outcome::SafeSearch
        } else {
            Outcome::Allowed
        };
        let mut response = match said {
            UpstreamAnswer::Records {
                answers,
                authorities,
            } => {
                if job.rewrite.is_none()
                    && let Some(blocked) = self.cname_cloaking(job, query, answers)
                {
                    return blocked;
                }
                let mut response = answer::response_to(request, ResponseCode::NoError);
                response.add_answers(answers.iter().cloned().map(|mut r| {
                    // Answer with the name as asked (case preserved for 0x20 clients).
                    if r.name == query.name {
                        r.name = query.name.clone();
                    }
                    r
                }));
                response.add_authorities(authorities.iter().cloned());
                response
            }
            UpstreamAnswer::Negative { code, authorities } => {
                let mut response = answer::response_to(request, *code);
                response.add_authorities(authorities.iter().cloned());
                response
            }
            UpstreamAnswer::Failed { reason } => {
                debug!(name = %asked, %reason, "upstream failed");
                bump(&self.counters.upstream_errors);
                counters.upstream_error(job.client);
                counters.count(job.client, CategorySlot::None, outcome);
                return answer::response_to(request, ResponseCode::ServFail);
            }
        };
        counters.count(job.client, CategorySlot::None, outcome);
        if let Some(target) = &job.rewrite {
            // Safe search: the asked name is an alias of the engine's safe endpoint.
            let cname = Record::from_rdata(
                query.name.clone(),
                SAFE_SEARCH_TTL,
                RData::CNAME(CNAME(target.clone())),
            );
            response.answers.insert(0, cname);
        }
        response
    }

    /// CNAME cloaking: an allowed name whose answer leads through a CNAME to
    /// a name the client's band blocks is blocked, naming the target.
    fn cname_cloaking(
        &self,
        job: &ForwardJob,
        query: &Query,
        answers: &[Record],
    ) -> Option<Message> {
        let now = self.clock.now();
        for record in answers {
            let RData::CNAME(CNAME(target)) = &record.data else {
                continue;
            };
            let mut target_name = target.to_ascii();
            target_name.make_ascii_lowercase();
            if let Verdict::Block { category, rule, .. } =
                job.snapshot
                    .evaluate_for_answer(job.client, &target_name, now)
            {
                bump(&self.counters.blocked);
                let rule = Rule::CnameTarget {
                    target: target_name.trim_end_matches('.').to_string(),
                    inner: Box::new(rule),
                };
                let (slot, domain) = block_labels(category, &rule);
                job.snapshot
                    .counters
                    .count(job.client, slot, Outcome::Blocked);
                if let Some(domain) = domain {
                    job.snapshot.counters.blocked_domain(job.client, domain);
                }
                return Some(blocked_answer(
                    &job.snapshot,
                    &job.request,
                    query,
                    category,
                    &rule,
                ));
            }
        }
        None
    }
}

/// TTL of the synthesized safe-search CNAME.
const SAFE_SEARCH_TTL: u32 = 300;

/// Why and how a blocked name is answered: shared by the general path and
/// the fast path so both say the same.
pub(super) struct BlockReason<'a> {
    /// The listed domain that owns the SOA of a negative answer.
    pub soa_domain: Option<&'a str>,
    /// Text of the Extended DNS Error.
    pub reason: String,
    pub nxdomain: bool,
    pub nodata: bool,
}

pub(super) fn block_reason<'a>(
    snapshot: &'a Snapshot,
    category: Option<usize>,
    rule: &'a Rule,
) -> BlockReason<'a> {
    let config = &snapshot.config;
    let category_id = category.map_or("list", |c| config.categories[c].id.as_str());
    let (soa_domain, reason) = match rule {
        Rule::DohCanary => (None, "edudns: DoH canary".to_string()),
        Rule::DesignatedResolver => (None, "edudns: bypass prevention (DDR)".to_string()),
        Rule::PrivateRelay => (
            None,
            "edudns: bypass prevention (Private Relay)".to_string(),
        ),
        Rule::List { domain, .. } => (
            Some(domain.as_str()),
            format!("edudns: category {category_id}"),
        ),
        Rule::Config { domain, .. } | Rule::Temporary { domain, .. } => {
            (Some(domain.as_str()), "edudns: deny list".to_string())
        }
        Rule::Takedown {
            domain, reference, ..
        } => (
            Some(domain.as_str()),
            format!("edudns: takedown {reference}"),
        ),
        Rule::CnameTarget { target, inner } => {
            let what = match inner.as_ref() {
                Rule::List { .. } => format!("category {category_id}"),
                _ => "deny list".to_string(),
            };
            (None, format!("edudns: {what} via CNAME {target}"))
        }
    };
    BlockReason {
        soa_domain,
        reason,
        nxdomain: matches!(rule, Rule::DohCanary | Rule::PrivateRelay),
        nodata: matches!(rule, Rule::DesignatedResolver),
    }
}

fn blocked_answer(
    snapshot: &Snapshot,
    request: &Message,
    query: &Query,
    category: Option<usize>,
    rule: &Rule,
) -> Message {
    let why = block_reason(snapshot, category, rule);
    let how = BlockedAnswer {
        blocking: &snapshot.config.blocking,
        nxdomain: why.nxdomain,
        nodata: why.nodata,
        soa_owner: why
            .soa_domain
            .and_then(|d| Name::from_ascii(format!("{d}.")).ok()),
        serial: snapshot.generation as u32,
        reason: why.reason,
    };
    answer::blocked(request, query, &how)
}
