//! `/healthz` and `/readyz` on the management listener, and `edudns health`
//! (the container health check) against the real server.

use crate::harness::*;
use crate::upstream::TestUpstream;
use std::process::Command;

fn readiness(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn health_command(server: &TestServer, ready: bool) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_edudns"));
    command
        .arg("health")
        .arg("--management")
        .arg(server.running.management_addr.to_string());
    if ready {
        command.arg("--ready");
    }
    command.output().await.unwrap()
}

#[tokio::test]
async fn ready_only_while_an_upstream_answers() {
    let upstream = TestUpstream::builder()
        .a("www.example", "192.0.2.10".parse().unwrap())
        .start()
        .await;
    // Silent from the start: nothing has ever answered.
    upstream.set_silent(true);
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    let management = server.running.management_addr;

    let (status, _, body) = http_get(management, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = http_get(management, "/readyz").await;
    let report = readiness(&body);
    assert_eq!(status, 503, "{body}");
    assert_eq!(report["ready"], false);
    assert_eq!(report["upstream"]["reachable"], false);
    assert!(
        report["upstream"]["error"]
            .as_str()
            .unwrap()
            .contains("no upstream answer"),
        "{body}"
    );
    assert_eq!(report["lists"]["loaded"], 2, "{body}");
    let output = health_command(&server, true).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    // Liveness is not readiness: the process is up.
    let output = health_command(&server, false).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // The upstream comes back: the probe sees it at the next request.
    server.upstream.as_ref().unwrap().set_silent(false);
    let (status, _, body) = http_get(management, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let report = readiness(&body);
    assert_eq!(report["ready"], true);
    assert_eq!(report["upstream"]["reachable"], true);
    let output = health_command(&server, true).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("200"));

    // A forwarded answer counts as a sign of life: no probe is sent while
    // answers are recent.
    server
        .query("www.example.", hickory_proto::rr::RecordType::A)
        .await;
    let before = server.upstream.as_ref().unwrap().queries();
    let (status, _, _) = http_get(management, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(server.upstream.as_ref().unwrap().queries(), before);
}

#[tokio::test]
async fn not_ready_while_a_category_has_no_list_loaded() {
    let upstream = TestUpstream::builder().start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // `social`'s only list is a subscription that was never downloaded.
    let config = base_config("").replace(
        "lists = [\"lists/social.txt\"]",
        &format!("lists = [{{ url = \"http://{closed}/list.txt\", name = \"feed\", format = \"plain\" }}]"),
    );
    let server = TestServer::start(&config, Some(upstream)).await;
    let (status, _, body) = http_get(server.running.management_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let report = readiness(&body);
    assert_eq!(
        report["lists"]["categories_without_lists"],
        serde_json::json!(["social"])
    );
    assert_eq!(
        report["lists"]["missing"],
        serde_json::json!([format!("social: feed (http://{closed}/list.txt)")])
    );
    assert_eq!(report["upstream"]["reachable"], true, "{body}");
}

#[test]
fn health_fails_when_nothing_listens() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_edudns"))
        .args(["health", "--management", &closed.to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}
