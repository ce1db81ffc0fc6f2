//! The warning page on the sinkhole: content, escaping, security headers,
//! the "blocked by mistake" form, accepting a review, HTTPS fast failure,
//! and the page in a real headless browser.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_edudns");

fn config() -> String {
    base_config("[warning_page]\ncontact = \"Thầy Nam, phòng Tin học\"\nhelp_lines = [\"Phòng tư vấn học đường: phòng 104\"]\n")
        .replace("management_listen = \"127.0.0.1:0\"", "management_listen = \"127.0.0.1:0\"\nhttp_listen = [\"127.0.0.1:0\"]\nhttps_listen = [\"127.0.0.1:0\"]")
}

fn token_of(body: &str) -> String {
    let start =
        body.find("name=\"token\" value=\"").expect("form token") + "name=\"token\" value=\"".len();
    body[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn the_page_explains_the_block_in_vietnamese_then_english_safely() {
    let server = TestServer::start(&config(), None).await;
    let http = server.running.http_addrs[0];
    let (status, head, body) = http_request(
        http,
        "127.0.0.2",
        "GET",
        "/secret-path?q=private-words",
        "www.bet.example",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 403);
    for text in [
        "Trang web này bị chặn theo quy định của nhà trường",
        "This website is blocked by your school's policy",
        "www.bet.example",
        "Cờ bạc / Gambling",
        "Trường Thử / Test school",
        "young",
        "111",
        "tongdai111.vn",
        "Thầy Nam, phòng Tin học",
        "Phòng tư vấn học đường",
        "Bị chặn nhầm?",
    ] {
        assert!(body.contains(text), "missing {text:?}");
    }
    assert!(
        body.find("bị chặn theo quy định").unwrap() < body.find("blocked by your school").unwrap(),
        "Vietnamese first"
    );
    assert!(
        !body.contains("secret-path") && !body.contains("private-words"),
        "path and query never echoed"
    );
    assert!(!body.contains("<script"), "no scripts");
    assert!(
        !body.contains("src=\"http") && !body.contains("href=\"http"),
        "no external resources"
    );
    assert!(body.len() < 30 * 1024, "{} bytes", body.len());
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(
        head.contains("referrer-policy: no-referrer") && head.contains("cache-control: no-store"),
        "{head}"
    );

    // The reason agrees with `explain`.
    let explain = Command::new(BIN)
        .args(["explain", "-c"])
        .arg(server.path("edudns.toml"))
        .args(["--client", "127.0.0.2", "www.bet.example"])
        .output()
        .unwrap();
    let explain = String::from_utf8(explain.stdout).unwrap();
    let rule = explain
        .lines()
        .find(|l| l.starts_with("rule:"))
        .unwrap()
        .trim_start_matches("rule:")
        .trim()
        .to_string();
    assert!(
        body.contains(&rule.replace('\'', "&#39;")),
        "page footer shows explain's rule {rule:?}"
    );

    // Staff do not block gambling: the same host is not a block page for them.
    let (status, _, body) =
        http_request(http, "127.0.0.4", "GET", "/", "www.bet.example", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("content filter") && !body.contains("Bị chặn nhầm"));
}

#[tokio::test]
async fn a_host_with_markup_is_never_reflected() {
    let server = TestServer::start(&config(), None).await;
    let http = server.running.http_addrs[0];
    for host in [
        "<script>alert(1)</script>.bet.example",
        "bet.example\"><img src=x>",
        "x.bet.example'onmouseover='a",
    ] {
        let (_, _, body) = http_request(http, "127.0.0.2", "GET", "/", host, &[], "").await;
        assert!(
            !body.contains("<script>alert")
                && !body.contains("<img")
                && !body.contains("onmouseover="),
            "{host}: {body}"
        );
    }
    let (status, _, _) = http_request(
        http,
        "127.0.0.2",
        "GET",
        "/favicon.ico",
        "bet.example",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, head, _) = http_request(
        http,
        "127.0.0.2",
        "GET",
        "/__edudns/page.css",
        "bet.example",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/css"));
}

#[tokio::test]
async fn the_review_form_records_once_refuses_forgery_and_accepting_unblocks() {
    let upstream = TestUpstream::builder()
        .a("bet.example", Ipv4Addr::new(192, 0, 2, 30))
        .start()
        .await;
    let server = TestServer::start(&config(), Some(upstream)).await;
    let http = server.running.http_addrs[0];
    let (_, _, page) = http_request(http, "127.0.0.2", "GET", "/", "bet.example", &[], "").await;
    let token = token_of(&page);
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", "http://bet.example"),
    ];

    let (status, _, _) = http_request(
        http,
        "127.0.0.2",
        "POST",
        "/__edudns/review",
        "bet.example",
        &form,
        "token=forged.00&comment=x",
    )
    .await;
    assert_eq!(status, 403, "a bad token is refused");
    let cross = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", "http://evil.example"),
    ];
    let (status, _, _) = http_request(
        http,
        "127.0.0.2",
        "POST",
        "/__edudns/review",
        "bet.example",
        &cross,
        &format!("token={token}"),
    )
    .await;
    assert_eq!(status, 403, "cross-site POST refused");

    let body = format!("token={token}&comment=C%E1%BA%A7n+cho+b%C3%A0i+t%E1%BA%ADp+%3Cb%3E");
    let (status, _, sent) = http_request(
        http,
        "127.0.0.2",
        "POST",
        "/__edudns/review",
        "bet.example",
        &form,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert!(sent.contains("Đã gửi yêu cầu"));
    let (status, _, again) = http_request(
        http,
        "127.0.0.2",
        "POST",
        "/__edudns/review",
        "bet.example",
        &form,
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        again.contains("Đã có yêu cầu"),
        "one request per domain, school and day"
    );

    let list = Command::new(BIN)
        .args(["reviews", "list", "-c"])
        .arg(server.path("edudns.toml"))
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("bet.example") && list.contains("pending") && list.contains("gambling"),
        "{list}"
    );
    assert!(
        list.contains("Cần cho bài tập <b>"),
        "comment stored as text: {list}"
    );
    let db = rusqlite::Connection::open(server.path("stats.sqlite")).unwrap();
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM reviews WHERE comment LIKE '%127.0.0%' OR domain LIKE '%127.0.0%'", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "no client address stored");

    // Rate limit per client address.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            http_request(
                http,
                "127.0.0.2",
                "POST",
                "/__edudns/review",
                "bet.example",
                &form,
                &body,
            )
            .await
            .0,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // Accept: the domain joins the school's allow list through a reload.
    let accept = Command::new(BIN)
        .args(["reviews", "accept", "-c"])
        .arg(server.path("edudns.toml"))
        .arg("1")
        .output()
        .unwrap();
    assert!(
        accept.status.success(),
        "{}",
        String::from_utf8_lossy(&accept.stderr)
    );
    assert!(
        !Command::new(BIN)
            .args(["reviews", "accept", "-c"])
            .arg(server.path("edudns.toml"))
            .arg("1")
            .output()
            .unwrap()
            .status
            .success(),
        "decided once"
    );
    server.running.reloader.reload("test").await.unwrap();
    let now = server
        .query_from("127.0.0.2", "bet.example.", RecordType::A)
        .await;
    assert_eq!(
        a_records(&now),
        vec!["192.0.2.30"],
        "accepted domain is allowed"
    );
}

