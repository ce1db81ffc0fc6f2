//! Subscribed lists against HTTP servers started on loopback (never the
//! internet): ETag/304, a 500 then recovery, a truncated body, a list that
//! shrinks 90 %, a bad SHA-256 pin, the wrong format, offline start from
//! the cache, and an update reaching the running service.

use crate::harness::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use edudns::config::{Download, ListSpec, ListsConfig};
use edudns::lists::download::{self, Refreshed, Rejected};
use edudns::lists::formats::ListFormat;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test list server answers.
#[derive(Default)]
struct Plan {
    body: String,
    etag: String,
    fail_next: usize,
    requests: usize,
}

type Shared = Arc<Mutex<Plan>>;

async fn serve_list(State(plan): State<Shared>, headers: HeaderMap) -> axum::response::Response {
    let mut plan = plan.lock().unwrap();
    plan.requests += 1;
    if plan.fail_next > 0 {
        plan.fail_next -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(plan.etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::ETAG, plan.etag.clone())], plan.body.clone()).into_response()
}

async fn list_server(plan: Shared) -> SocketAddr {
    let app = axum::Router::new()
        .route("/list.txt", axum::routing::get(serve_list))
        .with_state(plan);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn domains(n: usize, prefix: &str) -> String {
    (0..n).map(|i| format!("{prefix}{i}.example\n")).collect()
}

fn spec(dir: &std::path::Path, url: String, sha256: Option<String>) -> ListSpec {
    ListSpec {
        display: "feed".into(),
        path: dir.join("feed.txt"),
        format: ListFormat::Plain,
        place: edudns::config::ConfigPlace {
            key: "test".into(),
            line: 0,
        },
        download: Some(Download {
            name: "feed".into(),
            url,
            sha256,
            refresh: Duration::from_secs(3600),
        }),
    }
}

fn limits() -> ListsConfig {
    ListsConfig {
        cache_dir: std::env::temp_dir(),
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
        max_shrink: 0.5,
        max_skipped: 0.2,
        mirror: None,
        protected: Arc::new(edudns::lists::protected::ProtectedNames::embedded()),
        parallel_downloads: 4,
    }
}

const BACKOFF: Duration = Duration::from_millis(20);

#[tokio::test]
async fn etag_304_update_500_recovery_shrink_pin_and_format() {
    let plan: Shared = Arc::new(Mutex::new(Plan {
        body: domains(100, "a"),
        etag: "\"v1\"".into(),
        ..Plan::default()
    }));
    let addr = list_server(plan.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/list.txt");
    let spec = spec(dir.path(), url.clone(), None);
    let client = download::client(&limits());

    assert_eq!(
        download::refresh(&client, &spec, &limits(), BACKOFF).await,
        Ok(Refreshed::Updated { entries: 100 })
    );
    assert_eq!(
        download::read_meta(&spec.path).etag.as_deref(),
        Some("\"v1\"")
    );
    assert_eq!(
        download::refresh(&client, &spec, &limits(), BACKOFF).await,
        Ok(Refreshed::NotModified),
        "If-None-Match → 304"
    );

    // A 500, twice, then the new version: retried with backoff.
    {
        let mut p = plan.lock().unwrap();
        p.fail_next = 2;
        p.body = domains(120, "b");
        p.etag = "\"v2\"".into();
        p.requests = 0;
    }
    assert_eq!(
        download::refresh(&client, &spec, &limits(), BACKOFF).await,
        Ok(Refreshed::Updated { entries: 120 })
    );
    assert_eq!(plan.lock().unwrap().requests, 3);
    let good = std::fs::read_to_string(&spec.path).unwrap();

    // Shrinks 90 %: rejected, previous copy kept.
    {
        let mut p = plan.lock().unwrap();
        p.body = domains(12, "c");
        p.etag = "\"v3\"".into();
    }
    let shrunk = download::refresh(&client, &spec, &limits(), BACKOFF).await;
    assert!(
        matches!(
            shrunk,
            Err(Rejected::Shrunk {
                previous: 120,
                now: 12,
                ..
            })
        ),
        "{shrunk:?}"
    );
    assert_eq!(std::fs::read_to_string(&spec.path).unwrap(), good);
    assert!(
        download::read_meta(&spec.path)
            .last_error
            .unwrap()
            .contains("shrank")
    );

    // Not the expected format (an HTML error page).
    {
        let mut p = plan.lock().unwrap();
        p.body = "<html>\n<body>\n<h1>Service unavailable</h1>\n</body>\n</html>\n".repeat(10);
        p.etag = "\"v4\"".into();
    }
    let wrong = download::refresh(&client, &spec, &limits(), BACKOFF).await;
    assert!(
        matches!(wrong, Err(Rejected::WrongFormat { .. })),
        "{wrong:?}"
    );

    // A SHA-256 pin that does not match.
    {
        let mut p = plan.lock().unwrap();
        p.body = domains(130, "d");
        p.etag = "\"v5\"".into();
    }
    let pinned = self::spec(dir.path(), url, Some("0".repeat(64)));
    let pin = download::refresh(&client, &pinned, &limits(), BACKOFF).await;
    assert!(matches!(pin, Err(Rejected::Pin { .. })), "{pin:?}");
    assert_eq!(
        std::fs::read_to_string(&spec.path).unwrap(),
        good,
        "the last good copy stays"
    );
}

#[tokio::test]
async fn a_truncated_body_is_rejected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 2048];
            let _ = stream.read(&mut buffer).await;
            let body = domains(10, "t");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len() * 10
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), format!("http://{addr}/list.txt"), None);
    let result = download::refresh(&download::client(&limits()), &spec, &limits(), BACKOFF).await;
    assert!(
        matches!(result, Err(Rejected::Transfer(ref m)) if m.contains("truncated")),
        "{result:?}"
    );
    assert!(!spec.path.exists(), "nothing written");
}

