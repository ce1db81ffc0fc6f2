//! Encrypted upstreams: edudns forwards over DNS over TLS and DNS over
//! HTTPS to Debian's unbound (`tls-port`, `https-port`) on loopback, reuses
//! one connection, caches, fails over and serves stale as over plain DNS;
//! a certificate that does not verify is refused, counted, and never
//! followed by a question in clear text.

use crate::harness::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA (made with `edudns ca init`'s function) and a certificate it
/// signed for `upstream.test` and 127.0.0.1.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, ca_name: &str) -> Pki {
        edudns::web::school_ca::init(&dir.join("ca"), ca_name).unwrap();
        let names = ["upstream.test", "127.0.0.1"].map(String::from);
        edudns::web::school_ca::issue(&dir.join("ca"), &names, &dir.join("tls")).unwrap();
        Pki {
            dir: dir.to_path_buf(),
        }
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("ca/ca.crt")
    }
    fn cert(&self) -> PathBuf {
        self.dir.join("tls/dns.crt")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("tls/dns.key")
    }
}

/// A free TCP port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's unbound answering `*.allowed.example` with 192.0.2.10 (TTL 1)
/// over DoT on `tls` and DoH on `https`, with its certificate from `pki`;
/// it closes a connection idle for 400 ms.
struct Unbound {
    child: Child,
    tls: u16,
    https: u16,
}

impl Unbound {
    /// Starts unbound; ports are picked free, and picked again when
    /// another test took one meanwhile (unbound then exits).
    fn start(dir: &Path, pki: &Pki) -> Unbound {
        for _ in 0..5 {
            if let Some(unbound) = Self::try_start(dir, pki) {
                return unbound;
            }
        }
        panic!(
            "unbound did not start: {}",
            std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default()
        );
    }

    fn try_start(dir: &Path, pki: &Pki) -> Option<Unbound> {
        let (tls, https) = (free_port(), free_port());
        let conf = dir.join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server:
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: "{dir}/unbound.log"
  log-queries: yes
  verbosity: 1
  do-daemonize: no
  num-threads: 1
  interface: 127.0.0.1@{tls}
  interface: 127.0.0.1@{https}
  tls-port: {tls}
  https-port: {https}
  http-endpoint: "/dns-query"
  tls-service-key: "{key}"
  tls-service-pem: "{cert}"
  access-control: 127.0.0.0/8 allow
  tcp-idle-timeout: 400
  module-config: "iterator"
  local-zone: "allowed.example." redirect
  local-data: "allowed.example. 1 IN A 192.0.2.10"
  local-zone: "." static
remote-control:
  control-enable: no
"#,
                dir = dir.display(),
                key = pki.key().display(),
                cert = pki.cert().display(),
            ),
        )
        .unwrap();
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unbound (apt-get install unbound)");
        let mut unbound = Unbound { child, tls, https };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [tls, https] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if unbound.child.try_wait().unwrap().is_some() {
                    return None;
                }
                assert!(
                    Instant::now() < deadline,
                    "unbound did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(unbound)
    }
}

