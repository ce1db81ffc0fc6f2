//! What the DoT and DoH listeners share: the handler, the in-flight
//! slots, the connection gate, the band tokens and the limits.

use super::gate::Gate;
use super::identity::Identities;
use crate::dns::Handler;
use crate::dns::counters::bump;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// What every encrypted connection shares.
pub struct Shared {
    pub handler: Arc<Handler>,
    /// The UDP and TCP listeners' `max_in_flight` slots, shared.
    pub in_flight: Arc<Semaphore>,
    pub gate: Arc<Gate>,
    pub identities: Identities,
    pub limits: crate::config::EncryptedLimits,
}

/// Accepts connections: over a limit of the gate closed at once, else the
/// TLS handshake within `handshake_timeout`, then `serve` in its own task.
pub async fn accept_tls<F, Fut>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    what: &'static str,
    serve: F,
) where
    F: Fn(TlsStream<TcpStream>, SocketAddr, Arc<Shared>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "{what} accept error");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(mut pass) = shared.gate.admit(src.ip()) else {
            bump(&shared.handler.counters.shed_encrypted_connections);
            drop(stream);
            continue;
        };
        let (acceptor, shared, serve) = (acceptor.clone(), shared.clone(), serve.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let accepted =
                tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(stream))
                    .await;
            pass.handshake_done();
            let Ok(Ok(tls)) = accepted else {
                debug!(%src, "{what} handshake failed or timed out");
                bump(&shared.handler.counters.tls_handshake_failed);
                return;
            };
            bump(&shared.handler.counters.encrypted_connections);
            serve(tls, src, shared).await;
            drop(pass);
        });
    }
}
