//! UDP and TCP listeners with the defences a public-facing resolver needs.
//!
//! hickory-server's `Server` spawns a task for every UDP packet and accepts
//! TCP connections without limit; edudns owns its sockets instead so that:
//! - queries needing no upstream (blocked, refused, errors) are answered
//!   inline, without a task;
//! - forwarded queries take a slot of a bounded semaphore (`max_in_flight`);
//!   with none free the query is dropped and counted (Unbound does the same);
//! - TCP connections are capped (`tcp_max_connections`) and closed after
//!   `tcp_idle_timeout` without a complete query.

use super::counters::bump;
use super::handler::{Handler, Step, Transport};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Limits applied by the listeners.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// UDP sockets bound to each address with SO_REUSEPORT, one reader each.
    pub udp_workers: usize,
    pub max_in_flight: usize,
    pub tcp_max_connections: usize,
    pub tcp_idle_timeout: Duration,
}

/// Running DNS listeners; dropping it stops them.
pub struct DnsServer {
    tasks: JoinSet<()>,
    /// The addresses actually bound (port 0 resolved), UDP then TCP for each.
    pub local_addrs: Vec<SocketAddr>,
    /// The `max_in_flight` slots, shared with the encrypted listeners.
    pub in_flight: Arc<Semaphore>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address and starts serving.
    pub async fn start(
        handler: Arc<Handler>,
        listen: &[SocketAddr],
        limits: Limits,
    ) -> io::Result<Self> {
        let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
        let connections = Arc::new(Semaphore::new(limits.tcp_max_connections));
        let mut tasks = JoinSet::new();
        let mut local_addrs = Vec::new();
        let workers = limits.udp_workers.max(1);
        for &addr in listen {
            let (sockets, tcp) = bind_all(addr, workers)?;
            let udp_addr = sockets[0].local_addr()?;
            info!(address = %udp_addr, udp_sockets = workers, "listening on {udp_addr} (DNS over UDP and TCP)");
            local_addrs.push(udp_addr);
            for socket in sockets {
                tasks.spawn(serve_udp(
                    Arc::new(socket),
                    handler.clone(),
                    in_flight.clone(),
                ));
            }
            tasks.spawn(serve_tcp(
                tcp,
                handler.clone(),
                in_flight.clone(),
                connections.clone(),
                limits,
            ));
        }
        Ok(DnsServer {
            tasks,
            local_addrs,
            in_flight,
        })
    }

