//! DNS over TLS and DNS over HTTPS with real clients (kdig, dig, curl and
//! a rustls client): blocked and allowed names over each transport, band
//! tokens from an outside address, a wrong token, certificate reload and
//! the per-client limits.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A school CA and a certificate for `dns.test`, `*.dns.test` and
/// 127.0.0.1, made with `edudns ca init` / `ca issue`'s functions.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        edudns::web::school_ca::init(&dir.path().join("ca"), "Test CA").unwrap();
        let pki = Pki { dir };
        pki.issue();
        pki
    }

    /// (Re-)issues the server certificate with a fresh key.
    fn issue(&self) {
        let names = ["dns.test", "*.dns.test", "127.0.0.1"].map(String::from);
        edudns::web::school_ca::issue(&self.dir.path().join("ca"), &names, &self.tls()).unwrap();
    }

    fn tls(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca/ca.crt").display().to_string()
    }
}

fn config(pki: &Pki, extra: &str) -> String {
    base_config(&format!(
        r#"
[encrypted_dns]
dot_listen = ["127.0.0.1:0"]
doh_listen = ["127.0.0.1:0"]
certificate = "{tls}/dns.crt"
private_key = "{tls}/dns.key"
token_domain = "dns.test"
{extra}
"#,
        tls = pki.tls().display()
    ))
}

async fn start(pki: &Pki, extra: &str) -> TestServer {
    let upstream = TestUpstream::builder()
        .a("www.allowed.example", Ipv4Addr::new(192, 0, 2, 7))
        .a("social.example", Ipv4Addr::new(192, 0, 2, 8))
        .start()
        .await;
    TestServer::start(&config(pki, extra), Some(upstream)).await
}

fn dot(server: &TestServer) -> SocketAddr {
    server.running.encrypted.dot_addrs[0]
}

fn doh(server: &TestServer) -> SocketAddr {
    server.running.encrypted.doh_addrs[0]
}

/// Runs a client; returns its standard output and error.
async fn run(program: &str, args: &[String]) -> (String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(program).args(args).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} did not finish"))
    .unwrap_or_else(|e| panic!("{program} is installed (.ci/run installs it): {e}"));
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// kdig over TLS or HTTPS; `transport` is e.g. `+tls`, `+https`, `+https-get`.
async fn kdig(
    addr: SocketAddr,
    source: &str,
    transport: &[&str],
    hostname: &str,
    ca: &str,
    name: &str,
) -> String {
    let mut args = strings(&[
        &format!("@{}", addr.ip()),
        "-p",
        &addr.port().to_string(),
        "-b",
        source,
        &format!("+tls-ca={ca}"),
        &format!("+tls-hostname={hostname}"),
        "+short",
        "+timeout=5",
        "+retry=0",
    ]);
    args.extend(strings(transport));
    args.extend(strings(&[name, "A"]));
    run("kdig", &args).await.0
}

