//! The administration API: roles, errors, concurrent edits, changes applied
//! under load and kept across a restart, the audit log, temporary
//! allowances, the review queue, the OpenAPI document and the defences of
//! the listener. Everything against the real server on loopback.

use crate::harness::{ChromeDriver, TestServer, base_config, http_request, serve_http};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod allowances;
mod console;
mod edits;
mod listener;
mod lists;
mod openapi;
mod overview;
mod reviews;
mod roles;
mod tester;

/// Two schools: s1 (127.0.0.0/24, from the base config) and s2.
pub fn config() -> String {
    base_config(
        r#"
[[school]]
id = "s2"
name = "Trường Hai"
networks = ["127.0.1.0/24"]
"#,
    )
}

/// One API call: (status, headers, body as JSON or Null).
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(auth) = &auth {
        all.push(("Authorization", auth));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/json"));
    }
    let (status, head, text) = http_request(
        addr,
        "127.0.0.1",
        method,
        path,
        &addr.to_string(),
        &all,
        body,
    )
    .await;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, head, json)
}

/// Headless Chromium in a tablet-sized window, signed in to the console at
/// `api` with `token` (the page is Vietnamese first).
pub async fn console_signed_in(api: SocketAddr, token: &str) -> ChromeDriver {
    let browser = ChromeDriver::start(1024, 1366, &[]).await;
    browser
        .cmd(
            "POST",
            "/url",
            json!({"url": format!("http://{api}/console/")}),
        )
        .await;
    let title = browser
        .eval("return document.querySelector('h1').textContent;")
        .await;
    assert!(
        title.as_str().unwrap().contains("Quản lý bộ lọc DNS"),
        "Vietnamese first: {title}"
    );
    let input = browser.find("#token").await;
    browser
        .cmd(
            "POST",
            &format!("/element/{input}/value"),
            json!({"text": token}),
        )
        .await;
    browser.click("#signin").await;
    browser
}

/// Standard base64 (WebDriver screenshots), without another dependency.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, &c| (acc << 6) | value(c)) << (6 * (4 - chunk.len()));
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&full[..3 - pad.min(2)]);
    }
    out
}

/// The subscribed list `feed` (20 names, then two protected names that must
/// be ignored), `missing` (404) and `slow` (held until the test opens
/// `gate`), served on loopback.
pub async fn list_server(gate: Arc<tokio::sync::Semaphore>) -> SocketAddr {
    async fn slow(
        axum::extract::State(gate): axum::extract::State<Arc<tokio::sync::Semaphore>>,
    ) -> String {
        let _ = gate.acquire().await;
        (0..10).map(|i| format!("slow{i}.example\n")).collect()
    }
    let app = axum::Router::new()
        .route("/feed.txt", axum::routing::get(|| async { FEED }))
        .route("/slow.txt", axum::routing::get(slow))
        .with_state(gate);
    serve_http(app).await
}

pub const FEED: &str = "# a list with bad data\nfeed0.example\nfeed1.example\nfeed2.example\nfeed3.example\nfeed4.example\nfeed5.example\nfeed6.example\nfeed7.example\nfeed8.example\nfeed9.example\nfeed10.example\nfeed11.example\nfeed12.example\nfeed13.example\nfeed14.example\nfeed15.example\nfeed16.example\nfeed17.example\nfeed18.example\nfeed19.example\ngoogle.com\ntongdai111.vn\n";

/// The base config with the gambling category also subscribed to `feed`
/// and `missing`, and to `slow` when `with_slow`.
pub fn subscribed_config(addr: SocketAddr, with_slow: bool) -> String {
    let mut lists = format!(
        "\"lists/gambling.txt\", {{ url = \"http://{addr}/feed.txt\", name = \"feed\", format = \"plain\" }}, {{ url = \"http://{addr}/missing.txt\", name = \"missing\", format = \"plain\" }}"
    );
    if with_slow {
        lists.push_str(&format!(
            ", {{ url = \"http://{addr}/slow.txt\", name = \"slow\", format = \"plain\" }}"
        ));
    }
    config()
        .replace(
            "lists = [\"lists/gambling.txt\"]",
            &format!("lists = [{lists}]"),
        )
        .replace("[reload]", "[lists]\ntimeout_secs = 120\n[reload]")
}

/// `GET /api/v1/categories` until `done` holds for it (10 s at most).
pub async fn categories_until(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = server.api_get("/api/v1/categories").await;
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        if done(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "not reached within 10 s: {json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The list `name` in a `/api/v1/categories` answer.
pub fn list_named(categories: &Value, name: &str) -> Value {
    categories["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["lists"].as_array().unwrap())
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no list {name} in {categories}"))
        .clone()
}
