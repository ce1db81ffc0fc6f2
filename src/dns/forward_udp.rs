//! The plain-DNS upstream path: per server, a pool of connected UDP
//! sockets on random ports, each read by one task that hands a reply to the
//! question waiting for it (see forward.rs for the rules a reply must meet).
//!
//! Uses: nothing of edudns. Used by: dns::forward.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, timeout_at};

/// Questions a socket carries before it is replaced by one on a new port.
pub const ROTATE_AFTER: u32 = 256;
/// Largest reply read (over UDP we offer 1232; room for odd servers).
const RECEIVE_BUFFER: usize = 4096;

/// Why one attempt with one server gave nothing usable.
#[derive(Debug)]
pub(super) enum Failure {
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
pub(super) struct PoolSocket {
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

    pub(super) fn retire(&self) {
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
pub(super) struct Shared {
    pub(super) case_randomization: bool,
    /// Replies refused: unknown id, another question, another case.
    pub(super) rejected: Arc<AtomicU64>,
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
pub(super) enum Match {
    Exact,
    CaseOnly,
    No,
}

/// Whether `reply` (id already matched) is an answer to `question` (the
/// question section we sent): one question, opcode QUERY, the same bytes.
/// Without 0x20 we send lower case and accept any case back.
pub(super) fn compare_question(reply: &[u8], question: &[u8], case_sensitive: bool) -> Match {
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

pub(super) struct PlainServer {
    pub(super) addr: SocketAddr,
    pub(super) slots: Vec<Mutex<Option<Arc<PoolSocket>>>>,
}

impl PlainServer {
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

    /// One question over a socket of the pool: `query` is the whole
    /// message (its id is set here), its question section ends at
    /// `question_end`.
    pub(super) async fn udp_exchange(
        &self,
        shared: &Arc<Shared>,
        query: &mut [u8],
        question_end: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let server = self;
        let (mut tx, rx) = oneshot::channel();
        let (socket, id) = loop {
            let socket = server.socket(shared).map_err(|e| {
                Failure::Io(format!("cannot open a socket to {}: {e}", server.addr))
            })?;
            match socket.register(&query[12..question_end], tx) {
                Ok(id) => break (socket, id),
                // A retired socket whose reader just stopped: take another.
                Err(back) => tx = back,
            }
        };
        query[..2].copy_from_slice(&id.to_be_bytes());
        if let Err(error) = socket.socket.send(query).await {
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
