//! The sinkhole web server: whatever Host and path a blocked name's browser
//! asks for, the warning page explaining the block — found by re-running the
//! policy for (client address, Host), so it always agrees with `explain` —
//! plus the "blocked by mistake" form. No per-request state flows from DNS.

use super::page::{self, Blocked, Branding};
use crate::admin::reviews::{self, Recorded};
use crate::client::Client;
use crate::dns::Handler;
use crate::lists::name::normalize;
use crate::policy::{Rule, Verdict};
use crate::snapshot::Snapshot;
use crate::stats::flusher::SharedStore;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dashmap::DashMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

/// Review requests one client address may send per window.
const REVIEWS_PER_WINDOW: u32 = 5;
const REVIEW_WINDOW: Duration = Duration::from_secs(600);
/// How long a form token stays valid (minutes).
const TOKEN_MINUTES: i64 = 60;

/// What the sinkhole handlers share.
#[derive(Clone)]
pub struct SinkholeState {
    pub handler: Arc<Handler>,
    pub store: SharedStore,
    secret: Arc<[u8; 32]>,
    limiter: Arc<DashMap<IpAddr, (Instant, u32)>>,
}

impl SinkholeState {
    pub fn new(handler: Arc<Handler>, store: SharedStore) -> Self {
        let mut secret = [0u8; 32];
        let _ = getrandom::fill(&mut secret);
        SinkholeState {
            handler,
            store,
            secret: Arc::new(secret),
            limiter: Arc::new(DashMap::new()),
        }
    }

    /// HMAC-SHA256(secret, host|client|minute), as `minute.hex`.
    fn token(&self, host: &str, client: IpAddr, minute: i64) -> String {
        let mac = hmac(
            &self.secret[..],
            format!("{host}|{client}|{minute}").as_bytes(),
        );
        format!(
            "{minute}.{}",
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    fn token_valid(&self, token: &str, host: &str, client: IpAddr, now_minute: i64) -> bool {
        let Some((minute, _)) = token.split_once('.') else {
            return false;
        };
        let Ok(minute) = minute.parse::<i64>() else {
            return false;
        };
        if !(now_minute - TOKEN_MINUTES..=now_minute).contains(&minute) {
            return false;
        }
        let expected = self.token(host, client, minute);
        // Constant-time comparison.
        expected.len() == token.len()
            && expected
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// True when `client` may send another review request now.
    fn allow_review(&self, client: IpAddr) -> bool {
        let mut entry = self.limiter.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() > REVIEW_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 <= REVIEWS_PER_WINDOW
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
    let inner: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    Sha256::digest(&outer).into()
}

/// The sinkhole routes.
pub fn router(state: SinkholeState) -> Router {
    Router::new()
        .route("/__edudns/page.css", get(css))
        .route("/favicon.ico", get(favicon))
        .route("/__edudns/review", post(review))
        .fallback(page_handler)
        .layer(DefaultBodyLimit::max(4096))
        .with_state(state)
}

/// Binds one sinkhole listener.
pub async fn serve(
    addr: SocketAddr,
    state: SinkholeState,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot bind warning-page listener {addr}: {e}"),
        )
    })?;
    let local = listener.local_addr()?;
    info!(address = %local, "listening on {local} (warning page)");
    let task = tokio::spawn(super::serve_http1(listener, router(state)));
    Ok((local, task))
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

async fn css() -> Response {
    secure(
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            page::CSS,
        )
            .into_response(),
    )
}

async fn favicon() -> Response {
    secure(([(header::CONTENT_TYPE, "image/svg+xml")], page::FAVICON).into_response())
}

/// The Host header as a valid, normalised DNS name (never an IP, never the path).
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => host,
    };
    if host.starts_with('[') || crate::lists::name::is_ip_address(host) {
        return None;
    }
    normalize(host).ok().map(|n| n.into_owned())
}

fn branding(snapshot: &Snapshot) -> Branding<'_> {
    let w = &snapshot.config.warning_page;
    Branding {
        logo_text: w.logo_text.as_deref(),
        contact: w.contact.as_deref(),
        help_lines: &w.help_lines,
    }
}

