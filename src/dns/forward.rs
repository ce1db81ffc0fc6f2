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

use super::reply::{Classified, MAX_CNAME_HOPS, UpstreamAnswer, classify, servable, unix_ms};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, timeout_at};

/// UDP sockets per upstream server.
pub const POOL_SIZE: usize = 64;
/// Questions a socket carries before it is replaced by one on a new port.
pub const ROTATE_AFTER: u32 = 256;
/// How long a server that failed is asked last.
pub const PENALTY: Duration = Duration::from_secs(30);
/// The EDNS payload size we offer (DNS Flag Day 2020).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest reply read (over UDP we offer 1232; room for odd servers).
const RECEIVE_BUFFER: usize = 4096;

/// Why one attempt with one server gave nothing usable.
#[derive(Debug)]
enum Failure {
    /// No reply in time.
    Timeout,
    /// A reply repeating our question in another letter case.
    CaseMismatch,
    /// Socket or connection error (ICMP refused, reset …).
    Io(String),
}

/// What the reader task hands to a waiting question.
enum Reply {
    Bytes(Vec<u8>),
    CaseMismatch,
    /// The socket reported an error (ICMP unreachable).
    Unreachable(Arc<String>),
}

/// A question waiting on a socket: the question section as sent.
struct Waiter {
    question: Box<[u8]>,
    tx: oneshot::Sender<Reply>,
}

/// The questions pending on a socket; `closed` once its reader stopped.
#[derive(Default)]
struct Pending {
    waiters: HashMap<u16, Waiter>,
    closed: bool,
}

/// One connected UDP socket and the questions pending on it.
struct PoolSocket {
    socket: UdpSocket,
    pending: Mutex<Pending>,
    uses: AtomicU32,
    /// Replaced in its slot: the reader stops once nothing is pending.
    retired: AtomicBool,
    wake: Notify,
}