#[tokio::test]
async fn https_without_a_school_ca_fails_fast() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&config(), None).await;
    let https = server.running.https_addrs[0];
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(https).await.unwrap();
    // The start of a TLS ClientHello record.
    let _ = stream
        .write_all(&[22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3])
        .await;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut reply))
        .await
        .expect("closed within 1 s")
        .unwrap();
    assert_eq!(
        reply,
        [21, 3, 3, 0, 2, 2, 40],
        "a fatal handshake_failure alert"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

// Multi-threaded: the browser is waited for on this thread while the
// server answers it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is installed (.ci/run installs it)");
    let server = TestServer::start(&config(), None).await;
    let http = server.running.http_addrs[0];
    let profile = tempfile::tempdir().unwrap();
    let screenshot = format!("{}/target/warning-page.png", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::remove_file(&screenshot);
    let common = |extra: &[&str]| -> std::process::Output {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!(
                "--host-resolver-rules=MAP www.bet.example 127.0.0.1:{}",
                http.port()
            ))
            .args(extra)
            .arg("http://www.bet.example/some/page")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let dom = common(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in [
        "Trang web này bị chặn",
        "This website is blocked",
        "www.bet.example",
        "Cờ bạc / Gambling",
        "111",
        "tongdai111.vn",
    ] {
        assert!(dom.contains(text), "chromium shows {text:?}: {dom}");
    }
    let shot = common(&[
        &format!("--screenshot={screenshot}"),
        "--window-size=412,1400",
    ]);
    assert!(
        std::path::Path::new(&screenshot).exists(),
        "screenshot written: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
}

#[tokio::test]
async fn https_with_the_school_ca_shows_the_page() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_dir = tempfile::tempdir().unwrap();
    let config = config().replace(
        "[warning_page]",
        &format!("[warning_page]\nca_dir = \"{}\"", ca_dir.path().display()),
    );
    // `edudns ca init` on the same configuration.
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(config_dir.path().join("lists")).unwrap();
    write(&config_dir.path().join("edudns.toml"), &config);
    let init = Command::new(BIN)
        .args(["ca", "init", "-c"])
        .arg(config_dir.path().join("edudns.toml"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ca_dir.path().join("ca.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    let server = TestServer::start(&config, None).await;
    let https = server.running.https_addrs[0];
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca_dir.path().join("ca.crt")).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = socket.connect(https).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("www.bet.example").unwrap(), tcp)
        .await
        .expect("the minted certificate chains to the school CA");
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: www.bet.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(
        text.contains("Trang web này bị chặn")
            && text.contains("Cờ bạc / Gambling")
            && text.contains("111"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_submits_the_form_in_chromium_and_it_reaches_reviews_list() {
    let server = TestServer::start(&config(), None).await;
    let http = server.running.http_addrs[0];
    let browser = ChromeDriver::start(
        412,
        1400,
        &[format!(
            "--host-resolver-rules=MAP www.bet.example 127.0.0.1:{}",
            http.port()
        )],
    )
    .await;
    browser
        .cmd(
            "POST",
            "/url",
            serde_json::json!({"url": "http://www.bet.example/"}),
        )
        .await;
    let textarea = browser.find("textarea").await;
    browser
        .cmd(
            "POST",
            &format!("/element/{textarea}/value"),
            serde_json::json!({"text": "Cần cho bài học lịch sử"}),
        )
        .await;
    let button = browser.find("button[type=submit]").await;
    browser
        .cmd(
            "POST",
            &format!("/element/{button}/click"),
            serde_json::json!({}),
        )
        .await;
    // The click submits the form; wait for the answer page.
    let mut source = serde_json::Value::Null;
    for _ in 0..50 {
        source = browser.cmd("GET", "/source", serde_json::Value::Null).await;
        if !source.as_str().unwrap_or("").contains("<textarea") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        source.as_str().unwrap_or("").contains("Đã gửi yêu cầu"),
        "{source}"
    );
    drop(browser);

    let list = Command::new(BIN)
        .args(["reviews", "list", "-c"])
        .arg(server.path("edudns.toml"))
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("www.bet.example")
            && list.contains("Cần cho bài học lịch sử")
            && list.contains("pending"),
        "{list}"
    );
}