/// The verdict for (client, host), when it is a block.
struct Explained {
    client: Client,
    category_id: String,
    category_name: String,
    schedule: Option<String>,
    reason: String,
}

fn explain_block(
    handler: &Handler,
    snapshot: &Snapshot,
    client_ip: IpAddr,
    host: &str,
) -> Option<Explained> {
    let client = snapshot.classify(client_ip)?;
    let Verdict::Block {
        category,
        rule,
        schedule,
    } = snapshot.evaluate(client, host, handler.clock.now())
    else {
        return None;
    };
    let config = &snapshot.config;
    let (category_id, category_name) = match (category, &rule) {
        (Some(c), _) => (
            config.categories[c].id.clone(),
            config.categories[c].name.clone(),
        ),
        (None, Rule::Takedown { .. }) => (
            "takedown".into(),
            "Theo yêu cầu của cơ quan chức năng / Ordered by the authorities".into(),
        ),
        (None, Rule::Config { .. }) => (
            "deny_list".into(),
            "Danh sách chặn của trường / School's block list".into(),
        ),
        (None, _) => ("bypass".into(), "Vượt bộ lọc / Filter bypass".into()),
    };
    Some(Explained {
        client,
        category_id,
        category_name,
        schedule: schedule.map(|s| config.bands[client.band].schedules[s].text.clone()),
        reason: crate::snapshot::explain::describe(snapshot, &rule),
    })
}

async fn page_handler(
    State(state): State<SinkholeState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.handler.snapshot.load_full();
    let brand = branding(&snapshot);
    if method != Method::GET && method != Method::HEAD {
        return html(
            StatusCode::METHOD_NOT_ALLOWED,
            page::message_page(
                "Không hỗ trợ",
                "Not supported",
                "Trang này chỉ để xem.",
                "This page can only be viewed.",
                &brand,
            ),
        );
    }
    let host = host_name(&headers);
    let explained = host
        .as_deref()
        .and_then(|h| explain_block(&state.handler, &snapshot, peer.ip(), h).map(|e| (h, e)));
    let Some((host, explained)) = explained else {
        return html(
            StatusCode::OK,
            page::message_page(
                "Bộ lọc nội dung của trường",
                "The school's content filter",
                "Địa chỉ này thuộc hệ thống lọc nội dung của nhà trường.",
                "This address belongs to the school's content filter.",
                &brand,
            ),
        );
    };
    let config = &snapshot.config;
    let school = &config.schools[explained.client.school];
    let now = state.handler.clock.now();
    let when = now
        .to_zoned_datetime(school.timezone.clone())
        .strftime("%H:%M %d/%m/%Y")
        .to_string();
    let token = state.token(host, peer.ip(), now.as_second() / 60);
    let body = page::blocked_page(
        &Blocked {
            domain: host,
            category_vi_en: &explained.category_name,
            school: &school.name,
            band: &config.bands[explained.client.band].name,
            when: &when,
            schedule: explained.schedule.as_deref(),
            reason: &explained.reason,
            token: &token,
        },
        &brand,
    );
    html(StatusCode::FORBIDDEN, body)
}

#[derive(Deserialize)]
struct ReviewForm {
    token: String,
    #[serde(default)]
    comment: String,
}