#[tokio::test]
async fn the_service_starts_offline_from_its_cache_and_applies_updates() {
    // Offline: the URL points at a closed port; the cache holds the last good copy.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let subscription = |url: &str| {
        base_config("").replace(
            "lists = [\"lists/social.txt\"]",
            &format!("lists = [\"lists/social.txt\", {{ url = \"{url}\", name = \"feed\", format = \"plain\" }}]"),
        )
    };
    let config = subscription(&format!("http://{closed}/list.txt"));
    // No cached copy and no network: it still starts and filters with the rest.
    let server = TestServer::start(&config, None).await;
    assert_eq!(
        a_records(&server.query("www.social.example.", RecordType::A).await),
        vec!["10.99.0.1"]
    );
    assert!(
        server
            .running
            .handler
            .snapshot
            .load()
            .lists_loaded
            .iter()
            .all(|l| !l.display.contains("feed"))
    );
    drop(server);

    let cached = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cached.path().join("cache")).unwrap();
    write(&cached.path().join("cache/feed.txt"), &domains(5, "off"));
    let config = subscription(&format!("http://{closed}/list.txt")).replace(
        "[reload]",
        &format!(
            "[lists]\ncache_dir = \"{}\"\n[reload]",
            cached.path().join("cache").display()
        ),
    );
    let server = TestServer::start(&config, None).await;
    assert_eq!(
        a_records(&server.query("x.off3.example.", RecordType::A).await),
        vec!["10.99.0.1"],
        "filters offline from the cache"
    );
    drop(server);

    // Online: a new version on the server reaches the running service.
    let plan: Shared = Arc::new(Mutex::new(Plan {
        body: domains(20, "live"),
        etag: "\"1\"".into(),
        ..Plan::default()
    }));
    let addr = list_server(plan.clone()).await;
    let server = TestServer::start(&subscription(&format!("http://{addr}/list.txt")), None).await;
    let mut blocked = false;
    for _ in 0..50 {
        if a_records(&server.query("live7.example.", RecordType::A).await) == ["10.99.0.1"] {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        blocked,
        "the downloaded list is in force within 5 s of start"
    );
    let (_, _, metrics) = http_get(server.running.management_addr, "/metrics").await;
    assert!(
        metrics.contains("edudns_list_downloads_total{result=\"updated\",source=\"feed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_update_and_the_lists_api_show_failures() {
    let plan: Shared = Arc::new(Mutex::new(Plan {
        body: domains(40, "s"),
        etag: "\"1\"".into(),
        ..Plan::default()
    }));
    let addr = list_server(plan.clone()).await;
    let config = base_config("").replace(
        "lists = [\"lists/social.txt\"]",
        &format!("lists = [\"lists/social.txt\", {{ url = \"http://{addr}/list.txt\", name = \"feed\", format = \"plain\" }}]"),
    );
    let server = TestServer::start(&config, None).await;
    let bin = env!("CARGO_BIN_EXE_edudns");
    let config_path = server.path("edudns.toml");
    let run = move |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .arg("-c")
            .arg(&config_path)
            .output()
            .unwrap()
    };
    // Wait for the service's own first download (40 entries).
    for _ in 0..50 {
        if a_records(&server.query("s7.example.", RecordType::A).await) == ["10.99.0.1"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Shrink the list by 90 %: the update is rejected, with a reason.
    plan.lock().unwrap().body = domains(4, "s");
    plan.lock().unwrap().etag = "\"2\"".into();
    // Blocking here is fine: the list server runs on the runtime's workers.
    let update = run(&["lists", "update", "--source", "feed"]);
    assert_eq!(update.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&update.stderr).contains("shrank"),
        "{}",
        String::from_utf8_lossy(&update.stderr)
    );
    let status = std::process::Command::new(bin)
        .args(["lists", "status", "-c"])
        .arg(server.path("edudns.toml"))
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("feed") && status.contains("40") && status.contains("shrank"),
        "{status}"
    );
    let (code, _, body) = server.api_get("/api/v1/lists").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let feed = json["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subscription"]["name"] == "feed")
        .unwrap()
        .clone();
    assert!(
        feed["last_error"].as_str().unwrap().contains("shrank"),
        "{feed}"
    );
}

#[tokio::test]
async fn a_gzip_file_is_accepted() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(domains(30, "gz").as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    let app = axum::Router::new().route(
        "/list.txt.gz",
        axum::routing::get(move || async move { compressed.clone() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), format!("http://{addr}/list.txt.gz"), None);
    let result = download::refresh(&download::client(&limits()), &spec, &limits(), BACKOFF).await;
    assert_eq!(result, Ok(Refreshed::Updated { entries: 30 }));
    assert!(
        std::fs::read_to_string(&spec.path)
            .unwrap()
            .contains("gz7.example")
    );
}
