//! `TestServer`: the real edudns, started in-process on 127.0.0.1:0 with a
//! config written to a temporary directory, forwarding to a [`TestUpstream`].
//! Clients: hickory's UDP client bound to any 127.x source (to pretend to be
//! another school or band), a TCP client, and raw UDP for broken packets.

use crate::upstream::TestUpstream;
use edudns::app::reload::{ConfigSource, Overrides};
use edudns::app::{Running, start_with_clock};
use edudns::policy::clock::Clock;
use hickory_net::client::ClientHandle;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Absolute path of a file under `../shared/data/`.
pub fn shared_data(relative: &str) -> String {
    format!("{}/../shared/data/{relative}", env!("CARGO_MANIFEST_DIR"))
}

/// A config with one school (127.0.0.0/24), bands `young` (127.0.0.2),
/// `teen` (127.0.0.3) and `staff` (127.0.0.4); everything else in the /24
/// is the school's unknown band (the strictest, `young`).
/// `{LISTS}` in `extra` is replaced by the lists directory.
pub fn base_config(extra: &str) -> String {
    format!(
        r#"
[server]
dns_listen = ["127.0.0.1:0"]
management_listen = "127.0.0.1:0"
max_in_flight = 64

[upstream]
servers = ["127.0.0.1:1"]
timeout_ms = 1500

[blocking]
sinkhole_ipv4 = "10.99.0.1"
sinkhole_ipv6 = "fd99::1"
ttl = 120

[reload]
watch_interval_secs = 0

[[category]]
id = "gambling"
name = "Cờ bạc / Gambling"
lists = ["lists/gambling.txt"]

[[category]]
id = "social"
name = "Mạng xã hội / Social networks"
lists = ["lists/social.txt"]

[[band]]
id = "young"
block = ["gambling", "social"]
deny = ["deny.example"]
allow = ["ok.bet.example"]

[[band]]
id = "teen"
block = ["gambling"]

[[band]]
id = "staff"
block = []

[[school]]
id = "s1"
name = "Trường Thử / Test school"
networks = ["127.0.0.0/24"]

[school.bands]
young = ["127.0.0.2/32"]
teen = ["127.0.0.3/32"]
staff = ["127.0.0.4/32"]
{extra}
"#
    )
}

/// Default list contents for `base_config`.
pub const GAMBLING: &str = "# test list\nbet.example\ncasino.example\n";
pub const SOCIAL: &str = "social.example\n";

pub struct TestServer {
    pub running: Running,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub upstream: Option<TestUpstream>,
}

impl TestServer {
    /// Starts edudns with `config` (and the default lists) forwarding to `upstream`.
    pub async fn start(config: &str, upstream: Option<TestUpstream>) -> TestServer {
        Self::start_with_clock(
            config,
            upstream,
            Arc::new(edudns::policy::clock::SystemClock),
        )
        .await
    }

    /// [`TestServer::start`] with a clock the test controls.
    pub async fn start_with_clock(
        config: &str,
        upstream: Option<TestUpstream>,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let upstreams = upstream.iter().map(|u| u.addr).collect();
        let mut server = Self::start_inner(config, upstreams, clock).await;
        server.upstream = upstream;
        server
    }

    /// Starts edudns forwarding to an upstream the test runs itself (a raw
    /// UDP server on loopback that misbehaves in ways hickory-server won't).
    pub async fn start_with_upstream_addr(config: &str, upstream: SocketAddr) -> TestServer {
        Self::start_with_upstream_addrs(config, vec![upstream]).await
    }

    /// [`TestServer::start`] forwarding to these servers, in this order.
    pub async fn start_with_upstream_addrs(config: &str, upstreams: Vec<SocketAddr>) -> TestServer {
        Self::start_inner(
            config,
            upstreams,
            Arc::new(edudns::policy::clock::SystemClock),
        )
        .await
    }

