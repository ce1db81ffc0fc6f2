//! `[central]`: nodes pull their policy from the education office. An edit
//! in the office's API reaches a node within its interval; a bad policy
//! never replaces the running one; a node restarts from its cached copy
//! when the office is unreachable and refuses to start without any copy.

use crate::harness::*;
use crate::upstream::TestUpstream;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use edudns::app::reload::{ConfigSource, Overrides};
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node's own file: machine settings only, the policy from `url`.
pub(crate) fn node_config(url: &str, token_file: Option<&Path>) -> String {
    let token = token_file
        .map(|p| format!("token_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        r#"
[server]
dns_listen = ["127.0.0.1:0"]
management_listen = "127.0.0.1:0"

[upstream]
servers = ["127.0.0.1:1"]
timeout_ms = 1500

[blocking]
sinkhole_ipv4 = "10.99.0.1"
sinkhole_ipv6 = "fd99::1"

[reload]
watch_interval_secs = 0

[stats]
database = "state/stats.sqlite"

[central]
url = "{url}"
interval = "1s"
{token}"#
    )
}

async fn social_answer(node: SocketAddr) -> Vec<String> {
    a_records(&query_udp(node, "127.0.0.2", "social.example.", RecordType::A).await)
}

/// Polls until `social.example` (asked from band `young`) answers `want`.
async fn wait_for_social(node: SocketAddr, want: &[&str], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = social_answer(node).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "social.example still {got:?}, wanted {want:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn upstream_with_social() -> TestUpstream {
    TestUpstream::builder()
        .a("social.example", "192.0.2.7".parse().unwrap())
        .start()
        .await
}

fn metric(text: &str, result: &str) -> f64 {
    sample(
        &parse_exposition(text),
        "edudns_central_policy_fetches_total",
        &[("result", result)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_edit_reaches_the_node_within_its_interval() {
    let office = TestServer::start(&base_config(""), None).await;
    let office_api = office.running.management_addr;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("central.token");
    write(&token_file, &format!("{}\n", office.token("auditor")));

    // The document the office serves: its policy tables, with an ETag.
    let (status, head, body) = office.api_get("/api/v1/policy").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[[band]]") && body.contains("[[school]]"));
    assert!(!body.contains("[upstream]") && !body.contains("[server]"));
    let etag = etag_of(&head);
    let auth = format!("Bearer {}", office.token("auditor"));
    let (status, _, _) = http_request(
        office_api,
        "127.0.0.1",
        "GET",
        "/api/v1/policy",
        &office_api.to_string(),
        &[("Authorization", &auth), ("If-None-Match", &etag)],
        "",
    )
    .await;
    assert_eq!(status, 304);

    let node = TestServer::start(
        &node_config(
            &format!("http://{office_api}/api/v1/policy"),
            Some(&token_file),
        ),
        Some(upstream_with_social().await),
    )
    .await;
    // The office's band `young` blocks social networks: so does the node.
    assert_eq!(social_answer(node.addr).await, ["10.99.0.1"]);

    // The office unticks `social` for `young` in its API.
    let office_token = office.token("office");
    let (_, head, _) = office.api_get("/api/v1/bands/young").await;
    let etag = etag_of(&head);
    let auth = format!("Bearer {office_token}");
    let (status, _, body) = http_request(
        office_api,
        "127.0.0.1",
        "PATCH",
        "/api/v1/bands/young",
        &office_api.to_string(),
        &[
            ("Authorization", &auth),
            ("If-Match", &etag),
            ("Content-Type", "application/json"),
        ],
        r#"{"block":["gambling"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let took = wait_for_social(node.addr, &["192.0.2.7"], Duration::from_secs(5)).await;
    eprintln!("office edit in force on the node after {took:?} (interval 1 s)");

    // Later rounds are 304s; the metrics say so.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, _, metrics) = http_get(node.running.management_addr, "/metrics").await;
    assert!(metric(&metrics, "updated") >= 1.0, "{metrics}");
    assert!(metric(&metrics, "not_modified") >= 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "invalid"), 0.0);
    assert!(
        sample(
            &parse_exposition(&metrics),
            "edudns_central_policy_last_success_timestamp_seconds",
            &[]
        ) > 0.0
    );
}

/// What the test office serves.
struct Plan {
    body: String,
    etag: String,
}

type Shared = Arc<Mutex<Plan>>;

async fn serve_policy(State(plan): State<Shared>, headers: HeaderMap) -> axum::response::Response {
    let plan = plan.lock().unwrap();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(plan.etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::ETAG, plan.etag.clone())], plan.body.clone()).into_response()
}

async fn policy_server(plan: Shared) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route("/policy.toml", axum::routing::get(serve_policy))
        .with_state(plan);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, task)
}

