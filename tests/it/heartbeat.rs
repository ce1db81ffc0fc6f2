//! The heartbeat: a school node with `[upload]` and `[central]` tells a
//! real office on loopback, every interval, that its filter is up and when
//! it last fetched the policy; the office's `/api/v1/district` shows it. A
//! heartbeat that cannot reach the office is counted and sent again; the
//! office refuses another school's heartbeat (403) and a malformed one
//! (400 naming the field).

use crate::harness::*;
use crate::ingest::{metric, post_to, proxy, until};
use crate::upstream::TestUpstream;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A node whose policy comes from `policy_url` (with the auditor token in
/// `central_token`, every second: central.rs's node) and whose statistics
/// and heartbeats go to `ingest_url` (with the school token in
/// `upload_token`), every second.
fn node_config(
    policy_url: &str,
    central_token: &Path,
    ingest_url: &str,
    upload_token: &Path,
) -> String {
    format!(
        "{}\n[upload]\nurl = \"{ingest_url}\"\ntoken_file = \"{}\"\ninterval = \"1s\"\nheartbeat_interval = \"1s\"\n",
        crate::central::node_config(policy_url, Some(central_token)),
        upload_token.display()
    )
}

/// The office's row of `school` in `/api/v1/district`.
async fn school_row(office: &TestServer, token: &str, school: &str) -> Value {
    let (status, answer) = crate::dashboard::get(office, "/api/v1/district", Some(token)).await;
    assert_eq!(status, 200, "{answer}");
    answer["schools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == school)
        .cloned()
        .unwrap_or_else(|| panic!("no school {school} in {answer}"))
}

/// A heartbeat body as a node of `school` sends it.
pub(crate) fn body(school: &str, filter_up: bool) -> Value {
    json!({
        "school": school,
        "node": "0123456789abcdef",
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": jiff::Timestamp::now().to_string(),
        "filter_up": filter_up,
        "last_policy_fetch": jiff::Timestamp::now().to_string(),
        "policy_etag": "\"5f2c9a0b1d7e4c3a\"",
        "lists": 2,
    })
}

/// POSTs a heartbeat to the office: (status, body).
pub(crate) async fn beat(office: &TestServer, token: &str, body: &Value) -> (u16, String) {
    post_to(office, "/api/v1/heartbeat", token, &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_heartbeats_to_the_office_which_shows_its_filter_up_and_last_policy_fetch() {
    let office = TestServer::start(&base_config(""), None).await;
    let office_api = office.running.management_addr;
    let secrets = tempfile::tempdir().unwrap();
    let central_token = secrets.path().join("central.token");
    let upload_token = secrets.path().join("upload.token");
    write(&central_token, &office.token("auditor"));
    write(&upload_token, &office.token("school:s1"));
    // The statistics and heartbeats go through a proxy the test cuts; the
    // policy comes straight from the office.
    let down = Arc::new(AtomicBool::new(true));
    let via = proxy(office_api, down.clone()).await;
    let upstream = TestUpstream::builder().start().await;
    let node = TestServer::start(
        &node_config(
            &format!("http://{office_api}/api/v1/policy"),
            &central_token,
            &format!("http://{via}/api/v1/ingest"),
            &upload_token,
        ),
        Some(upstream),
    )
    .await;
    let token = office.token("office");

    // The office unreachable: each heartbeat fails, is counted, and the
    // next comes at the next interval.
    until("two heartbeats failed", async || {
        metric(
            &node,
            "edudns_statistics_heartbeat_total",
            &[("result", "failed")],
        )
        .await
            >= 2.0
    })
    .await;
    let (_, _, ready) = http_get(node.running.management_addr, "/readyz").await;
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert!(
        ready["heartbeat"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the office")),
        "{ready}"
    );
    let row = school_row(&office, &token, "s1").await;
    assert_eq!(row["filter_up"], false, "{row}");
    assert_eq!(row["heartbeat_at"], Value::Null, "{row}");
    assert_eq!(row["last_policy_fetch"], Value::Null, "{row}");

    // Back: the next heartbeat says the filter is up.
    down.store(false, Ordering::Relaxed);
    until("the district shows s1's filter up", async || {
        school_row(&office, &token, "s1").await["filter_up"] == true
    })
    .await;
    let row = school_row(&office, &token, "s1").await;
    let at = |field: &str| -> jiff::Timestamp {
        row[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {row}"))
            .parse()
            .unwrap()
    };
    let now = jiff::Timestamp::now().as_second();
    for field in ["heartbeat_at", "last_policy_fetch"] {
        let age = now - at(field).as_second();
        assert!((0..60).contains(&age), "{field} is {age} s old: {row}");
    }
    // The ETag of the policy the office serves, shortened.
    let (_, head, _) = office.api_get("/api/v1/policy").await;
    let etag = etag_of(&head);
    let short: String = etag
        .trim_start_matches("W/")
        .trim_matches('"')
        .chars()
        .take(12)
        .collect();
    assert_eq!(row["policy_etag"], json!(short), "{row}");
    assert!(
        metric(
            &node,
            "edudns_statistics_heartbeat_total",
            &[("result", "sent")]
        )
        .await
            >= 1.0
    );

    // What the office kept: the node's database id and version, and
    // nothing that looks like an address.
    let database = {
        let store = node.running.store.lock().unwrap();
        edudns::stats::store::database_id(store.connection()).unwrap()
    };
    let kept: Vec<(String, String, String, i64)> = {
        let store = office.running.store.lock().unwrap();
        let mut statement = store
            .connection()
            .prepare(
                "SELECT school, node, version || ' ' || started_at || ' ' || ifnull(policy_etag, ''), lists
                 FROM office_heartbeats",
            )
            .unwrap();
        statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(kept.len(), 1, "the latest of the school and node: {kept:?}");
    let (school, kept_node, rest, lists) = &kept[0];
    assert_eq!(
        (school.as_str(), kept_node.as_str()),
        ("s1", database.as_str())
    );
    assert!(rest.starts_with(env!("CARGO_PKG_VERSION")), "{rest}");
    assert_eq!(*lists, 2, "the node's two lists");
    assert!(!format!("{kept:?}").contains("127.0."), "{kept:?}");
    assert!(
        metric(
            &office,
            "edudns_heartbeat_received_total",
            &[("result", "stored")]
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn the_office_refuses_another_schools_heartbeat_and_names_the_bad_field() {
    let office = TestServer::start_with_upstream_addrs(
        &base_config(
            "\n[[school]]\nid = \"s2\"\nname = \"Trường Hai\"\nnetworks = [\"127.0.2.0/24\"]\n",
        ),
        vec![],
    )
    .await;
    let s1 = office.token("school:s1");
    let token = office.token("office");

    // A school's token, another school's heartbeat.
    let (status, text) = beat(&office, &s1, &body("s2", true)).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("cannot send the heartbeat of school s2"),
        "{text}"
    );
    // An office token is not a school's.
    let (status, text) = beat(&office, &token, &body("s1", true)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("may not send a heartbeat"), "{text}");

    // Malformed: each 400 names the field.
    let mut bad = body("s1", true);
    bad["filter_up"] = json!("yes");
    let (status, text) = beat(&office, &s1, &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("filter_up: must be true or false"), "{text}");
    let mut bad = body("s1", true);
    bad.as_object_mut().unwrap().remove("node");
    let (status, text) = beat(&office, &s1, &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("node: required"), "{text}");
    let mut bad = body("s1", true);
    bad["last_policy_fetch"] = json!("yesterday");
    let (status, text) = beat(&office, &s1, &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("last_policy_fetch: not an RFC 3339 time"),
        "{text}"
    );
    let (status, text) = post_to(&office, "/api/v1/heartbeat", &s1, "{\"school\": \"s1\"").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not a JSON object"), "{text}");

    // Nothing of those was kept.
    for school in ["s1", "s2"] {
        let row = school_row(&office, &token, school).await;
        assert_eq!(row["heartbeat_at"], Value::Null, "{row}");
    }
    assert_eq!(
        metric(
            &office,
            "edudns_heartbeat_received_total",
            &[("result", "refused")]
        )
        .await,
        6.0
    );

    // A good one is kept and shown, a later one replaces it.
    let (status, text) = beat(&office, &s1, &body("s1", true)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"stored\""), "{text}");
    let row = school_row(&office, &token, "s1").await;
    assert_eq!(row["filter_up"], true, "{row}");
    assert_eq!(row["policy_etag"], "5f2c9a0b1d7e", "{row}");
    let (status, _) = beat(&office, &s1, &body("s1", false)).await;
    assert_eq!(status, 200);
    let row = school_row(&office, &token, "s1").await;
    assert_eq!(row["filter_up"], false, "the latest wins: {row}");
    assert_eq!(row["last_day"], Value::Null, "no day sent: {row}");
}
