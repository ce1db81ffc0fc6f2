//! Asking an encrypted upstream: DNS over TLS (RFC 7858) and DNS over
//! HTTPS (RFC 8484), through hickory-net's clients.
//!
//! One connection per server, opened on the first question and reused by
//! every question after it: hickory-net multiplexes questions on a DoT
//! connection by id and sends each DoH question as an HTTP/2 stream. A
//! connection that breaks (the server closed it when idle, a reset) is
//! dropped and the question asked once more on a fresh one, within the same
//! deadline, so an idle timeout never costs a student an answer.
//!
//! The certificate is checked against the system's roots (Debian's
//! ca-certificates) and `upstream.tls_ca_file`; the name checked is the
//! part after `#` in the server's entry, else its host. A certificate that
//! does not verify fails the attempt (the forwarder moves on to the next
//! server, as for a timeout), is counted (`upstream_tls_failed`) and
//! logged at most once a minute per server. There is no fallback to clear
//! text: a `tls://` server is only ever asked over TLS.
//!
//! Uses: config (the server entry), hickory-net. Used by: dns::forward.

use crate::config::{EncryptedServer, UpstreamServer};
use futures_util::StreamExt;
use hickory_net::DnsMultiplexer;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::{DnsExchange, DnsHandle, DnsRequestSender};
use hickory_net::{NetError, h2::HttpsClientStream};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, timeout, timeout_at};

/// Questions one DoT connection carries at once (hickory-net's default
/// is 32, fewer than a school's burst; the server's own limit applies too).
const MAX_ACTIVE_PER_CONNECTION: usize = 512;
/// How long a question waits when hickory-net's queue to the connection
/// is full.
const BUSY_PAUSE: Duration = Duration::from_millis(1);
/// How often a failing server is logged.
const LOG_EVERY_MS: u64 = 60_000;

/// Counts over every encrypted upstream, exported as
/// `edudns_packets_total{event=...}`.
#[derive(Debug, Default)]
pub struct EncryptedCounters {
    /// Connections opened (TLS handshake and, for DoH, HTTP/2 set up).
    pub connections: AtomicU64,
    /// Questions sent over DoT or DoH.
    pub questions: AtomicU64,
    /// Handshakes that failed because of TLS: the certificate did not
    /// verify (unknown issuer, wrong name, expired) or TLS itself failed.
    pub tls_failed: AtomicU64,
}

/// Why an attempt with an encrypted server failed.
pub(super) enum Failure {
    Timeout,
    /// With the reason for the answer's EDE and the log.
    Other(String),
}

enum Transport {
    Tls,
    Https,
}

/// One `tls://` or `https://` server and its reused connection.
pub(super) struct EncryptedUpstream {
    transport: Transport,
    server: EncryptedServer,
    /// The entry as written, for logs and errors.
    label: String,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    /// The open connection; the lock is held while one is opened, so a
    /// burst of questions waits for one handshake instead of making many.
    connection: tokio::sync::Mutex<Option<Connection>>,
    counters: Arc<EncryptedCounters>,
    last_logged_ms: AtomicU64,
}

#[derive(Clone)]
struct Connection {
    exchange: DnsExchange<TokioRuntimeProvider>,
    /// Set when the connection's background task ended (the server
    /// closed it, a reset): the next question opens a new one.
    closed: Arc<AtomicBool>,
    /// Tells this connection from its successor when a failure drops it.
    generation: u64,
}

/// The TLS settings every encrypted upstream uses: the platform's roots
/// and the extra ones.
pub(super) fn client_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|e| format!("cannot read the system's root certificates: {e}"))?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

impl EncryptedUpstream {
    pub(super) fn new(
        server: &UpstreamServer,
        tls: Arc<ClientConfig>,
        timeout: Duration,
        counters: Arc<EncryptedCounters>,
    ) -> Option<EncryptedUpstream> {
        let (transport, encrypted) = match server {
            UpstreamServer::Plain(_) => return None,
            UpstreamServer::Tls(s) => (Transport::Tls, s),
            UpstreamServer::Https(s) => (Transport::Https, s),
        };
        Some(EncryptedUpstream {
            transport,
            server: encrypted.clone(),
            label: server.to_string(),
            tls,
            timeout,
            connection: tokio::sync::Mutex::new(None),
            counters,
            last_logged_ms: AtomicU64::new(0),
        })
    }

    /// Sends `query` (a whole DNS message) and returns the reply's bytes.
    pub(super) async fn exchange(
        &self,
        query: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let message = Message::from_vec(query).map_err(|e| Failure::Other(e.to_string()))?;
        // A connection that was already open may have been closed by the
        // server meanwhile: then one more try on a fresh one.
        for attempt in 0..2 {
            let (connection, fresh) = match timeout_at(deadline, self.connection()).await {
                Ok(Ok(found)) => found,
                Ok(Err(failure)) => return Err(failure),
                Err(_) => return Err(Failure::Timeout),
            };
            let mut options = DnsRequestOptions::default();
            options.use_edns = message.edns.is_some();
            let request = DnsRequest::new(message.clone(), options);
            let reply = loop {
                let mut replies = connection.exchange.send(request.clone());
                match timeout_at(deadline, replies.next()).await {
                    // hickory-net queues at most 32 questions on their way to
                    // the connection: a burst waits its turn, it is no failure.
                    Ok(Some(Err(NetError::Busy))) if !connection.is_closed() => {
                        tokio::time::sleep(BUSY_PAUSE).await;
                        if Instant::now() >= deadline {
                            return Err(Failure::Timeout);
                        }
                    }
                    other => break other,
                }
            };
            self.counters.questions.fetch_add(1, Ordering::Relaxed);
            match reply {
                Err(_) => return Err(Failure::Timeout),
                Ok(Some(Ok(response))) => return Ok(response.into_buffer()),
                Ok(Some(Err(NetError::Timeout))) => return Err(Failure::Timeout),
                Ok(Some(Err(error))) => {
                    self.drop_connection(connection.generation).await;
                    if fresh || attempt == 1 {
                        return Err(Failure::Other(format!("{}: {error}", self.label)));
                    }
                }
                Ok(None) => {
                    self.drop_connection(connection.generation).await;
                    if fresh || attempt == 1 {
                        return Err(Failure::Other(format!(
                            "{}: the connection closed without an answer",
                            self.label
                        )));
                    }
                }
            }
        }
        Err(Failure::Other(format!("{}: no answer", self.label)))
    }

