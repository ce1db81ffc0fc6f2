//! DNS over TLS (RFC 7858): TLS on port 853, then DNS messages with a
//! two-byte length prefix, as over TCP (RFC 7766). Questions on one
//! connection are answered concurrently (up to
//! `max_streams_per_connection` at once) and may be answered out of order,
//! as RFC 7858 §3.3 asks of servers: one slow upstream lookup does not hold
//! back the cached and blocked answers behind it.

use super::identity::Identity;
use super::shared::Shared;
use crate::dns::Transport;
use crate::dns::counters::bump;
use crate::dns::handler::Step;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tracing::debug;

pub(super) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) {
    super::shared::accept_tls(
        listener,
        tls,
        shared,
        "DoT",
        |tls, src, shared| async move {
            let identity = shared
                .identities
                .from_server_name(tls.get_ref().1.server_name());
            if identity == Identity::Refused {
                bump(&shared.handler.counters.band_token_refused);
            }
            if let Err(error) = serve_messages(tls, src, identity, &shared).await {
                debug!(%src, %error, "DoT connection ended");
            }
        },
    )
    .await
}

/// Reads length-prefixed questions until the client closes or is idle
/// for `idle_timeout`; answers go back through one writer as they are ready.
pub(super) async fn serve_messages<S>(
    stream: S,
    src: SocketAddr,
    identity: Identity,
    shared: &Arc<Shared>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (answers, mut outbox) = mpsc::channel::<Vec<u8>>(64);
    let writing = tokio::spawn(async move {
        while let Some(framed) = outbox.recv().await {
            writer.write_all(&framed).await?;
            // Everything ready goes out in one flush.
            while let Ok(more) = outbox.try_recv() {
                writer.write_all(&more).await?;
            }
            writer.flush().await?;
        }
        writer.shutdown().await
    });
    let streams = Arc::new(Semaphore::new(shared.limits.max_streams_per_connection));
    let handler = &shared.handler;
    let named = match &identity {
        Identity::Named(named) => Some(Arc::new(named.clone())),
        _ => None,
    };
    let mut buffer = Vec::new();
    let ended = loop {
        let read = async {
            let len = reader.read_u16().await?;
            buffer.resize(usize::from(len), 0);
            reader.read_exact(&mut buffer).await?;
            io::Result::Ok(())
        };
        match tokio::time::timeout(shared.limits.idle_timeout, read).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => break Ok(()),
            Ok(Err(error)) => break Err(error),
            Err(_) => break Ok(()),
        }
        bump(&handler.counters.dot_queries);
        if identity == Identity::Refused {
            if let Some(reply) = handler.refuse_token(&buffer) {
                let _ = answers.send(frame(&reply)).await;
            }
            continue;
        }
        match handler.decide_as(&buffer, src, Transport::Tcp, named.as_deref()) {
            Step::Reply(Some(reply)) => {
                if answers.send(frame(&reply)).await.is_err() {
                    break Ok(());
                }
            }
            Step::Reply(None) => {}
            Step::Forward(job) => {
                // At the per-connection limit, reading waits for a slot.
                let Ok(stream_slot) = streams.clone().acquire_owned().await else {
                    break Ok(());
                };
                let Ok(global) = shared.in_flight.clone().try_acquire_owned() else {
                    bump(&handler.counters.shed_in_flight);
                    continue;
                };
                let (handler, answers) = (handler.clone(), answers.clone());
                tokio::spawn(async move {
                    let slot = handler.in_flight.enter();
                    if let Some(reply) = handler.finish(job).await {
                        let _ = answers.send(frame(&reply)).await;
                    }
                    drop((slot, global, stream_slot));
                });
            }
        }
    };
    // The writer ends when the last pending answer has been sent.
    drop(answers);
    let written = writing.await.unwrap_or(Ok(()));
    ended.and(written)
}

fn frame(reply: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(reply.len() + 2);
    framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
    framed.extend_from_slice(reply);
    framed
}
