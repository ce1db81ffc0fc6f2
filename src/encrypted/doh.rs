//! DNS over HTTPS (RFC 8484): `GET /dns-query?dns=<base64url>` and `POST
//! /dns-query` with an `application/dns-message` body, over HTTP/2 and
//! HTTP/1.1 (hyper). `/dns-query/<band token>` names a school and band,
//! which is how managed Chrome, ChromeOS and Windows templates identify a
//! device's band. Answers carry `Cache-Control: max-age` of their smallest
//! TTL (RFC 8484 §5.1). A wrong token gets 403; a bad request a 4xx that
//! says what was wrong, counted.

use super::identity::Identity;
use super::shared::Shared;
use crate::dns::Transport;
use crate::dns::counters::bump;
use crate::dns::handler::Step;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::debug;

const DNS_MESSAGE: &str = "application/dns-message";

pub(super) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) {
    super::shared::accept_tls(listener, tls, shared, "DoH", serve_connection).await
}

/// One connection: what its requests share.
struct Connection {
    shared: Arc<Shared>,
    src: SocketAddr,
    /// The last token seen and what it named: a device sends the same path
    /// on every request, so the token file is consulted once per connection.
    last_token: Mutex<Option<(String, Identity)>>,
    /// Requests being answered, and when the last one ended (ms since
    /// `opened`): the connection is idle when none runs for `idle_timeout`.
    active: AtomicUsize,
    last_ms: AtomicU64,
    opened: Instant,
}

