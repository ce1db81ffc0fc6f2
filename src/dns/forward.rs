//! Asking the upstream servers, over our own sockets.
//!
//! hickory-resolver opened a socket per question and took each through
//! several layers of futures (name-server pool, retries, its own cache):
//! with every query a cache miss, edudns gave 0.4× Unbound's answers per
//! CPU-second (docs/performance.md). This forwarder keeps, per upstream
//! server, a pool of UDP sockets on random ports, connected to the server,
//! each read by one task that hands a reply to the question waiting for it.
//!
//! A reply is accepted only when
//! - it comes from the server's address and port (the kernel delivers
//!   nothing else to a connected socket);
//! - it carries the random id we chose, among the questions pending on that
//!   socket;
//! - it repeats our question byte for byte: name with the random letter
//!   case we sent (0x20), type and class.
//!
//! A reply whose question differs only in letter case is a forgery (or a
//! server that does not keep case): the question is asked again over TCP,
//! as hickory did. So is a truncated reply. Sockets are replaced after
//! [`ROTATE_AFTER`] questions, so the source ports keep changing; a socket
//! is picked at random per question among [`POOL_SIZE`].
//!
//! Several servers: the first in order that has not failed in the last
//! [`PENALTY`] is asked first; a timeout, SERVFAIL or REFUSED moves on to
//! the next within the one deadline (`upstream.timeout_ms`), each attempt
//! getting an equal share of what is left. An answer that ends in a CNAME
//! whose target the server did not resolve is followed (up to
//! [`MAX_CNAME_HOPS`]); only records on the chain from the asked name are
//! kept, so an upstream cannot slip in records for other names.

use super::forward_encrypted::{self, EncryptedCounters, EncryptedUpstream};
use super::forward_udp::{Failure, Match, PlainServer, Shared, compare_question};
use super::reply::{Classified, MAX_CNAME_HOPS, UpstreamAnswer, classify, servable, unix_ms};
use crate::config::UpstreamServer;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use rustls::pki_types::CertificateDer;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// UDP sockets per upstream server.
pub const POOL_SIZE: usize = 64;
pub use super::forward_udp::ROTATE_AFTER;
/// How long a server that failed is asked last.
pub const PENALTY: Duration = Duration::from_secs(30);
/// The EDNS payload size we offer (DNS Flag Day 2020).
const EDNS_PAYLOAD: u16 = 1232;

/// One upstream server and how it is asked.
struct Server {
    target: Target,
    /// Unix ms until which this server is asked after the others.
    penalised_until: AtomicU64,
}

enum Target {
    /// Plain DNS: our own pool of UDP sockets (and TCP when needed).
    Plain(PlainServer),
    /// DoT or DoH through hickory-net (forward_encrypted.rs).
    Encrypted(EncryptedUpstream),
}

/// Sends questions to the upstream servers and matches their replies.
pub struct Forwarder {
    servers: Vec<Server>,
    timeout: Duration,
    tcp_only: bool,
    shared: Arc<Shared>,
    counters: ForwarderCounters,
}

/// The counts a forwarder keeps across reloads.
#[derive(Clone, Default)]
pub struct ForwarderCounters {
    /// Replies refused: unknown id, another question, another case.
    pub rejected: Arc<AtomicU64>,
    pub encrypted: Arc<EncryptedCounters>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for server in &self.servers {
            let Target::Plain(server) = &server.target else {
                continue;
            };
            for slot in &server.slots {
                if let Some(socket) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    socket.retire();
                }
            }
        }
    }
}

/// A question in wire form: the header with id 0, the question section
/// (name in random letter case with 0x20), an OPT record.
struct Query {
    bytes: Vec<u8>,
    question_end: usize,
}