    async fn start_inner(
        config: &str,
        upstreams: Vec<SocketAddr>,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lists")).unwrap();
        write(&dir.path().join("lists/gambling.txt"), GAMBLING);
        write(&dir.path().join("lists/social.txt"), SOCIAL);
        let config_path = dir.path().join("edudns.toml");
        write(&config_path, config);
        let overrides = Overrides {
            upstreams,
            fast_path: fast_path_override(),
            ..Overrides::default()
        };
        let running = start_with_clock(ConfigSource::File(config_path), overrides, clock)
            .await
            .unwrap_or_else(|e| panic!("edudns did not start: {e}"));
        let addr = running.dns_addrs()[0];
        TestServer {
            running,
            addr,
            dir,
            upstream: None,
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Asks `name`/`rtype` over UDP from source address `src` with hickory's client.
    pub async fn query_from(&self, src: &str, name: &str, rtype: RecordType) -> Message {
        query_udp(self.addr, src, name, rtype).await
    }

    pub async fn query(&self, name: &str, rtype: RecordType) -> Message {
        self.query_from("127.0.0.2", name, rtype).await
    }

    /// A new API token with `role` ("office", "school:s1", "auditor").
    pub fn token(&self, role: &str) -> String {
        let config = self.running.handler.snapshot.load().config.clone();
        let role = edudns::admin::tokens::Role::parse(role).unwrap();
        edudns::admin::tokens::create(&config.admin.tokens_file, &role, &format!("test {role}"))
            .unwrap()
            .0
    }

    /// GET on the management listener with an office token.
    pub async fn api_get(&self, path: &str) -> (u16, String, String) {
        let token = self.token("office");
        let auth = format!("Bearer {token}");
        let addr = self.running.management_addr;
        http_request(
            addr,
            "127.0.0.1",
            "GET",
            path,
            &addr.to_string(),
            &[("Authorization", &auth)],
            "",
        )
        .await
    }

    pub fn counters(&self) -> edudns::dns::counters::CountersSnapshot {
        self.running.handler.counters.snapshot()
    }
}

/// `EDUDNS_TEST_FAST_PATH=0` runs every test server without the UDP fast
/// path (`.ci/run` runs the suite both ways, so both paths keep one
/// behaviour); unset or 1 leaves the configuration's setting (on).
pub fn fast_path_override() -> Option<bool> {
    match std::env::var("EDUDNS_TEST_FAST_PATH").as_deref() {
        Ok("0") => Some(false),
        Ok("1") => Some(true),
        _ => None,
    }
}

/// Serves `app` over HTTP on a free loopback port (a list source, a
/// mirror) for the rest of the test.
pub async fn serve_http(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// hickory's UDP client, bound to `src` (any 127.x address works on Linux).
pub async fn query_udp(server: SocketAddr, src: &str, name: &str, rtype: RecordType) -> Message {
    let bind: SocketAddr = SocketAddr::new(src.parse().unwrap(), 0);
    let mut client = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_bind_addr(Some(bind))
        .with_timeout(Some(Duration::from_secs(5)))
        .exchange();
    let name = Name::from_ascii(name).unwrap();
    let response = client
        .query(name, DNSClass::IN, rtype)
        .await
        .unwrap_or_else(|e| panic!("no answer from edudns: {e}"));
    response.into_message()
}

/// Builds a query message (EDNS with a 1232-byte payload when `edns`).
pub fn query_message(id: u16, name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        message.set_edns(e);
    }
    message
}

/// Sends raw bytes over UDP from `src`; the answer, or `None` after `wait`.
pub async fn raw_udp(
    server: SocketAddr,
    src: &str,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((src.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await {
        Ok(Ok((len, _))) => Some(buffer[..len].to_vec()),
        _ => None,
    }
}

/// One query over TCP (length-prefixed), from 127.0.0.1.
pub async fn query_tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let bytes = message.to_vec().unwrap();
    stream.write_u16(bytes.len() as u16).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let len = tokio::time::timeout(Duration::from_secs(5), stream.read_u16())
        .await
        .expect("TCP answer in time")
        .unwrap();
    let mut buffer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buffer).await.unwrap();
    Message::from_vec(&buffer).unwrap()
}

/// The IPv4 addresses in the answer section.
pub fn a_records(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The Extended DNS Error (code, text) of a response, if any.
pub fn extended_error(message: &Message) -> Option<(u16, String)> {
    let edns = message.edns.as_ref()?;
    edns.options().as_ref().iter().find_map(|(code, option)| {
        if u16::from(*code) != 15 {
            return None;
        }
        let data: Vec<u8> = Vec::try_from(option).ok()?;
        Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        ))
    })
}

/// A plain HTTP/1.1 GET on loopback: (status, headers, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_request(addr, "127.0.0.1", "GET", path, &addr.to_string(), &[], "").await
}