async fn serve_connection<S>(io: S, src: SocketAddr, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = shared.limits;
    let connection = Arc::new(Connection {
        shared,
        src,
        last_token: Mutex::new(None),
        active: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
        opened: Instant::now(),
    });
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request| {
            let connection = connection.clone();
            async move {
                connection.active.fetch_add(1, Ordering::AcqRel);
                let response = answer(&connection, request).await;
                connection.last_ms.store(
                    connection.opened.elapsed().as_millis() as u64,
                    Ordering::Release,
                );
                connection.active.fetch_sub(1, Ordering::AcqRel);
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_body_bytes.max(8192) + 8192);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection as u32)
        .max_header_list_size(16 * 1024);
    let served = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(served);
    let mut check = tokio::time::interval(limits.idle_timeout.min(Duration::from_secs(5)));
    check.tick().await;
    let mut closing = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    debug!(%src, %error, "DoH connection ended");
                }
                return;
            }
            _ = check.tick(), if !closing => {
                let idle_for = connection.opened.elapsed().as_millis() as u64
                    - connection.last_ms.load(Ordering::Acquire);
                if connection.active.load(Ordering::Acquire) == 0
                    && Duration::from_millis(idle_for) >= limits.idle_timeout
                {
                    // Finishes what runs, accepts no new request, closes.
                    served.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn bad(connection: &Connection, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    bump(&connection.shared.handler.counters.doh_bad_request);
    text(status, message)
}

async fn answer(connection: &Connection, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let shared = &connection.shared;
    let handler = &shared.handler;
    let path = request.uri().path();
    let token = match path.strip_prefix("/dns-query") {
        Some("") | Some("/") => None,
        Some(rest) => match rest.strip_prefix('/') {
            Some(token) if !token.is_empty() && !token.contains('/') => Some(token.to_string()),
            _ => {
                return bad(
                    connection,
                    StatusCode::NOT_FOUND,
                    "Không có ở đây: dùng /dns-query hoặc /dns-query/<mã nhóm lớp> / Not found: use /dns-query or /dns-query/<band token>",
                );
            }
        },
        None => {
            return bad(
                connection,
                StatusCode::NOT_FOUND,
                "Không có ở đây: dùng /dns-query / Not found: use /dns-query",
            );
        }
    };
    let identity = match token {
        None => Identity::Address,
        Some(token) => {
            let mut last = connection
                .last_token
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match last.as_ref() {
                Some((seen, identity)) if crate::admin::tokens::same(seen, &token) => {
                    identity.clone()
                }
                _ => {
                    let identity = shared.identities.from_token(&token);
                    *last = Some((token, identity.clone()));
                    identity
                }
            }
        }
    };
    if identity == Identity::Refused {
        bump(&handler.counters.band_token_refused);
        return text(
            StatusCode::FORBIDDEN,
            "Mã nhóm lớp không hợp lệ / Band token not valid",
        );
    }
    let packet = match *request.method() {
        Method::GET => {
            let Some(encoded) = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("dns=")))
            else {
                return bad(
                    connection,
                    StatusCode::BAD_REQUEST,
                    "Thiếu tham số dns / The dns query parameter is missing (RFC 8484 §4.1)",
                );
            };
            if encoded.len() > shared.limits.max_body_bytes * 4 / 3 + 4 {
                return bad(
                    connection,
                    StatusCode::URI_TOO_LONG,
                    "Câu hỏi quá dài / The DNS message is too long",
                );
            }
            match base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
            {
                Ok(packet) => packet,
                Err(_) => {
                    return bad(
                        connection,
                        StatusCode::BAD_REQUEST,
                        "Tham số dns không phải base64url / The dns parameter is not base64url",
                    );
                }
            }
        }
        Method::POST => {
            let content_type = request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !content_type
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(DNS_MESSAGE))
            {
                return bad(
                    connection,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Cần Content-Type: application/dns-message / Content-Type must be application/dns-message",
                );
            }
            let limited = Limited::new(request.into_body(), shared.limits.max_body_bytes);
            match limited.collect().await {
                Ok(body) => body.to_bytes().to_vec(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return bad(
                        connection,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Thân yêu cầu quá lớn / The body is larger than encrypted_dns.max_body_bytes",
                    );
                }
                Err(_) => {
                    return bad(
                        connection,
                        StatusCode::BAD_REQUEST,
                        "Không đọc được thân yêu cầu / The body could not be read",
                    );
                }
            }
        }
        _ => {
            let mut response = bad(
                connection,
                StatusCode::METHOD_NOT_ALLOWED,
                "Chỉ GET và POST / Only GET and POST",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
            return response;
        }
    };
    bump(&handler.counters.doh_queries);
    let named = match &identity {
        Identity::Named(named) => Some(named),
        _ => None,
    };
    let reply = match handler.decide_as(&packet, connection.src, Transport::Tcp, named) {
        Step::Reply(reply) => reply,
        Step::Forward(job) => {
            let Ok(_global) = shared.in_flight.try_acquire() else {
                bump(&handler.counters.shed_in_flight);
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Máy chủ đang bận / Too many questions being answered",
                );
            };
            let _slot = handler.in_flight.enter();
            handler.finish(job).await
        }
    };
    let Some(reply) = reply else {
        // Dropped by the pipeline: too short, a response, rate-limited.
        return bad(
            connection,
            StatusCode::BAD_REQUEST,
            "Không trả lời được câu hỏi này / This DNS message gets no answer",
        );
    };
    let max_age = min_ttl(&reply).unwrap_or(0);
    let mut response = Response::new(Full::new(Bytes::from(reply)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
    if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}")) {
        headers.insert(CACHE_CONTROL, value);
    }
    response
}

/// The smallest TTL of the answer and authority records of a DNS message,
/// read from the wire (no parse into records).
fn min_ttl(message: &[u8]) -> Option<u32> {
    let count = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]) as usize;
    if message.len() < 12 {
        return None;
    }
    let (questions, records) = (count(4), count(6) + count(8));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut smallest: Option<u32> = None;
    for _ in 0..records {
        at = skip_name(message, at)?;
        let fixed = message.get(at..at + 10)?;
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let length = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        smallest = Some(smallest.map_or(ttl, |s| s.min(ttl)));
        at += 10 + length;
    }
    smallest
}

/// The offset after the name at `at` (labels, ending in a zero or a
/// compression pointer).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)? as usize;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + l,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    #[test]
    fn max_age_is_the_smallest_ttl_of_answer_and_authority() {
        let name = Name::from_ascii("www.example.").unwrap();
        let mut message = Message::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
        message.add_query(Query::query(name.clone(), RecordType::A));
        message.add_answer(Record::from_rdata(
            name.clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        message.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 2))));
        let wire = message.to_vec().unwrap();
        assert_eq!(min_ttl(&wire), Some(60));
        assert_eq!(min_ttl(&wire[..20]), None);
        assert_eq!(min_ttl(&[0; 4]), None);
    }
}