async fn review(
    State(state): State<SinkholeState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<ReviewForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let snapshot = state.handler.snapshot.load_full();
    let brand = branding(&snapshot);
    let refuse = |status, vi: &str, en: &str| {
        html(
            status,
            page::message_page("Không gửi được", "Not sent", vi, en, &brand),
        )
    };
    let Some(host) = host_name(&headers) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Địa chỉ trang không hợp lệ.",
            "Invalid site address.",
        );
    };
    // Same-origin only. Under `Referrer-Policy: no-referrer` browsers send
    // `Origin: null` even for a same-origin form (Chromium does, a test
    // shows it), so "null" passes here and the token decides; any other
    // origin is another site.
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null")
    {
        let origin_host = origin
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        if !origin_host.eq_ignore_ascii_case(&host) {
            return refuse(
                StatusCode::FORBIDDEN,
                "Yêu cầu không hợp lệ.",
                "Cross-site request refused.",
            );
        }
    }
    let Ok(Form(form)) = form else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Biểu mẫu không hợp lệ.",
            "Invalid form.",
        );
    };
    let now = state.handler.clock.now();
    if !state.token_valid(&form.token, &host, peer.ip(), now.as_second() / 60) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Biểu mẫu đã hết hạn, hãy tải lại trang.",
            "The form expired: reload the page.",
        );
    }
    if !state.allow_review(peer.ip()) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Em đã gửi nhiều yêu cầu, hãy thử lại sau.",
            "Too many requests: try again later.",
        );
    }
    let Some(explained) = explain_block(&state.handler, &snapshot, peer.ip(), &host) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Trang này không bị chặn.",
            "This site is not blocked.",
        );
    };
    let school = snapshot.config.schools[explained.client.school].clone();
    let band = snapshot.config.bands[explained.client.band].id.clone();
    let day = now
        .to_zoned_datetime(school.timezone.clone())
        .date()
        .to_string();
    let store = state.store.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        reviews::request(
            store.connection(),
            &reviews::NewReview {
                now: now.as_second(),
                day: &day,
                school: &school.id,
                band: &band,
                domain: &host,
                category: &explained.category_id,
                comment: &form.comment,
            },
        )
    })
    .await;
    match recorded {
        Ok(Ok(Recorded::New(_))) => html(
            StatusCode::OK,
            page::message_page(
                "Đã gửi yêu cầu",
                "Request sent",
                "Cảm ơn em. Nhà trường sẽ xem xét lại trang này.",
                "Thank you. The school will review this site.",
                &brand,
            ),
        ),
        Ok(Ok(Recorded::AlreadyRequested)) => html(
            StatusCode::OK,
            page::message_page(
                "Đã có yêu cầu",
                "Already requested",
                "Hôm nay đã có người gửi yêu cầu cho trang này; nhà trường sẽ xem xét.",
                "Someone already asked for this site today; the school will review it.",
                &brand,
            ),
        ),
        _ => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Lỗi hệ thống, hãy báo thầy cô.",
            "Server error: tell your teacher.",
        ),
    }
}

/// HTTPS on the sinkhole with the school CA: each handshake gets a
/// certificate minted for its SNI name, then the same routes as HTTP.
pub async fn serve_tls_with_ca(
    addr: SocketAddr,
    state: SinkholeState,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot bind HTTPS listener {addr}: {e}"))
    })?;
    let local = listener.local_addr()?;
    info!(address = %local, "listening on {local} (HTTPS warning page, school CA)");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(state);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream)).await
                else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(
                    app.layer(axum::Extension(ConnectInfo(peer))),
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((local, task))
}

/// HTTPS on the sinkhole without a school CA: answer every TLS handshake at
/// once with a fatal alert and close, so browsers fail fast instead of
/// waiting for a timeout.
pub async fn serve_tls_reject(
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot bind HTTPS listener {addr}: {e}"))
    })?;
    let local = listener.local_addr()?;
    info!(address = %local, "listening on {local} (HTTPS: fast TLS refusal)");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // TLS record: alert (21), TLS 1.2, length 2, fatal (2), handshake_failure (40).
                let _ = stream.write_all(&[21, 3, 3, 0, 2, 2, 40]).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn host_header_is_a_normalised_name_or_nothing() {
        let mut headers = HeaderMap::new();
        for (raw, expected) in [
            ("Bet.Example:8080", Some("bet.example")),
            ("bet.example", Some("bet.example")),
            ("10.0.0.1", None),
            ("[::1]:80", None),
            ("<script>alert(1)</script>", None),
            ("a b.example", None),
        ] {
            headers.insert(header::HOST, HeaderValue::from_str(raw).unwrap());
            assert_eq!(host_name(&headers).as_deref(), expected, "{raw}");
        }
    }
}