    /// Stops every listener now.
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

fn socket_for(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // Separate v4 and v6 listeners may share a port.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// `workers` UDP sockets (SO_REUSEPORT when more than one) and a TCP
/// listener on one port. For port 0 a free port is found first with a
/// plain socket — the kernel may hand a port already held by another
/// SO_REUSEPORT group of the same user to a reuse-port bind of port 0 — and
/// the binding is retried if another program takes the port meanwhile.
fn bind_all(addr: SocketAddr, workers: usize) -> io::Result<(Vec<UdpSocket>, TcpListener)> {
    let bind_on = |addr: SocketAddr| -> io::Result<(Vec<UdpSocket>, TcpListener)> {
        let mut sockets = Vec::with_capacity(workers);
        for _ in 0..workers {
            sockets.push(bind_udp(addr, workers > 1)?);
        }
        let tcp = bind_tcp(addr)?;
        Ok((sockets, tcp))
    };
    if addr.port() != 0 {
        return bind_on(addr);
    }
    let mut last = None;
    for _ in 0..20 {
        let probe = std::net::UdpSocket::bind(addr)?;
        let port = probe.local_addr()?.port();
        drop(probe);
        match bind_on(SocketAddr::new(addr.ip(), port)) {
            Ok(bound) => return Ok(bound),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("cannot bind {addr}"))))
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = socket_for(addr, Type::DGRAM, Protocol::UDP)?;
    if reuse_port {
        // The kernel spreads clients over the sockets by their address hash.
        socket.set_reuse_port(true)?;
    }
    // Room for bursts while workers are busy; the kernel caps it quietly.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind UDP {addr}: {e}")))?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(addr, Type::STREAM, Protocol::TCP)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind TCP {addr}: {e}")))?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>, in_flight: Arc<Semaphore>) {
    let mut batch = Box::<super::batch::Batch>::default();
    let mut answered = super::fast::Answered::default();
    loop {
        let received = match super::batch::receive(&socket, &mut batch).await {
            Ok(n) => n,
            Err(error) => {
                // ICMP errors from earlier sends surface here on some systems.
                debug!(%error, "UDP receive error");
                continue;
            }
        };
        // One clock read per batch: the time the batch arrived.
        let arrived = (Instant::now(), handler.clock.now());
        if handler.fast_path {
            // Every answer of the batch reads the blocklist table; start
            // all those (mostly cache-missing) reads before the first one.
            let snapshot = handler.snapshot.load();
            let mut probes = [None; super::batch::BATCH];
            for (i, probe) in probes.iter_mut().enumerate().take(received) {
                *probe = super::fast::prefetch(&snapshot, &batch.buffers[i][..batch.lengths[i]]);
            }
            for probe in probes.iter().flatten() {
                snapshot.lists.prefetch_label(*probe);
            }
        }
        for i in 0..received {
            let Some(src) = batch.sources[i] else {
                continue;
            };
            let packet = &batch.buffers[i][..batch.lengths[i]];
            let slot = batch.replies.len();
            if handler.fast_path {
                let out = &mut batch.out[slot];
                match super::fast::answer_at(&handler, packet, src, out, arrived, &mut answered) {
                    super::fast::Fast::Reply(n) => {
                        batch.replies.push((src, n));
                        continue;
                    }
                    super::fast::Fast::Drop => continue,
                    super::fast::Fast::Fallback => {}
                }
            }
            match handler.decide(packet, src, Transport::Udp) {
                Step::Reply(Some(reply)) => {
                    let n = reply.len().min(batch.out[slot].len());
                    batch.out[slot][..n].copy_from_slice(&reply[..n]);
                    batch.replies.push((src, n));
                }
                Step::Reply(None) => {}
                Step::Forward(job) => {
                    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                        bump(&handler.counters.shed_in_flight);
                        continue;
                    };
                    let socket = socket.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let slot = handler.in_flight.enter();
                        if let Some(reply) = handler.finish(job).await {
                            send_udp(&socket, &reply, src).await;
                        }
                        drop(slot);
                        drop(permit);
                    });
                }
            }
        }
        super::batch::send(&socket, &mut batch).await;
        // Fast-path answers took from the batch's arrival to its sending.
        answered.observe(&handler, arrived.0.elapsed());
    }
}

async fn send_udp(socket: &UdpSocket, reply: &[u8], dst: SocketAddr) {
    if let Err(error) = socket.send_to(reply, dst).await {
        debug!(%dst, %error, "UDP send error");
    }
}

async fn serve_tcp(
    listener: TcpListener,
    handler: Arc<Handler>,
    in_flight: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    limits: Limits,
) {
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "TCP accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            bump(&handler.counters.shed_tcp_connections);
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            if let Err(error) =
                serve_connection(stream, src, &handler, &in_flight, limits.tcp_idle_timeout).await
            {
                debug!(%src, %error, "TCP connection ended");
            }
            drop(permit);
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    src: SocketAddr,
    handler: &Handler,
    in_flight: &Semaphore,
    idle_timeout: Duration,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    loop {
        // The whole message (length and body) must arrive within the idle timeout.
        let read = async {
            let len = stream.read_u16().await?;
            buffer.resize(usize::from(len), 0);
            stream.read_exact(&mut buffer).await?;
            io::Result::Ok(())
        };
        match tokio::time::timeout(idle_timeout, read).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_) => return Ok(()),
        }
        let reply = match handler.decide(&buffer, src, Transport::Tcp) {
            Step::Reply(reply) => reply,
            Step::Forward(job) => {
                let Ok(_permit) = in_flight.try_acquire() else {
                    bump(&handler.counters.shed_in_flight);
                    continue;
                };
                let _slot = handler.in_flight.enter();
                handler.finish(job).await
            }
        };
        if let Some(reply) = reply {
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
            framed.extend_from_slice(&reply);
            stream.write_all(&framed).await?;
        }
    }
}