impl PoolSocket {
    /// A socket on a random port connected to `server`, with its reader task.
    fn open(server: SocketAddr, shared: &Arc<Shared>) -> io::Result<Arc<Self>> {
        let any: SocketAddr = if server.is_ipv6() {
            "[::]:0".parse().expect("address")
        } else {
            "0.0.0.0:0".parse().expect("address")
        };
        let socket = std::net::UdpSocket::bind(any)?;
        socket.connect(server)?;
        socket.set_nonblocking(true)?;
        let pool_socket = Arc::new(PoolSocket {
            socket: UdpSocket::from_std(socket)?,
            pending: Mutex::new(Pending::default()),
            uses: AtomicU32::new(0),
            retired: AtomicBool::new(false),
            wake: Notify::new(),
        });
        tokio::spawn(read_replies(pool_socket.clone(), shared.clone()));
        Ok(pool_socket)
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a question under a random id not pending on this socket;
    /// gives the sender back when the socket was retired and its reader
    /// has stopped.
    fn register(
        &self,
        question: &[u8],
        tx: oneshot::Sender<Reply>,
    ) -> Result<u16, oneshot::Sender<Reply>> {
        let mut pending = self.pending();
        if pending.closed {
            return Err(tx);
        }
        let mut id = rand::random::<u16>();
        while pending.waiters.contains_key(&id) {
            id = rand::random::<u16>();
        }
        pending.waiters.insert(
            id,
            Waiter {
                question: question.into(),
                tx,
            },
        );
        Ok(id)
    }

    fn unregister(&self, id: u16) {
        let mut pending = self.pending();
        pending.waiters.remove(&id);
        if pending.waiters.is_empty() && self.retired.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Whether the reader may stop: retired and nothing pending. Decided
    /// under the lock [`PoolSocket::register`] takes, so no question is
    /// registered on a socket nobody reads.
    fn close_if_done(&self) -> bool {
        let mut pending = self.pending();
        if self.retired.load(Ordering::Relaxed) && pending.waiters.is_empty() {
            pending.closed = true;
        }
        pending.closed
    }
}

/// State the reader tasks share with the forwarder.
struct Shared {
    case_randomization: bool,
    /// Replies refused: unknown id, another question, another case.
    rejected: Arc<AtomicU64>,
}

/// Reads replies on one socket until it is retired and drained.
async fn read_replies(socket: Arc<PoolSocket>, shared: Arc<Shared>) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    loop {
        if socket.close_if_done() {
            return;
        }
        let received = tokio::select! {
            received = socket.socket.recv(&mut buffer) => received,
            () = socket.wake.notified() => continue,
        };
        let len = match received {
            Ok(len) => len,
            Err(error) => {
                // An ICMP error for this server (port, host or network
                // unreachable), reported once per ICMP message: nobody will
                // answer the questions pending here, so they move on now.
                let error = Arc::new(error.to_string());
                for (_, waiter) in socket.pending().waiters.drain() {
                    let _ = waiter.tx.send(Reply::Unreachable(error.clone()));
                }
                continue;
            }
        };
        let reply = &buffer[..len];
        if len < 12 || reply[2] & 0x80 == 0 {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let id = u16::from_be_bytes([reply[0], reply[1]]);
        let mut pending = socket.pending();
        let verdict = pending
            .waiters
            .get(&id)
            .map(|waiter| compare_question(reply, &waiter.question, shared.case_randomization));
        let answer = match verdict {
            Some(Match::Exact) => Reply::Bytes(reply.to_vec()),
            Some(Match::CaseOnly) => {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                Reply::CaseMismatch
            }
            Some(Match::No) | None => {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if let Some(waiter) = pending.waiters.remove(&id) {
            let _ = waiter.tx.send(answer);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Match {
    Exact,
    CaseOnly,
    No,
}

/// Whether `reply` (id already matched) is an answer to `question` (the
/// question section we sent): one question, opcode QUERY, the same bytes.
/// Without 0x20 we send lower case and accept any case back.
fn compare_question(reply: &[u8], question: &[u8], case_sensitive: bool) -> Match {
    let opcode = (reply[2] >> 3) & 0x0f;
    if opcode != 0 || reply[4..6] != [0, 1] {
        return Match::No;
    }
    let Some(echoed) = reply.get(12..12 + question.len()) else {
        return Match::No;
    };
    if echoed == question {
        Match::Exact
    } else if echoed.eq_ignore_ascii_case(question) {
        if case_sensitive {
            Match::CaseOnly
        } else {
            Match::Exact
        }
    } else {
        Match::No
    }
}

/// One upstream server and its socket pool.
struct Server {
    addr: SocketAddr,
    slots: Vec<Mutex<Option<Arc<PoolSocket>>>>,
    /// Unix ms until which this server is asked after the others.
    penalised_until: AtomicU64,
}

impl Server {
    /// A socket of the pool, picked at random; opened (or replaced after
    /// [`ROTATE_AFTER`] uses) on the way.
    fn socket(&self, shared: &Arc<Shared>) -> io::Result<Arc<PoolSocket>> {
        let index = rand::random::<u32>() as usize % self.slots.len();
        let mut slot = self.slots[index].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(socket) = slot.as_ref()
            && socket.uses.fetch_add(1, Ordering::Relaxed) < ROTATE_AFTER
        {
            return Ok(socket.clone());
        }
        let fresh = PoolSocket::open(self.addr, shared)?;
        fresh.uses.store(1, Ordering::Relaxed);
        if let Some(old) = slot.replace(fresh.clone()) {
            old.retire();
        }
        Ok(fresh)
    }
}

/// Sends questions to the upstream servers and matches their replies.
pub struct Forwarder {
    servers: Vec<Server>,
    timeout: Duration,
    tcp_only: bool,
    shared: Arc<Shared>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for server in &self.servers {
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
    /// `rejected` counts replies refused as forgeries; a forwarder rebuilt
    /// on reload is handed its predecessor's, so the count never goes back.
    pub fn new(
        servers: &[SocketAddr],
        timeout: Duration,
        tcp_only: bool,
        case_randomization: bool,
        rejected: Arc<AtomicU64>,
    ) -> Forwarder {
        Forwarder {
            servers: servers
                .iter()
                .map(|&addr| Server {
                    addr,
                    slots: (0..POOL_SIZE).map(|_| Mutex::new(None)).collect(),
                    penalised_until: AtomicU64::new(0),
                })
                .collect(),
            timeout,
            tcp_only,
            shared: Arc::new(Shared {
                case_randomization,
                rejected,
            }),
        }
    }

    /// The count of replies refused (unknown id, another question or case).
    pub fn rejected_counter(&self) -> &Arc<AtomicU64> {
        &self.shared.rejected
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
            // TCP when configured, and for a truncated or wrong-case UDP reply.
            let udp = if self.tcp_only {
                None
            } else {
                Some(
                    self.udp_exchange(server, &mut query, attempt_deadline)
                        .await,
                )
            };
            let result = match udp {
                Some(Ok(bytes)) if bytes[2] & 0x02 == 0 => Ok(bytes),
                Some(Err(failure)) if !matches!(failure, Failure::CaseMismatch) => Err(failure),
                _ => tcp_exchange(server.addr, &mut query, attempt_deadline).await,
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

    async fn udp_exchange(
        &self,
        server: &Server,
        query: &mut Query,
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let (mut tx, rx) = oneshot::channel();
        let (socket, id) = loop {
            let socket = server.socket(&self.shared).map_err(|e| {
                Failure::Io(format!("cannot open a socket to {}: {e}", server.addr))
            })?;
            match socket.register(query.question(), tx) {
                Ok(id) => break (socket, id),
                // A retired socket whose reader just stopped: take another.
                Err(back) => tx = back,
            }
        };
        query.bytes[..2].copy_from_slice(&id.to_be_bytes());
        if let Err(error) = socket.socket.send(&query.bytes).await {
            socket.unregister(id);
            return Err(Failure::Io(format!(
                "cannot send to {}: {error}",
                server.addr
            )));
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(Reply::Bytes(bytes))) => Ok(bytes),
            Ok(Ok(Reply::CaseMismatch)) => Err(Failure::CaseMismatch),
            Ok(Ok(Reply::Unreachable(error))) => {
                Err(Failure::Io(format!("{} unreachable: {error}", server.addr)))
            }
            Ok(Err(_)) | Err(_) => {
                socket.unregister(id);
                Err(Failure::Timeout)
            }
        }
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