async fn start_node(path: &Path, upstream: SocketAddr) -> edudns::app::Running {
    let overrides = Overrides {
        upstreams: vec![edudns::config::UpstreamServer::Plain(upstream)],
        fast_path: fast_path_override(),
        ..Overrides::default()
    };
    edudns::app::start(ConfigSource::File(path.to_path_buf()), overrides)
        .await
        .unwrap_or_else(|e| panic!("node did not start: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_never_replaces_the_running_one_and_restarts_use_the_cache() {
    let v1 = edudns::admin::edit::policy_tables(&base_config(""));
    assert!(v1.contains("block = [\"gambling\", \"social\"]"), "{v1}");
    let plan: Shared = Arc::new(Mutex::new(Plan {
        body: v1.clone(),
        etag: "\"v1\"".into(),
    }));
    let (office, office_task) = policy_server(plan.clone()).await;
    let upstream = upstream_with_social().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lists")).unwrap();
    write(&dir.path().join("lists/gambling.txt"), GAMBLING);
    write(&dir.path().join("lists/social.txt"), SOCIAL);
    let path = dir.path().join("edudns.toml");
    write(
        &path,
        &node_config(&format!("http://{office}/policy.toml"), None),
    );
    let cache = dir.path().join("state/central-policy.toml");

    let node = start_node(&path, upstream.addr).await;
    let dns = node.dns_addrs()[0];
    assert_eq!(social_answer(dns).await, ["10.99.0.1"]);
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), v1);

    // A broken policy: band `young` blocks a category nobody defined.
    let broken = v1.replace(
        "block = [\"gambling\", \"social\"]",
        "block = [\"gambling\", \"nope\"]",
    );
    *plan.lock().unwrap() = Plan {
        body: broken,
        etag: "\"v2\"".into(),
    };
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        social_answer(dns).await,
        ["10.99.0.1"],
        "the running policy stays"
    );
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), v1, "cache kept");
    let (_, _, metrics) = http_get(node.management_addr, "/metrics").await;
    // Refused once when downloaded, then again at each 304 for the same document.
    assert!(metric(&metrics, "invalid") >= 2.0, "{metrics}");
    let meta = std::fs::read_to_string(dir.path().join("state/central-policy.meta.json")).unwrap();
    assert!(meta.contains("band[0].block[1]"), "{meta}");
    assert!(meta.contains("nope"), "{meta}");

    // A good edit: `young` no longer blocks social networks.
    let v3 = v1.replace(
        "block = [\"gambling\", \"social\"]",
        "block = [\"gambling\"]",
    );
    *plan.lock().unwrap() = Plan {
        body: v3.clone(),
        etag: "\"v3\"".into(),
    };
    wait_for_social(dns, &["192.0.2.7"], Duration::from_secs(5)).await;
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), v3);
    drop(node);

    // The office goes away: the node restarts with the policy it had.
    office_task.abort();
    let _ = office_task.await;
    let node = start_node(&path, upstream.addr).await;
    assert_eq!(social_answer(node.dns_addrs()[0]).await, ["192.0.2.7"]);
    drop(node);

    // A node that never had a copy cannot start without the office, and says why.
    std::fs::remove_file(&cache).unwrap();
    let error = edudns::app::start(ConfigSource::File(path.clone()), Overrides::default())
        .await
        .err()
        .expect("no policy, no start")
        .to_string();
    assert!(
        error.contains("no central policy")
            && error.contains(&format!("http://{office}/policy.toml")),
        "{error}"
    );
}

#[test]
fn without_any_copy_and_no_office_serve_exits_69_so_systemd_retries() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edudns.toml");
    write(
        &path,
        &node_config(&format!("http://{closed}/api/v1/policy"), None),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edudns"))
        .args(["serve", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 69 (unavailable), not 78 (configuration error, which the unit does not retry).
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("no central policy"), "{stderr}");
    assert!(stderr.contains(&closed.to_string()), "{stderr}");
}