/// The ETag header of an HTTP response head (as `http_request` returns it).
pub fn etag_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_string())
        })
        .expect("an ETag header")
}

/// Parses the Prometheus text format into (name, labels, value) samples,
/// checking every line is well formed.
/// One exposition sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split_whitespace().nth(1).unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad TYPE line {line:?}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), Vec::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label: {line:?}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name {name:?}"
        );
        samples.push((name, labels, value));
    }
    samples
}

/// The value of one series (all given labels must match), or 0.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// An HTTP/1.1 request from a chosen source address with a chosen Host.
pub async fn http_request(
    addr: SocketAddr,
    src: &str,
    method: &str,
    path: &str,
    host: &str,
    extra_headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(src.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A WebDriver command to chromedriver (which keeps connections open, so
/// the answer is read by its Content-Length).
pub async fn webdriver(
    port: u16,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head_len, length) = loop {
        let n = tokio::time::timeout(deadline - Instant::now(), stream.read(&mut chunk))
            .await
            .expect("webdriver answer")
            .unwrap();
        assert!(n > 0, "webdriver closed the connection");
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while raw.len() < head_len + length {
        let n = tokio::time::timeout(deadline - Instant::now(), stream.read(&mut chunk))
            .await
            .expect("webdriver body")
            .unwrap();
        assert!(n > 0, "webdriver closed the connection early");
        raw.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_len]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&raw[head_len..]).to_string();
    let json: serde_json::Value = serde_json::from_str(&answer).unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    json["value"].clone()
}

/// chromedriver on a free loopback port; killed when dropped.
pub struct ChromeDriver {
    pub port: u16,
    child: std::process::Child,
    _profile: TempDir,
    pub session: String,
}

impl ChromeDriver {
    /// Starts chromedriver and a headless Chromium session (window `width`×`height`).
    pub async fn start(width: u32, height: u32, extra_args: &[String]) -> ChromeDriver {
        assert!(
            Path::new("/usr/bin/chromedriver").exists(),
            "chromium-driver is installed (.ci/run installs it)"
        );
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra_args.iter().cloned());
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let session = webdriver(port, "POST", "/session", &capabilities).await;
        let session = session["sessionId"].as_str().expect("session").to_string();
        ChromeDriver {
            port,
            child,
            _profile: profile,
            session,
        }
    }

    /// A command on this session (`path` after `/session/{id}`).
    pub async fn cmd(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            &body,
        )
        .await
    }

    /// The element id of the first match of a CSS selector, waiting up to 10 s.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .cmd("POST", "/execute/sync", serde_json::json!({"script": "return document.querySelector(arguments[0]) !== null;", "args": [css]}))
                .await;
            if found == serde_json::Value::Bool(true) {
                let element = self
                    .cmd(
                        "POST",
                        "/element",
                        serde_json::json!({"using": "css selector", "value": css}),
                    )
                    .await;
                return element["element-6066-11e4-a52e-4f735466cecf"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            assert!(Instant::now() < deadline, "no element {css} within 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first match of a CSS selector, waiting for it up to 10 s.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            serde_json::json!({}),
        )
        .await;
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.cmd(
            "POST",
            "/execute/sync",
            serde_json::json!({"script": script, "args": []}),
        )
        .await
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Ending the session makes chromedriver close Chromium; killing
        // chromedriver alone would leave the browser running.
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = [0u8; 1024];
                let _ = stream.read(&mut answer);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