impl Unbound {
    /// The questions unbound logged (`log-queries`) for names ending in
    /// `name`, over any transport, clear text included; in any letter case
    /// (0x20).
    fn questions_for(&self, dir: &Path, name: &str) -> usize {
        std::fs::read_to_string(dir.join("unbound.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_ascii_lowercase)
            .filter(|line| line.contains(" info: ") && line.contains(name))
            .count()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test config with `servers` as `upstream.servers` and `ca` trusted.
fn config(servers: &[String], ca: &Path) -> String {
    let list = servers
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    base_config("").replace(
        "servers = [\"127.0.0.1:1\"]",
        &format!(
            "servers = [{list}]\ntls_ca_file = {:?}",
            ca.display().to_string()
        ),
    )
}

/// `edudns_packets_total{event=...}` now.
async fn event(server: &TestServer, name: &str) -> f64 {
    let (_, _, body) = http_get(server.running.management_addr, "/metrics").await;
    sample(
        &parse_exposition(&body),
        "edudns_packets_total",
        &[("event", name)],
    )
}

#[tokio::test]
async fn dot_and_doh_upstreams_answer_through_unbound_on_one_reused_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Upstream test CA");
    let unbound = Unbound::start(dir.path(), &pki);
    for (transport, entry) in [
        (
            "DoT",
            format!("tls://127.0.0.1:{}#upstream.test", unbound.tls),
        ),
        (
            "DoH",
            format!("https://127.0.0.1:{}/dns-query", unbound.https),
        ),
    ] {
        let server = TestServer::start_with_upstream_addrs(
            &config(std::slice::from_ref(&entry), &pki.ca()),
            vec![],
        )
        .await;
        // 30 distinct names at once: all answered, over one connection.
        let answers = futures_util::future::join_all((0..30).map(|i| {
            let server = &server;
            async move {
                server
                    .query_from(
                        "127.0.0.4",
                        &format!("n{i}.allowed.example."),
                        RecordType::A,
                    )
                    .await
            }
        }))
        .await;
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(
                a_records(answer),
                vec!["192.0.2.10"],
                "{transport}: n{i}.allowed.example: {answer:?}"
            );
        }
        assert_eq!(
            event(&server, "upstream_encrypted_question").await,
            30.0,
            "{transport}"
        );
        assert_eq!(
            event(&server, "upstream_encrypted_connection").await,
            1.0,
            "{transport}: one connection reused for every question"
        );
        // Cached: no new question. Blocked: never asked.
        let again = server
            .query_from("127.0.0.4", "n0.allowed.example.", RecordType::A)
            .await;
        assert_eq!(a_records(&again), vec!["192.0.2.10"]);
        let blocked = server.query("bet.example.", RecordType::A).await;
        assert_eq!(
            a_records(&blocked),
            vec!["10.99.0.1"],
            "{transport}: blocked"
        );
        assert_eq!(
            event(&server, "upstream_encrypted_question").await,
            30.0,
            "{transport}"
        );
        // A name unbound does not know: its NXDOMAIN comes through.
        let unknown = server
            .query_from("127.0.0.4", "nothing.example.", RecordType::A)
            .await;
        assert_eq!(
            unknown.metadata.response_code,
            ResponseCode::NXDomain,
            "{transport}"
        );
        assert_eq!(event(&server, "upstream_tls_failed").await, 0.0);
        // unbound closes the idle connection: the next question is still
        // answered, on a new one.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let after_idle = server
            .query_from("127.0.0.4", "later.allowed.example.", RecordType::A)
            .await;
        assert_eq!(
            a_records(&after_idle),
            vec!["192.0.2.10"],
            "{transport}: after idle close"
        );
        assert_eq!(
            event(&server, "upstream_encrypted_connection").await,
            2.0,
            "{transport}: a new connection after the server closed the idle one"
        );
    }
    assert!(
        unbound.questions_for(dir.path(), "allowed.example.") >= 60,
        "unbound saw the questions"
    );
}

#[tokio::test]
async fn encrypted_upstreams_fail_over_and_serve_stale_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "Upstream test CA");
    let unbound = Unbound::start(dir.path(), &pki);
    let dead = free_port();
    let server = TestServer::start_with_upstream_addrs(
        &config(
            &[
                format!("tls://127.0.0.1:{dead}#upstream.test"),
                format!(
                    "https://127.0.0.1:{}/dns-query#upstream.test",
                    unbound.https
                ),
            ],
            &pki.ca(),
        ),
        vec![],
    )
    .await;
    let started = Instant::now();
    let answer = server
        .query_from("127.0.0.4", "stale.allowed.example.", RecordType::A)
        .await;
    assert_eq!(
        a_records(&answer),
        vec!["192.0.2.10"],
        "answered by the second server"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(unbound);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the TTL of 1 s has run out
    let stale = server
        .query_from("127.0.0.4", "stale.allowed.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&stale), vec!["192.0.2.10"], "served stale");
    assert_eq!(stale.answers[0].ttl, 30, "stale answers carry TTL 30");
}

#[tokio::test]
async fn an_upstream_certificate_that_does_not_verify_is_refused_counted_and_never_sent_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Pki::new(&dir.path().join("trusted"), "Trusted CA");
    let other = Pki::new(&dir.path().join("other"), "Unknown CA");
    // unbound shows a certificate from a CA edudns does not trust.
    let unbound = Unbound::start(dir.path(), &other);
    let cases = [
        (
            "DoT, unknown issuer",
            format!("tls://127.0.0.1:{}#upstream.test", unbound.tls),
            &trusted,
        ),
        (
            "DoH, unknown issuer",
            format!(
                "https://127.0.0.1:{}/dns-query#upstream.test",
                unbound.https
            ),
            &trusted,
        ),
        (
            "DoT, another name",
            format!("tls://127.0.0.1:{}#not-upstream.test", unbound.tls),
            &other,
        ),
    ];
    for (case, entry, ca) in cases {
        let server =
            TestServer::start_with_upstream_addrs(&config(&[entry], &ca.ca()), vec![]).await;
        let answer = server
            .query_from("127.0.0.4", "x.allowed.example.", RecordType::A)
            .await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::ServFail,
            "{case}"
        );
        assert!(
            event(&server, "upstream_tls_failed").await >= 1.0,
            "{case}: counted"
        );
        assert_eq!(
            event(&server, "upstream_encrypted_connection").await,
            0.0,
            "{case}"
        );
    }
    // unbound listens for plain DNS on the same ports too: a fallback to
    // clear text would have reached it and been logged.
    assert_eq!(
        unbound.questions_for(dir.path(), "x.allowed.example."),
        0,
        "no question reached unbound, in clear text or otherwise"
    );
}
