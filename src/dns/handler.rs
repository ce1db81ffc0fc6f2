//! The request pipeline, as straight-line code:
//!
//! ```text
//! bytes → sanity (short / QR=1: no answer) → parse (FORMERR)
//!       → snapshot = shared.load_full()        one version per query
//!       → client   = snapshot.classify(src)     school + band, or outside → REFUSED
//!       → verdict  = snapshot.evaluate(client, name)
//!       → Block: answer::blocked   Allow: ANY → RFC 8482, else upstream.resolve
//!       → encode (UDP size limit, TC)
//! ```

use super::answer::{self, BlockedAnswer};
use super::counters::{Counters, bump};
use super::upstream::{Upstream, UpstreamAnswer};
use crate::config::OutsideClients;
use crate::policy::{Rule, Verdict};
use crate::snapshot::{SharedSnapshot, Snapshot};
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use std::net::SocketAddr;
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
    Forward(ForwardJob),
}

/// A parsed, allowed query waiting for the upstream.
pub struct ForwardJob {
    request: Message,
    limit: usize,
}

enum Response {
    Ready(Message),
    Forward,
}

/// Everything the pipeline needs, shared by all listeners.
pub struct Handler {
    pub snapshot: SharedSnapshot,
    pub upstream: ArcSwap<Upstream>,
    pub counters: Counters,
}

impl Handler {
    pub fn new(snapshot: SharedSnapshot, upstream: Upstream) -> Self {
        Handler {
            snapshot,
            upstream: ArcSwap::from_pointee(upstream),
            counters: Counters::default(),
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
    /// the blocked/refused/error answers. Only allowed names go on to
    /// [`Handler::finish`], so listeners spawn a task (and take an in-flight
    /// slot) for those alone.
    pub fn decide(&self, packet: &[u8], src: SocketAddr, transport: Transport) -> Step {
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
        match self.respond(&request, src) {
            Some(Response::Ready(response)) => Step::Reply(self.encode(&response, limit)),
            Some(Response::Forward) => Step::Forward(ForwardJob { request, limit }),
            None => Step::Reply(None),
        }
    }

    /// Forwards an allowed question and encodes the answer.
    pub async fn finish(&self, job: ForwardJob) -> Option<Vec<u8>> {
        let query = job.request.queries.first()?;
        let response = self.forward(&job.request, query).await;
        self.encode(&response, job.limit)
    }

    fn encode(&self, response: &Message, limit: usize) -> Option<Vec<u8>> {
        let bytes = answer::encode(response, limit)?;
        if bytes[2] & 0x02 != 0 {
            bump(&self.counters.truncated);
        }
        bump(&self.counters.answered);
        Some(bytes)
    }

    fn respond(&self, request: &Message, src: SocketAddr) -> Option<Response> {
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
        let [query] = request.queries.as_slice() else {
            bump(&self.counters.malformed);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::FormErr,
            )));
        };
        let snapshot = self.snapshot.load();
        let Some(client) = snapshot.classify(src.ip()) else {
            bump(&self.counters.refused_outside);
            return match snapshot.config.server.outside_clients {
                OutsideClients::Refuse => Some(Response::Ready(answer::response_to(
                    request,
                    ResponseCode::Refused,
                ))),
                OutsideClients::Drop => None,
            };
        };
        if query.query_class != DNSClass::IN {
            bump(&self.counters.not_implemented);
            return Some(Response::Ready(answer::response_to(
                request,
                ResponseCode::Refused,
            )));
        }
        let name = query.name.to_ascii().to_ascii_lowercase();
        match snapshot.evaluate(client, &name) {
            Verdict::Block { category, rule } => {
                bump(&self.counters.blocked);
                Some(Response::Ready(blocked_answer(
                    &snapshot, request, query, category, &rule,
                )))
            }
            Verdict::Allow { .. } => {
                bump(&self.counters.allowed);
                if query.query_type == RecordType::ANY {
                    return Some(Response::Ready(answer::any_minimal(request, query)));
                }
                Some(Response::Forward)
            }
        }
    }

    async fn forward(&self, request: &Message, query: &hickory_proto::op::Query) -> Message {
        let upstream = self.upstream.load_full();
        let outcome = upstream.resolve(&query.name, query.query_type).await;
        match outcome.as_ref() {
            UpstreamAnswer::Records {
                answers,
                authorities,
            } => {
                let mut response = answer::response_to(request, ResponseCode::NoError);
                response.add_answers(answers.iter().cloned().map(|mut r| {
                    // Answer with the name as asked (case preserved for 0x20 clients).
                    if r.name.eq_case(&query.name) || r.name == query.name {
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
                debug!(name = %query.name, %reason, "upstream failed");
                bump(&self.counters.upstream_errors);
                answer::response_to(request, ResponseCode::ServFail)
            }
        }
    }
}

fn blocked_answer(
    snapshot: &Snapshot,
    request: &Message,
    query: &hickory_proto::op::Query,
    category: Option<usize>,
    rule: &Rule,
) -> Message {
    let config = &snapshot.config;
    let (soa_domain, reason) = match rule {
        Rule::DohCanary => (None, "edudns: DoH canary".to_string()),
        Rule::List { domain, .. } => {
            let id = category.map_or("list", |c| config.categories[c].id.as_str());
            (Some(domain.as_str()), format!("edudns: category {id}"))
        }
        Rule::Config { domain, .. } => (Some(domain.as_str()), "edudns: deny list".to_string()),
    };
    let how = BlockedAnswer {
        blocking: &config.blocking,
        nxdomain: matches!(rule, Rule::DohCanary),
        soa_owner: soa_domain.and_then(|d| Name::from_ascii(format!("{d}.")).ok()),
        serial: snapshot.generation as u32,
        reason,
    };
    answer::blocked(request, query, &how)
}