impl Query {
    fn new(name: &Name, record_type: RecordType, randomize_case: bool) -> Query {
        let mut bytes = Vec::with_capacity(12 + 255 + 4 + 11);
        // id 0, RD; one question, one additional (OPT).
        bytes.extend_from_slice(&[0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
        let mut random = 0u64;
        let mut bits = 0;
        for label in name.iter() {
            bytes.push(label.len() as u8);
            for &b in label {
                let mut b = b.to_ascii_lowercase();
                if randomize_case && b.is_ascii_lowercase() {
                    if bits == 0 {
                        random = rand::random::<u64>();
                        bits = 64;
                    }
                    if random & 1 == 1 {
                        b = b.to_ascii_uppercase();
                    }
                    random >>= 1;
                    bits -= 1;
                }
                bytes.push(b);
            }
        }
        bytes.push(0);
        bytes.extend_from_slice(&u16::from(record_type).to_be_bytes());
        bytes.extend_from_slice(&[0, 1]);
        let question_end = bytes.len();
        // OPT: root owner, type 41, payload size, extended rcode/version/flags 0.
        bytes.extend_from_slice(&[0, 0, 41]);
        bytes.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        Query {
            bytes,
            question_end,
        }
    }

    fn question(&self) -> &[u8] {
        &self.bytes[12..self.question_end]
    }
}

impl Forwarder {
    /// `counters` count replies refused as forgeries and what the
    /// encrypted upstreams did; a forwarder rebuilt on reload is handed its
    /// predecessor's, so the counts never go back. `extra_roots` are the
    /// certificates of `upstream.tls_ca_file`.
    pub fn new(
        servers: &[UpstreamServer],
        timeout: Duration,
        tcp_only: bool,
        case_randomization: bool,
        extra_roots: Vec<CertificateDer<'static>>,
        counters: ForwarderCounters,
    ) -> Result<Forwarder, String> {
        let tls = if servers.iter().any(UpstreamServer::is_encrypted) {
            Some(Arc::new(forward_encrypted::client_config(extra_roots)?))
        } else {
            None
        };
        let servers = servers
            .iter()
            .map(|server| Server {
                target: match (server, &tls) {
                    (UpstreamServer::Plain(addr), _) => Target::Plain(PlainServer {
                        addr: *addr,
                        slots: (0..POOL_SIZE).map(|_| Mutex::new(None)).collect(),
                    }),
                    (_, Some(tls)) => Target::Encrypted(
                        EncryptedUpstream::new(
                            server,
                            tls.clone(),
                            timeout,
                            counters.encrypted.clone(),
                        )
                        .expect("an encrypted server"),
                    ),
                    (_, None) => unreachable!("TLS settings are made when a server is encrypted"),
                },
                penalised_until: AtomicU64::new(0),
            })
            .collect();
        Ok(Forwarder {
            servers,
            timeout,
            tcp_only,
            shared: Arc::new(Shared {
                case_randomization,
                rejected: counters.rejected.clone(),
            }),
            counters,
        })
    }

    /// The counts this forwarder adds to (handed on to its successor).
    pub fn counters(&self) -> &ForwarderCounters {
        &self.counters
    }

    /// Resolves `(name, type)` through the upstreams, following CNAMEs the
    /// upstream left unresolved.
    pub async fn lookup(&self, name: &Name, record_type: RecordType) -> UpstreamAnswer {
        let deadline = Instant::now() + self.timeout;
        let mut chain: Vec<Record> = Vec::new();
        let mut seen: Vec<Name> = vec![name.clone()];
        let mut current = name.clone();
        for _ in 0..=MAX_CNAME_HOPS {
            let message = match self.exchange(&current, record_type, deadline, false).await {
                Ok(message) => message,
                Err(reason) => return UpstreamAnswer::Failed { reason },
            };
            match classify(&message, &current, record_type, &mut chain) {
                Classified::Answer(answer) => return answer,
                Classified::Chase(end) if !seen.contains(&end) => {
                    seen.push(end.clone());
                    current = end;
                }
                Classified::Chase(_) => {
                    return UpstreamAnswer::Records {
                        answers: servable(&chain),
                        authorities: Vec::new(),
                    };
                }
            }
        }
        UpstreamAnswer::Failed {
            reason: format!("CNAME chain from {name} longer than {MAX_CNAME_HOPS}"),
        }
    }

    /// Asks `(name, type)` and reports how long the first reply took, any
    /// response code counting (the question is whether an upstream can be
    /// reached).
    pub async fn probe(&self, name: &Name, record_type: RecordType) -> Result<Duration, String> {
        let started = Instant::now();
        self.exchange(name, record_type, started + self.timeout, true)
            .await
            .map(|_| started.elapsed())
    }

    /// One question to the servers in order of preference until one gives
    /// a usable reply or the deadline passes. SERVFAIL, REFUSED and other
    /// error codes move on to the next server, unless `any_code`.
    async fn exchange(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
        any_code: bool,
    ) -> Result<Message, String> {
        let mut query = Query::new(name, record_type, self.shared.case_randomization);
        let too_late = || format!("no upstream answer within {} ms", self.timeout.as_millis());
        let now_ms = unix_ms();
        let mut order: Vec<&Server> = self.servers.iter().collect();
        // Stable: servers that failed lately go last, in their order.
        order.sort_by_key(|s| s.penalised_until.load(Ordering::Relaxed) > now_ms);
        let mut last_error = None;
        for (i, server) in order.iter().enumerate() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let share = (deadline - now) / (order.len() - i) as u32;
            let attempt_deadline = now + share;
            let result = match &server.target {
                Target::Plain(plain) => {
                    self.plain_exchange(plain, &mut query, attempt_deadline)
                        .await
                }
                Target::Encrypted(encrypted) => {
                    encrypted_exchange(encrypted, &mut query, attempt_deadline).await
                }
            };
            let error = match result {
                Ok(bytes) => match Message::from_vec(&bytes) {
                    Ok(message) => {
                        let code = message.metadata.response_code;
                        if any_code
                            || matches!(code, ResponseCode::NoError | ResponseCode::NXDomain)
                        {
                            server.penalised_until.store(0, Ordering::Relaxed);
                            return Ok(message);
                        }
                        format!("upstream answered {code}")
                    }
                    Err(error) => format!("unreadable upstream answer: {error}"),
                },
                Err(Failure::Timeout) => too_late(),
                Err(Failure::CaseMismatch) => "upstream answered in another letter case".into(),
                Err(Failure::Io(error)) => error,
            };
            server
                .penalised_until
                .store(unix_ms() + PENALTY.as_millis() as u64, Ordering::Relaxed);
            last_error = Some(error);
        }
        Err(last_error.unwrap_or_else(too_late))
    }

    /// One attempt with a plain server: UDP, then TCP when configured, and
    /// for a truncated or wrong-case UDP reply.
    async fn plain_exchange(
        &self,
        server: &PlainServer,
        query: &mut Query,
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let udp = if self.tcp_only {
            None
        } else {
            let question_end = query.question_end;
            Some(
                server
                    .udp_exchange(&self.shared, &mut query.bytes, question_end, deadline)
                    .await,
            )
        };
        match udp {
            Some(Ok(bytes)) if bytes[2] & 0x02 == 0 => Ok(bytes),
            Some(Err(failure)) if !matches!(failure, Failure::CaseMismatch) => Err(failure),
            _ => tcp_exchange(server.addr, query, deadline).await,
        }
    }
}

/// One question to a DoT or DoH server, on its reused connection. The
/// reply must answer our question (any letter case: the channel is
/// authenticated).
async fn encrypted_exchange(
    server: &EncryptedUpstream,
    query: &mut Query,
    deadline: Instant,
) -> Result<Vec<u8>, Failure> {
    match server.exchange(&query.bytes, deadline).await {
        Ok(reply) if reply.len() >= 12 => match compare_question(&reply, query.question(), false) {
            Match::Exact => Ok(reply),
            _ => Err(Failure::Io(
                "the encrypted upstream answered another question".into(),
            )),
        },
        Ok(_) => Err(Failure::Io(
            "the encrypted upstream's reply is too short".into(),
        )),
        Err(forward_encrypted::Failure::Timeout) => Err(Failure::Timeout),
        Err(forward_encrypted::Failure::Other(reason)) => Err(Failure::Io(reason)),
    }
}

/// One question over a fresh TCP connection (truncated replies, 0x20
/// mismatches, `protocol = "tcp"`).
async fn tcp_exchange(
    server: SocketAddr,
    query: &mut Query,
    deadline: Instant,
) -> Result<Vec<u8>, Failure> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let _ = stream.set_nodelay(true);
        let id = rand::random::<u16>();
        query.bytes[..2].copy_from_slice(&id.to_be_bytes());
        let mut framed = Vec::with_capacity(query.bytes.len() + 2);
        framed.extend_from_slice(&(query.bytes.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query.bytes);
        stream.write_all(&framed).await?;
        loop {
            let len = usize::from(stream.read_u16().await?);
            let mut reply = vec![0u8; len];
            stream.read_exact(&mut reply).await?;
            // Over TCP an off-path forgery is not practical: any case back.
            if len >= 12
                && reply[..2] == id.to_be_bytes()
                && reply[2] & 0x80 != 0
                && compare_question(&reply, query.question(), false) == Match::Exact
            {
                return io::Result::Ok(reply);
            }
        }
    };
    match timeout_at(deadline, exchange).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(Failure::Io(format!("TCP to {server}: {error}"))),
        Err(_) => Err(Failure::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn queries_carry_random_case_and_an_opt_record() {
        let q = Query::new(&name("www.Example.com."), RecordType::AAAA, true);
        let parsed = Message::from_vec(&q.bytes).unwrap();
        assert_eq!(parsed.queries.len(), 1);
        assert_eq!(parsed.queries[0].query_type, RecordType::AAAA);
        assert_eq!(parsed.queries[0].name, name("www.example.com."));
        assert_eq!(parsed.edns.as_ref().unwrap().max_payload(), EDNS_PAYLOAD);
        assert!(parsed.metadata.recursion_desired);
        // 13 letters: the chance that 20 queries all come out lower case is 2^-260.
        let cases: std::collections::HashSet<Vec<u8>> = (0..20)
            .map(|_| {
                Query::new(&name("www.example.com."), RecordType::A, true)
                    .question()
                    .to_vec()
            })
            .collect();
        assert!(cases.len() > 1, "the letter case never changes");
        let plain = Query::new(&name("WWW.example.com."), RecordType::A, false);
        assert_eq!(&plain.question()[..4], b"\x03www");
    }

    #[test]
    fn replies_must_echo_the_question_exactly() {
        let q = Query::new(&name("a.example."), RecordType::A, false);
        let mut reply = q.bytes.clone();
        reply[2] |= 0x80;
        assert_eq!(compare_question(&reply, q.question(), true), Match::Exact);
        let mut upper = reply.clone();
        upper[13] = b'A';
        assert_eq!(
            compare_question(&upper, q.question(), true),
            Match::CaseOnly
        );
        assert_eq!(compare_question(&upper, q.question(), false), Match::Exact);
        let mut other = reply.clone();
        other[13] = b'b';
        assert_eq!(compare_question(&other, q.question(), true), Match::No);
        let mut other_type = reply.clone();
        other_type[q.question_end - 3] = 28;
        assert_eq!(compare_question(&other_type, q.question(), true), Match::No);
        assert_eq!(
            compare_question(&reply[..14], q.question(), true),
            Match::No
        );
    }
}