    /// The open connection, or a new one; `true` when it is new.
    async fn connection(&self) -> Result<(Connection, bool), Failure> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && !connection.is_closed()
        {
            return Ok((connection.clone(), false));
        }
        let (exchange, closed) = self.connect().await?;
        let generation = self.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = Connection {
            exchange,
            closed,
            generation,
        };
        *slot = Some(connection.clone());
        Ok((connection, true))
    }

    async fn drop_connection(&self, generation: u64) {
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }

    /// Opens a connection: TCP, TLS (and HTTP/2 for DoH), then the
    /// background task that carries its questions, which we spawn so we
    /// know when it ends.
    async fn connect(
        &self,
    ) -> Result<(DnsExchange<TokioRuntimeProvider>, Arc<AtomicBool>), Failure> {
        let addr = self.address().await?;
        let provider = TokioRuntimeProvider::default();
        let closed = Arc::new(AtomicBool::new(false));
        let result = match self.transport {
            Transport::Tls => {
                let name = ServerName::try_from(self.server.tls_name.clone()).map_err(|e| {
                    Failure::Other(format!("{}: bad certificate name: {e}", self.label))
                })?;
                let (stream, handle) =
                    hickory_net::tls::tls_client_connect(addr, name, self.tls.clone(), provider);
                match timeout(self.timeout, stream).await {
                    Err(_) => Err(NetError::Timeout),
                    Ok(Err(error)) => Err(error),
                    Ok(Ok(stream)) => {
                        let multiplexer = DnsMultiplexer::new(stream, handle)
                            .with_timeout(self.timeout)
                            .with_max_active_requests(MAX_ACTIVE_PER_CONNECTION);
                        Ok(spawn_exchange(multiplexer, &closed))
                    }
                }
            }
            Transport::Https => {
                let mut builder = HttpsClientStream::builder(self.tls.clone(), provider);
                builder.request_timeout(self.timeout);
                let stream = builder.build(
                    addr,
                    Arc::from(self.server.tls_name.as_str()),
                    Arc::from(self.server.path.as_str()),
                );
                match timeout(self.timeout, stream).await {
                    Err(_) => Err(NetError::Timeout),
                    Ok(Err(error)) => Err(error),
                    Ok(Ok(stream)) => Ok(spawn_exchange(stream, &closed)),
                }
            }
        };
        let result = result.map(|exchange| (exchange, closed));
        result.map_err(|error| {
            let tls = tls_error(&error);
            if tls.is_some() {
                self.counters.tls_failed.fetch_add(1, Ordering::Relaxed);
            }
            let reason = match tls {
                Some(tls) => format!(
                    "{}: TLS with {addr} failed (certificate checked for {:?}): {tls}",
                    self.label, self.server.tls_name
                ),
                None if matches!(error, NetError::Timeout) => {
                    format!("{}: no TLS connection to {addr} in time", self.label)
                }
                None => format!("{}: cannot connect to {addr}: {error}", self.label),
            };
            self.log(&reason);
            Failure::Other(reason)
        })
    }

    /// The server's address: the host itself, or its name looked up
    /// through the system's resolver.
    async fn address(&self) -> Result<SocketAddr, Failure> {
        if let Ok(ip) = self.server.host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.server.port));
        }
        let found = tokio::net::lookup_host((self.server.host.as_str(), self.server.port))
            .await
            .map_err(|e| e.to_string())
            .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_string()));
        found.map_err(|e| {
            let reason = format!(
                "{}: cannot look up {} through the system's resolver: {e} (write its address, e.g. https://192.0.2.1/dns-query#{})",
                self.label, self.server.host, self.server.host
            );
            self.log(&reason);
            Failure::Other(reason)
        })
    }

    fn log(&self, reason: &str) {
        let now = super::reply::unix_ms();
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_MS
            && self
                .last_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(upstream = %self.label, "{reason}");
        }
    }
}

impl Connection {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// The exchange over `stream`, its background task spawned; `closed` is
/// set when that task ends.
fn spawn_exchange<S: DnsRequestSender>(
    stream: S,
    closed: &Arc<AtomicBool>,
) -> DnsExchange<TokioRuntimeProvider> {
    let (exchange, background) = DnsExchange::<TokioRuntimeProvider>::from_stream(stream);
    let closed = closed.clone();
    tokio::spawn(async move {
        background.await;
        closed.store(true, Ordering::Relaxed);
    });
    exchange
}

/// The TLS error inside a connection failure, if TLS is what failed.
fn tls_error(error: &NetError) -> Option<String> {
    match error {
        NetError::RustlsError(e) => Some(e.to_string()),
        NetError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|e| e.to_string()),
        _ => None,
    }
}