/// dig (BIND 9.18) over TLS or HTTPS.
async fn dig(addr: SocketAddr, source: &str, transport: &[&str], ca: &str, name: &str) -> String {
    let mut args = strings(&[
        &format!("@{}", addr.ip()),
        "-p",
        &addr.port().to_string(),
        "-b",
        source,
        &format!("+tls-ca={ca}"),
        "+tls-hostname=dns.test",
        "+short",
        "+time=5",
        "+tries=1",
    ]);
    args.extend(strings(transport));
    args.extend(strings(&[name, "A"]));
    run("dig", &args).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_and_allowed_names_over_dot_and_doh_with_kdig_dig_and_curl() {
    let pki = Pki::new();
    let server = start(&pki, "").await;
    let ca = pki.ca();
    let (dot, doh) = (dot(&server), doh(&server));
    // teen (127.0.0.3) blocks gambling.
    for transport in [&["+tls"][..], &["+https"], &["+https", "+https-get"]] {
        let addr = if transport[0] == "+tls" { dot } else { doh };
        let blocked = kdig(addr, "127.0.0.3", transport, "dns.test", &ca, "bet.example").await;
        assert_eq!(
            blocked.trim(),
            "10.99.0.1",
            "kdig {transport:?} bet.example"
        );
        let allowed = kdig(
            addr,
            "127.0.0.3",
            transport,
            "dns.test",
            &ca,
            "www.allowed.example",
        )
        .await;
        assert_eq!(
            allowed.trim(),
            "192.0.2.7",
            "kdig {transport:?} www.allowed.example"
        );
    }
    for transport in [&["+tls"][..], &["+https"], &["+https-get"]] {
        let addr = if transport[0] == "+tls" { dot } else { doh };
        let blocked = dig(addr, "127.0.0.3", transport, &ca, "casino.example").await;
        assert_eq!(
            blocked.trim(),
            "10.99.0.1",
            "dig {transport:?} casino.example"
        );
        let allowed = dig(addr, "127.0.0.3", transport, &ca, "www.allowed.example").await;
        assert_eq!(
            allowed.trim(),
            "192.0.2.7",
            "dig {transport:?} www.allowed.example"
        );
    }
    // curl resolves through DoH, then tries the address it was given.
    for (name, address) in [
        ("bet.example", "10.99.0.1"),
        ("www.allowed.example", "192.0.2.7"),
    ] {
        let (_, stderr) = run(
            "curl",
            &strings(&[
                "-sv",
                "--max-time",
                "3",
                "--connect-timeout",
                "1",
                "--cacert",
                &ca,
                "--doh-url",
                &format!("https://127.0.0.1:{}/dns-query", doh.port()),
                &format!("http://{name}/"),
            ]),
        )
        .await;
        assert!(
            stderr.contains(&format!("Trying {address}")),
            "curl --doh-url {name}: {stderr}"
        );
    }
    let counters = server.counters();
    // kdig and dig: two names each over DoT; kdig (POST, GET), dig (POST,
    // GET) and curl (A and AAAA of two names) over DoH.
    assert_eq!(counters.dot_queries, 4, "{counters:?}");
    assert!(counters.doh_queries >= 10, "{counters:?}");
    assert!(counters.blocked >= 8, "{counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_band_token_serves_an_outside_address_and_a_wrong_one_is_refused() {
    let pki = Pki::new();
    let server = start(&pki, "").await;
    let ca = pki.ca();
    let (dot, doh) = (dot(&server), doh(&server));
    let file = server
        .running
        .handler
        .snapshot
        .load()
        .config
        .encrypted_dns
        .tokens_file
        .clone();
    // teen: gambling blocked, social networks not (young blocks both).
    let (token, stored) =
        edudns::admin::tokens::create_band(&file, "s1", "teen", "test tablets").unwrap();
    let outside = "127.0.1.5";
    // No token: an outside address is refused as over UDP.
    let plain = kdig(dot, outside, &["+tls"], "dns.test", &ca, "social.example").await;
    assert_eq!(
        plain.trim(),
        "",
        "outside without a token must get no address"
    );
    // The token in the DoT server name and in the DoH path names teen.
    let sni = format!("{token}.dns.test");
    let https = format!("+https=/dns-query/{token}");
    for (addr, transport, host) in [
        (dot, &["+tls"][..], sni.as_str()),
        (doh, &[https.as_str()][..], "dns.test"),
    ] {
        let social = kdig(addr, outside, transport, host, &ca, "social.example").await;
        assert_eq!(
            social.trim(),
            "192.0.2.8",
            "{transport:?}: teen allows social"
        );
        let bet = kdig(addr, outside, transport, host, &ca, "bet.example").await;
        assert_eq!(
            bet.trim(),
            "10.99.0.1",
            "{transport:?}: teen blocks gambling"
        );
    }
    // A token in the DoH path also overrides a campus address's band
    // (127.0.0.2 is young, which blocks social networks).
    let young = kdig(
        doh,
        "127.0.0.2",
        &[https.as_str()],
        "dns.test",
        &ca,
        "social.example",
    )
    .await;
    assert_eq!(young.trim(), "192.0.2.8");
    // A wrong token: DoT answers REFUSED with an EDE, DoH 403.
    let mut wrong = token.clone();
    wrong.replace_range(token.len() - 4.., "0000");
    let refused = run(
        "kdig",
        &strings(&[
            &format!("@{}", dot.ip()),
            "-p",
            &dot.port().to_string(),
            "-b",
            outside,
            "+tls",
            &format!("+tls-ca={ca}"),
            &format!("+tls-hostname={wrong}.dns.test"),
            "+timeout=5",
            "+retry=0",
            "social.example",
        ]),
    )
    .await
    .0;
    assert!(refused.contains("REFUSED"), "{refused}");
    assert!(refused.contains("band token not valid"), "{refused}");
    let (status, body) = doh_get(doh, &format!("/dns-query/{wrong}"), "social.example").await;
    assert_eq!(status, 403, "{body}");
    // Revoked: the next connection is refused.
    assert!(edudns::admin::tokens::revoke(&file, &stored.id).unwrap());
    let (status, _) = doh_get(doh, &format!("/dns-query/{token}"), "social.example").await;
    assert_eq!(status, 403);
    assert!(server.counters().band_token_refused >= 3);
    // The token never appears in the metrics.
    let (_, _, metrics) = http_get(server.running.management_addr, "/metrics").await;
    assert!(!metrics.contains(&token[9..]), "a token in /metrics");
}

/// A rustls client trusting the test CA.
fn client_config(ca: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn tls_connect(addr: SocketAddr, ca: &str, alpn: &[u8]) -> TlsStream {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(ca, alpn));
    let name = rustls::pki_types::ServerName::try_from("dns.test").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

fn leaf(stream: &TlsStream) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn dot_query(stream: &mut TlsStream, id: u16, name: &str) -> Message {
    let wire = query_message(id, name, RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&wire);
    stream.write_all(&framed).await.unwrap();
    let len = stream.read_u16().await.unwrap();
    let mut buffer = vec![0; usize::from(len)];
    stream.read_exact(&mut buffer).await.unwrap();
    Message::from_vec(&buffer).unwrap()
}

/// GET `path?dns=<question for name>` over HTTP/1.1 with curl; (status, body).
async fn doh_get(addr: SocketAddr, path: &str, name: &str) -> (u16, String) {
    use base64::Engine;
    let wire = query_message(0, name, RecordType::A, false)
        .to_vec()
        .unwrap();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(wire);
    let (stdout, _) = run(
        "curl",
        &strings(&[
            "-sk",
            "--http1.1",
            "-o",
            "/dev/stderr",
            "-w",
            "%{http_code}",
            &format!("https://{addr}{path}?dns={encoded}"),
        ]),
    )
    .await;
    (stdout.trim().parse().unwrap_or(0), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_used_after_a_reload_and_open_connections_stay() {
    let pki = Pki::new();
    let server = start(&pki, "").await;
    let ca = pki.ca();
    let mut open = tls_connect(dot(&server), &ca, b"dot").await;
    let before = leaf(&open);
    assert_eq!(
        a_records(&dot_query(&mut open, 1, "bet.example.").await),
        ["10.99.0.1"]
    );
    pki.issue();
    let certificates = server.running.encrypted.certificates.clone().unwrap();
    assert!(edudns::encrypted::reload_certificates(
        &certificates,
        &server.running.handler
    ));
    // The open connection goes on answering.
    assert_eq!(
        a_records(&dot_query(&mut open, 2, "casino.example.").await),
        ["10.99.0.1"]
    );
    let fresh = tls_connect(dot(&server), &ca, b"dot").await;
    assert_ne!(
        leaf(&fresh),
        before,
        "a new handshake must get the new certificate"
    );
    // Broken files keep the certificate in use, counted.
    std::fs::write(pki.tls().join("dns.key"), "not a key").unwrap();
    assert!(!edudns::encrypted::reload_certificates(
        &certificates,
        &server.running.handler
    ));
    assert_eq!(server.counters().tls_certificate_reload_failed, 1);
    let still = tls_connect(doh(&server), &ca, b"h2").await;
    assert_eq!(leaf(&still), leaf(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_limited_per_client_and_never_stall_udp() {
    let pki = Pki::new();
    let server = start(
        &pki,
        "handshake_timeout_ms = 2000\nmax_handshakes_per_client = 4\nmax_body_bytes = 512",
    )
    .await;
    let ca = pki.ca();
    // A hostile client opens 20 connections and never says hello.
    let hostile: SocketAddr = "127.0.0.9:0".parse().unwrap();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(hostile).unwrap();
        stalled.push(socket.connect(dot(&server)).await.unwrap());
    }
    // Beyond its 4 handshakes the connections were closed at once.
    let waited = Instant::now();
    while server.counters().shed_encrypted_connections < 16
        && waited.elapsed() < Duration::from_secs(1)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.counters().shed_encrypted_connections,
        16,
        "connections beyond the handshake limit"
    );
    let mut byte = [0u8; 1];
    let last = stalled.last_mut().unwrap();
    assert!(
        matches!(
            tokio::time::timeout(Duration::from_millis(500), last.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        ),
        "a connection over the limit must be closed at once"
    );
    // Meanwhile UDP and another client's DoT answer at once.
    let asked = Instant::now();
    let udp = server
        .query_from("127.0.0.3", "bet.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&udp), ["10.99.0.1"]);
    let mut other = tls_connect(dot(&server), &ca, b"dot").await;
    assert_eq!(
        a_records(&dot_query(&mut other, 3, "bet.example.").await),
        ["10.99.0.1"]
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    // The stalled handshakes time out and are counted.
    let waited = Instant::now();
    while server.counters().tls_handshake_failed < 4 && waited.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.counters().tls_handshake_failed >= 4);
    // A DoH body over max_body_bytes is refused with 413.
    let (stdout, _) = run(
        "curl",
        &strings(&[
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "content-type: application/dns-message",
            "--data-binary",
            &"x".repeat(600),
            &format!("https://{}/dns-query", doh(&server)),
        ]),
    )
    .await;
    assert_eq!(stdout.trim(), "413");
}

/// The real binary: SIGHUP reloads the certificate; the open DoT
/// connection keeps answering and a new handshake gets the new leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_its_certificate_on_sighup() {
    use std::io::{BufRead, BufReader};
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lists")).unwrap();
    write(&dir.path().join("lists/gambling.txt"), GAMBLING);
    write(&dir.path().join("lists/social.txt"), SOCIAL);
    let config_path = dir.path().join("edudns.toml");
    write(&config_path, &config(&pki, ""));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edudns"))
        .args(["serve", "-c"])
        .arg(&config_path)
        .env("EDUDNS_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no {needle:?} in the log: {seen:#?}");
    };
    let line = wait_for("(DNS over TLS)");
    // SIGHUP is handled from "edudns started" on.
    wait_for("edudns started");
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let ca = pki.ca();
    let mut open = tls_connect(addr, &ca, b"dot").await;
    let before = leaf(&open);
    assert_eq!(
        a_records(&dot_query(&mut open, 1, "bet.example.").await),
        ["10.99.0.1"]
    );
    pki.issue();
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    wait_for("encrypted DNS certificate reloaded");
    assert_eq!(
        a_records(&dot_query(&mut open, 2, "casino.example.").await),
        ["10.99.0.1"],
        "the open connection goes on answering"
    );
    let fresh = tls_connect(addr, &ca, b"dot").await;
    assert_ne!(
        leaf(&fresh),
        before,
        "a new handshake gets the new certificate"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
