//! Encrypted DNS: DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484)
//! listeners in front of the same pipeline as UDP and TCP: one snapshot,
//! one policy, the same statistics and Extended DNS Errors.
//!
//! Who is asking: on campus the source address decides, as for UDP. A
//! band token names a school and band instead, from any address: the DoT
//! server name `<token>.<token_domain>` or the DoH path
//! `/dns-query/<token>` (`identity.rs`). A token that is not valid is
//! refused; it never falls back to the address. Tokens are compared in
//! constant time and never logged or used as a metric label.
//!
//! Built on rustls (tokio-rustls) for TLS and hyper for HTTP/2 and
//! HTTP/1.1, not on hickory-server's listeners: those give a request
//! handler neither the TLS server name nor the HTTP path, so they cannot
//! carry band tokens, and their DoH speaks HTTP/2 only
//! (docs/architecture.md, "Encrypted DNS").
//!
//! Uses: `dns` (the handler, its in-flight slots and counters), `client`
//! (named bands), `admin::tokens` (band tokens), `config`.
//! Used by: `app` (starts the listeners and reloads the certificate).

pub mod certs;
pub mod doh;
pub mod dot;
pub mod gate;
pub mod identity;
pub mod shared;

use crate::config::EncryptedDnsConfig;
use crate::dns::Handler;
use crate::dns::counters::bump;
use certs::Certificates;
use gate::Gate;
use identity::Identities;
use shared::Shared;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info};

/// Running DoT and DoH listeners; dropping it stops them.
pub struct EncryptedServer {
    tasks: JoinSet<()>,
    pub certificates: Option<Arc<Certificates>>,
    /// Bound addresses (port 0 resolved).
    pub dot_addrs: Vec<SocketAddr>,
    pub doh_addrs: Vec<SocketAddr>,
}

impl EncryptedServer {
    /// Binds every DoT and DoH address of `config`; nothing when none is set.
    pub async fn start(
        handler: Arc<Handler>,
        in_flight: Arc<Semaphore>,
        config: &EncryptedDnsConfig,
    ) -> io::Result<Self> {
        let mut server = EncryptedServer {
            tasks: JoinSet::new(),
            certificates: None,
            dot_addrs: Vec::new(),
            doh_addrs: Vec::new(),
        };
        if config.dot_listen.is_empty() && config.doh_listen.is_empty() {
            return Ok(server);
        }
        let certificates = Arc::new(
            Certificates::load(&config.certificate, &config.private_key)
                .map_err(|e| io::Error::other(format!("encrypted_dns certificate: {e}")))?,
        );
        let limits = config.limits;
        let shared = Arc::new(Shared {
            handler,
            in_flight,
            gate: Arc::new(Gate::new(
                limits.max_connections,
                limits.max_connections_per_client,
                limits.max_handshakes_per_client,
            )),
            identities: Identities::new(config.token_domain.clone(), config.tokens_file.clone()),
            limits,
        });
        let dot_tls = certificates.server_config(&[b"dot"]);
        for addr in &config.dot_listen {
            let listener = bind(*addr, "DoT")?;
            let bound = listener.local_addr()?;
            info!(address = %bound, "listening on {bound} (DNS over TLS)");
            server.dot_addrs.push(bound);
            server
                .tasks
                .spawn(dot::serve(listener, dot_tls.clone(), shared.clone()));
        }
        let doh_tls = certificates.server_config(&[b"h2", b"http/1.1"]);
        for addr in &config.doh_listen {
            let listener = bind(*addr, "DoH")?;
            let bound = listener.local_addr()?;
            info!(address = %bound, "listening on {bound} (DNS over HTTPS: /dns-query, /dns-query/<band token>)");
            server.doh_addrs.push(bound);
            server
                .tasks
                .spawn(doh::serve(listener, doh_tls.clone(), shared.clone()));
        }
        server.certificates = Some(certificates);
        Ok(server)
    }

    /// Stops every listener now.
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for EncryptedServer {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Re-reads the certificate files: new handshakes use the new
/// certificate, open connections keep theirs. Bad files keep the old one,
/// logged with the file's name and counted.
pub fn reload_certificates(certificates: &Certificates, handler: &Handler) -> bool {
    match certificates.reload() {
        Ok(()) => {
            info!("encrypted DNS certificate reloaded");
            true
        }
        Err(e) => {
            bump(&handler.counters.tls_certificate_reload_failed);
            error!(error = %e, "encrypted DNS certificate not reloaded; the one in use stays");
            false
        }
    }
}

/// Reloads the certificate on every SIGHUP (beside the policy reload).
/// `hangups` is made by the caller before the service says it started (a
/// SIGHUP before any handler exists would end the process).
pub async fn reload_on_sighup(
    certificates: Arc<Certificates>,
    handler: Arc<Handler>,
    hangups: io::Result<tokio::signal::unix::Signal>,
) {
    let Ok(mut hangups) = hangups else {
        return;
    };
    while hangups.recv().await.is_some() {
        reload_certificates(&certificates, &handler);
    }
}

fn bind(addr: SocketAddr, what: &str) -> io::Result<tokio::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {what} {addr}: {e}")))?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}
