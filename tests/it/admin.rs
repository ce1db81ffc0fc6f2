//! The administration API: roles, errors, concurrent edits, changes applied
//! under load and kept across a restart, the audit log, temporary
//! allowances, the review queue, the OpenAPI document and the defences of
//! the listener. Everything against the real server on loopback.

use crate::harness::{
    ChromeDriver, TestServer, a_records, base_config, etag_of, http_request, serve_http,
};
use crate::upstream::TestUpstream;
use edudns::app::reload::{ConfigSource, Overrides};
use edudns::app::start;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Two schools: s1 (127.0.0.0/24, from the base config) and s2.
fn config() -> String {
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
async fn call(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_role_as_documented() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let school1 = server.token("school:s1");
    let school2 = server.token("school:s2");
    let auditor = server.token("auditor");
    let (_, head, _) = call(api, "GET", "/api/v1/bands", Some(&office), &[], "").await;
    let etag = etag_of(&head);
    let if_match = [("If-Match", etag.as_str())];
    // (method, path, body, headers, [none, office, school:s1, school:s2, auditor])
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        [u16; 5],
    );
    let cases: Vec<Case> = vec![
        ("GET", "/api/v1/whoami", "", &[], [401, 200, 200, 200, 200]),
        ("GET", "/api/v1/schools", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/schools/s1",
            "",
            &[],
            [401, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/v1/schools/nope",
            "",
            &[],
            [401, 404, 403, 403, 404],
        ),
        ("GET", "/api/v1/bands", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/bands/teen",
            "",
            &[],
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/bands/nope",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        ("GET", "/api/v1/office", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/categories",
            "",
            &[],
            [401, 200, 200, 200, 200],
        ),
        ("GET", "/api/v1/lists", "", &[], [401, 200, 200, 200, 200]),
        ("GET", "/api/v1/policy", "", &[], [401, 200, 403, 403, 200]),
        ("GET", "/api/v1/reviews", "", &[], [401, 200, 200, 200, 403]),
        (
            "GET",
            "/api/v1/reviews?status=bogus",
            "",
            &[],
            [401, 400, 400, 400, 403],
        ),
        (
            "GET",
            "/api/v1/allowances",
            "",
            &[],
            [401, 200, 200, 200, 403],
        ),
        ("GET", "/api/v1/audit", "", &[], [401, 200, 403, 403, 403]),
        (
            "GET",
            "/api/v1/audit?limit=x",
            "",
            &[],
            [401, 400, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/takedowns",
            "",
            &[],
            [401, 200, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/reports?school=s1&from=2026-01-01&to=2026-01-02",
            "",
            &[],
            [401, 200, 200, 403, 200],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1","band":"teen"}"#,
            &[],
            [401, 200, 200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1","band":"nope"}"#,
            &[],
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1"}"#,
            &[],
            [401, 400, 400, 400, 400],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"not a name!","school":"s1","band":"teen"}"#,
            &[],
            [401, 400, 400, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/teen",
            r#"{"block":["gambling"]}"#,
            &if_match,
            [401, 200, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/teen",
            r#"{"blok":["gambling"]}"#,
            &[],
            [401, 400, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/nope",
            r#"{"block":[]}"#,
            &[("If-Match", "*")],
            [401, 404, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/schools/s2",
            r#"{"deny":["x.example"]}"#,
            &[("If-Match", "*")],
            [401, 200, 403, 200, 403],
        ),
        (
            "POST",
            "/api/v1/office/deny",
            r#"{"domain":"office-deny.example"}"#,
            &[],
            [401, 200, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/office/other",
            r#"{"domain":"x.example"}"#,
            &[],
            [401, 404, 403, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/office/deny/office-deny.example",
            "",
            &[],
            [401, 200, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/allowances",
            r#"{"school":"s1","band":"young","domain":"social.example","minutes":45,"reason":"bài học"}"#,
            &[],
            [401, 201, 201, 403, 403],
        ),
        (
            "POST",
            "/api/v1/allowances",
            r#"{"school":"s1","band":"young","domain":"social.example","minutes":0}"#,
            &[],
            [401, 400, 400, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/allowances/999999",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/reviews/999999/accept",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        ("POST", "/api/v1/reload", "", &[], [401, 200, 403, 403, 403]),
        (
            "POST",
            "/api/v1/takedowns",
            "[]",
            &[],
            [401, 200, 403, 403, 403],
        ),
    ];
    let tokens = [
        None,
        Some(&office),
        Some(&school1),
        Some(&school2),
        Some(&auditor),
    ];
    for (method, path, body, headers, expected) in &cases {
        for (token, want) in tokens.iter().zip(expected) {
            let (status, _, answer) =
                call(api, method, path, token.map(|t| t.as_str()), headers, body).await;
            let role = match token {
                None => "no token".to_string(),
                Some(t) if *t == &office => "office".into(),
                Some(t) if *t == &school1 => "school:s1".into(),
                Some(t) if *t == &school2 => "school:s2".into(),
                Some(_) => "auditor".into(),
            };
            assert_eq!(status, *want, "{method} {path} as {role}: {answer}");
            if status >= 400 {
                assert!(
                    answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{method} {path} as {role}: errors carry a message: {answer}"
                );
            }
        }
    }
    // School staff see only their school.
    let (_, _, schools) = call(api, "GET", "/api/v1/schools", Some(&school2), &[], "").await;
    let ids: Vec<&str> = schools["schools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["s2"]);
    // A wrong-role attempt is counted, without any address or token in a label.
    let (_, _, metrics) = crate::harness::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("edudns_admin_refused_total{reason=\"forbidden\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"missing_token\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_band_change_applies_within_a_second_with_no_failed_query_and_survives_a_restart() {
    let upstream = TestUpstream::builder()
        .a("social.example", "192.0.2.7".parse().unwrap())
        .start()
        .await;
    let config = format!("# Hand-written note the API must keep.\n{}", config());
    let server = TestServer::start(&config, Some(upstream)).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let blocked = server.query("social.example.", RecordType::A).await;
    assert_eq!(
        a_records(&blocked),
        vec!["10.99.0.1"],
        "young blocks social"
    );

    // A client asks continuously while the office edits.
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let addr = server.addr;
    let client = {
        let (stop, asked, failed) = (stop.clone(), asked.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = tokio::time::timeout(
                    Duration::from_secs(3),
                    crate::harness::query_udp(addr, "127.0.0.2", "casino.example.", RecordType::A),
                )
                .await
                .is_ok_and(|m| a_records(&m) == vec!["10.99.0.1"]);
                asked.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, head, before) = call(api, "GET", "/api/v1/bands/young", Some(&office), &[], "").await;
    assert_eq!(before["block"], json!(["gambling", "social"]));
    let etag = etag_of(&head);
    let started = Instant::now();
    let (status, head, answer) = call(
        api,
        "PATCH",
        "/api/v1/bands/young",
        Some(&office),
        &[("If-Match", &etag), ("Origin", &format!("http://{api}"))],
        r#"{"block":["gambling"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["value"]["block"], json!(["gambling"]));
    assert_ne!(etag_of(&head), etag, "a change gives a new ETag");
    // The new verdict is in force within one second.
    loop {
        let m = server.query("social.example.", RecordType::A).await;
        if a_records(&m) == vec!["192.0.2.7"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not applied within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    assert!(asked.load(Ordering::Relaxed) > 10);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no query failed during the change"
    );
    eprintln!("band change in force after {took:?}");

    // Persisted: comments kept, mode 0600, and the audit log says who and what.
    let path = server.path("edudns.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# Hand-written note the API must keep."));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (_, _, audit) = call(api, "GET", "/api/v1/audit", Some(&office), &[], "").await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "band.update");
    assert_eq!(entry["subject"], "band:young");
    assert_eq!(entry["role"], "office");
    assert_eq!(entry["actor"], "test office");
    assert!(entry["before"].as_str().unwrap().contains("social"));
    assert!(!entry["after"].as_str().unwrap().contains("social"));

    // A restart on the same files keeps the change.
    let TestServer {
        running,
        dir,
        upstream,
        ..
    } = server;
    drop(running);
    let overrides = Overrides {
        upstreams: upstream.iter().map(|u| u.addr).collect(),
        ..Overrides::default()
    };
    let again = start(
        ConfigSource::File(dir.path().join("edudns.toml")),
        overrides,
    )
    .await
    .unwrap();
    let m = crate::harness::query_udp(
        again.dns_addrs()[0],
        "127.0.0.2",
        "social.example.",
        RecordType::A,
    )
    .await;
    assert_eq!(
        a_records(&m),
        vec!["192.0.2.7"],
        "still allowed after a restart"
    );
    drop(upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_editors_cannot_overwrite_each_other_and_a_bad_edit_changes_nothing() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let (_, head, _) = call(api, "GET", "/api/v1/bands/teen", Some(&office), &[], "").await;
    let read_by_both = etag_of(&head);
    let first = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", &read_by_both)],
        r#"{"deny":["a.example"]}"#,
    )
    .await;
    assert_eq!(first.0, 200, "{}", first.2);
    let second = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", &read_by_both)],
        r#"{"deny":["b.example"]}"#,
    )
    .await;
    assert_eq!(second.0, 412, "{}", second.2);
    assert_eq!(
        etag_of(&second.1),
        etag_of(&first.1),
        "412 carries the current ETag"
    );
    let missing = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[],
        r#"{"deny":["b.example"]}"#,
    )
    .await;
    assert_eq!(missing.0, 428);
    let (_, _, teen) = call(api, "GET", "/api/v1/bands/teen", Some(&office), &[], "").await;
    assert_eq!(teen["deny"], json!(["a.example"]), "the first edit stands");

    // Invalid: an unknown category and a broken domain, named by field.
    let text_before = std::fs::read_to_string(server.path("edudns.toml")).unwrap();
    let generation = server.running.handler.snapshot.load().generation;
    let (status, _, answer) = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        r#"{"block":["gambling","no-such-category"],"allow":["bad name!"]}"#,
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let keys: Vec<&str> = answer["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"band[1].block[1]"), "{answer}");
    assert!(keys.contains(&"band[1].allow[0]"), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no-such-category")
    );
    assert_eq!(
        std::fs::read_to_string(server.path("edudns.toml")).unwrap(),
        text_before
    );
    assert_eq!(
        server.running.handler.snapshot.load().generation,
        generation
    );
    let m = server
        .query_from("127.0.0.3", "bet.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&m), vec!["10.99.0.1"], "the running policy stays");
    let (_, _, metrics) = crate::harness::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("edudns_admin_changes_total{result=\"invalid\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("edudns_admin_changes_total{result=\"conflict\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_allowance_works_then_lapses_by_itself_and_is_audited() {
    let clock = Arc::new(edudns::policy::clock::ManualClock::new(
        jiff::Timestamp::now(),
    ));
    let upstream = TestUpstream::builder()
        .ttl(1)
        .a("social.example", "192.0.2.7".parse().unwrap())
        .start()
        .await;
    let server = TestServer::start_with_clock(&config(), Some(upstream), clock.clone()).await;
    let api = server.running.management_addr;
    let teacher = server.token("school:s1");
    let office = server.token("office");
    let (status, _, created) = call(
        api,
        "POST",
        "/api/v1/allowances",
        Some(&teacher),
        &[],
        r#"{"school":"s1","band":"young","domain":"social.example","minutes":45,"reason":"Bài học tin học"}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let young = server.query("www.social.example.", RecordType::A).await;
    assert_eq!(
        a_records(&young).len(),
        0,
        "no record upstream for www, but not the sinkhole: {young:?}"
    );
    let m = server.query("social.example.", RecordType::A).await;
    assert_eq!(a_records(&m), vec!["192.0.2.7"], "allowed for the lesson");
    let (_, _, explained) = call(
        api,
        "POST",
        "/api/v1/test",
        Some(&teacher),
        &[],
        r#"{"name":"social.example","school":"s1","band":"young"}"#,
    )
    .await;
    assert_eq!(explained["verdict"], "allowed");
    assert!(
        explained["rule"]
            .as_str()
            .unwrap()
            .contains("temporary allowance"),
        "{explained}"
    );
    // Another school's band is not affected.
    let other = call(
        api,
        "POST",
        "/api/v1/test",
        Some(&office),
        &[],
        r#"{"name":"social.example","school":"s2","band":"young"}"#,
    )
    .await;
    assert_eq!(other.2["verdict"], "blocked");

    // 46 minutes later it has lapsed, without anyone doing anything.
    clock.set(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(46 * 60));
    let m = server.query("social.example.", RecordType::A).await;
    assert_eq!(a_records(&m), vec!["10.99.0.1"], "blocked again");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, audit) = call(api, "GET", "/api/v1/audit", Some(&office), &[], "").await;
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        if actions.contains(&"allowance.expired") {
            assert!(actions.contains(&"allowance.add"));
            break;
        }
        assert!(Instant::now() < deadline, "lapse not audited: {actions:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, _, list) = call(api, "GET", "/api/v1/allowances", Some(&office), &[], "").await;
    assert_eq!(list["allowances"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_queue_is_scoped_to_the_school_and_accepting_unblocks() {
    let upstream = TestUpstream::builder()
        .a("casino.example", "192.0.2.9".parse().unwrap())
        .start()
        .await;
    let server = TestServer::start(&config(), Some(upstream)).await;
    let api = server.running.management_addr;
    {
        let store = server.running.store.lock().unwrap();
        for school in ["s1", "s2"] {
            edudns::admin::reviews::request(
                store.connection(),
                &edudns::admin::reviews::NewReview {
                    now: 1,
                    day: "2026-11-24",
                    school,
                    band: "teen",
                    domain: "casino.example",
                    category: "gambling",
                    comment: "<script>alert(1)</script>",
                },
            )
            .unwrap();
        }
    }
    let school1 = server.token("school:s1");
    let school2 = server.token("school:s2");
    let (_, _, mine) = call(
        api,
        "GET",
        "/api/v1/reviews?status=pending",
        Some(&school1),
        &[],
        "",
    )
    .await;
    let mine = mine["reviews"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["school"], "s1");
    let id = mine[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/reviews/{id}/accept");
    assert_eq!(
        call(api, "POST", &path, Some(&school2), &[], "").await.0,
        403
    );
    let (status, _, accepted) = call(api, "POST", &path, Some(&school1), &[], "").await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(
        call(api, "POST", &path, Some(&school1), &[], "").await.0,
        409
    );
    let m = server
        .query_from("127.0.0.3", "casino.example.", RecordType::A)
        .await;
    assert_eq!(
        a_records(&m),
        vec!["192.0.2.9"],
        "accepted → allowed at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_refuses_forgery_oversize_bodies_h2c_and_token_guessing() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let domain = r#"{"domain":"x.example"}"#;
    // Another site's page posting to the API.
    let (status, head, _) = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Origin", "http://evil.example")],
        domain,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
    let fetch_site = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Sec-Fetch-Site", "cross-site")],
        domain,
    )
    .await;
    assert_eq!(fetch_site.0, 403);
    let form = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "domain=x.example",
    )
    .await;
    assert_eq!(form.0, 415);
    let same_origin = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Origin", &format!("http://{api}"))],
        domain,
    )
    .await;
    assert_eq!(same_origin.0, 200, "{}", same_origin.2);
    // Bodies over 1 MiB: refused from the Content-Length, before reading them.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(api).await.unwrap();
        let head = format!(
            "POST /api/v1/office/deny HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {office}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"domain\":\"",
            (1 << 20) + 100
        );
        let (mut reader, mut writer) = stream.into_split();
        let sender = tokio::spawn(async move {
            let _ = writer.write_all(head.as_bytes()).await;
            let _ = writer.write_all(&vec![b'a'; (1 << 20) + 100]).await;
            writer
        });
        let mut raw = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut raw))
            .await
            .expect("an answer before the body is complete")
            .unwrap();
        let text = String::from_utf8_lossy(&raw[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        drop(sender.await);
    }
    // HTTP/2 cleartext upgrade: answered over HTTP/1.1, never 101.
    let (status, head, _) = http_request(
        api,
        "127.0.0.1",
        "GET",
        "/api/v1/openapi.json",
        &api.to_string(),
        &[
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
        "",
    )
    .await;
    assert_ne!(status, 101, "{head}");
    assert!(head.starts_with("HTTP/1.1"), "{head}");
    // Prior-knowledge HTTP/2 preface: no HTTP/2 SETTINGS frame comes back.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut raw)).await;
        assert!(
            raw.is_empty() || raw.starts_with(b"HTTP/1.1 4"),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    // A revoked token stops working at once (and counts as a failure).
    let token = server.token("auditor");
    assert_eq!(
        call(api, "GET", "/api/v1/whoami", Some(&token), &[], "")
            .await
            .0,
        200
    );
    let id = token.split('_').nth(1).unwrap().to_string();
    let tokens_file = server
        .running
        .handler
        .snapshot
        .load()
        .config
        .admin
        .tokens_file
        .clone();
    assert!(edudns::admin::tokens::revoke(&tokens_file, &id).unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&tokens_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        call(api, "GET", "/api/v1/whoami", Some(&token), &[], "")
            .await
            .0,
        401
    );
    // Four more wrong tokens (five in all) lock the source out, even for a right token after.
    for _ in 0..4 {
        let (status, head, _) = call(
            api,
            "GET",
            "/api/v1/whoami",
            Some("edudns_00000000_guess"),
            &[],
            "",
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer")
        );
    }
    let (status, head, answer) = call(api, "GET", "/api/v1/whoami", Some(&office), &[], "").await;
    assert_eq!(status, 429, "{answer}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"));
    let (_, _, metrics) = crate::harness::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("edudns_admin_refused_total{reason=\"bad_token\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"locked_out\"} 1"));
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"cross_origin\"} 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_served_routes() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let (status, _, doc) = call(api, "GET", "/api/v1/openapi.json", None, &[], "").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), format!("/api/v1{path}")));
                let op = &item[method];
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["responses"].is_object(), "{method} {path} has responses");
            }
        }
    }
    let mut served: Vec<(String, String)> = edudns::web::API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "openapi.json and the router disagree");
    // Each documented route is really served (not the 404 fallback, not 405).
    for (method, path) in &served {
        let concrete = path
            .replace("{id}", "1")
            .replace("{list}", "deny")
            .replace("{domain}", "nothing.example")
            .replace("{decision}", "reject");
        let body = if method == "GET" || method == "DELETE" {
            ""
        } else {
            "{}"
        };
        let (status, _, answer) = call(api, method, &concrete, Some(&office), &[], body).await;
        assert_ne!(status, 405, "{method} {concrete}");
        assert!(
            !answer["error"]
                .as_str()
                .unwrap_or("")
                .contains("no such endpoint"),
            "{method} {concrete} is not routed"
        );
    }
    let (status, _, answer) = call(api, "GET", "/api/v1/nothing", Some(&office), &[], "").await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("openapi.json"));
}

/// Headless Chromium in a tablet-sized window, signed in to the console at
/// `api` with `token` (the page is Vietnamese first).
async fn console_signed_in(api: SocketAddr, token: &str) -> ChromeDriver {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_unticks_a_category_and_the_domain_becomes_allowed() {
    let upstream = TestUpstream::builder()
        .a("social.example", "192.0.2.7".parse().unwrap())
        .start()
        .await;
    let server = TestServer::start(&config(), Some(upstream)).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    {
        // A student's review comment and domain with markup: shown as text.
        let store = server.running.store.lock().unwrap();
        edudns::admin::reviews::request(
            store.connection(),
            &edudns::admin::reviews::NewReview {
                now: 1,
                day: "2026-11-24",
                school: "s1",
                band: "young",
                domain: "social.example",
                category: "social",
                comment: "<img src=x onerror=\"document.title='pwned'\">",
            },
        )
        .unwrap();
    }
    let blocked = server.query("social.example.", RecordType::A).await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);

    let browser = console_signed_in(api, &office).await;
    let checkbox = browser
        .find("input[data-band=\"young\"][data-category=\"social\"]")
        .await;
    let checked = browser
        .cmd(
            "GET",
            &format!("/element/{checkbox}/property/checked"),
            Value::Null,
        )
        .await;
    assert_eq!(checked, Value::Bool(true), "young blocks social");
    browser
        .cmd("POST", &format!("/element/{checkbox}/click"), json!({}))
        .await;
    let save = browser.find("button[data-save=\"young\"]").await;
    browser
        .cmd("POST", &format!("/element/{save}/click"), json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = browser
            .eval("return document.getElementById('status').textContent;")
            .await;
        if status.as_str().unwrap_or("").contains("Đã lưu") {
            break;
        }
        assert!(Instant::now() < deadline, "no confirmation: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = server.query("social.example.", RecordType::A).await;
    assert_eq!(
        a_records(&m),
        vec!["192.0.2.7"],
        "the console's change is in force"
    );

    // The review queue shows the student's markup as text, not as HTML.
    let tab = browser.find("button[data-tab=\"reviews\"]").await;
    browser
        .cmd("POST", &format!("/element/{tab}/click"), json!({}))
        .await;
    browser.find("#reviews tbody td").await;
    let cells = browser
        .eval("return document.getElementById('reviews').textContent;")
        .await;
    assert!(cells.as_str().unwrap().contains("<img src=x"), "{cells}");
    let images = browser
        .eval("return document.querySelectorAll('#reviews img').length;")
        .await;
    assert_eq!(images, json!(0));
    assert_ne!(browser.eval("return document.title;").await, json!("pwned"));
    // English on demand.
    let toggle = browser.find("#lang").await;
    browser
        .cmd("POST", &format!("/element/{toggle}/click"), json!({}))
        .await;
    let tab = browser
        .eval("return document.querySelector('button[data-tab=policy]').textContent;")
        .await;
    assert_eq!(tab, json!("Policy"));
    let policy = browser.find("button[data-tab=\"policy\"]").await;
    browser
        .cmd("POST", &format!("/element/{policy}/click"), json!({}))
        .await;
    browser.find("#grid input").await;

    let png = browser.cmd("GET", "/screenshot", Value::Null).await;
    let png = base64_decode(png.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"));
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("console-screenshot.png"), png).unwrap();
}

/// Standard base64 (WebDriver screenshots), without another dependency.
fn base64_decode(text: &str) -> Vec<u8> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_cli_work_and_the_tester_says_what_explain_says() {
    const BIN: &str = env!("CARGO_BIN_EXE_edudns");
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let config_path = server.path("edudns.toml");
    let bad = std::process::Command::new(BIN)
        .args([
            "tokens",
            "create",
            "--role",
            "school:nope",
            "--name",
            "x",
            "-c",
        ])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown school \"nope\""));
    let made = std::process::Command::new(BIN)
        .args([
            "tokens",
            "create",
            "--role",
            "school:s1",
            "--name",
            "Thầy Nam",
            "-c",
        ])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let (status, _, who) = call(api, "GET", "/api/v1/whoami", Some(&token), &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(who["role"], "school:s1");
    assert_eq!(who["name"], "Thầy Nam");
    let listed = std::process::Command::new(BIN)
        .args(["tokens", "list", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("school:s1") && listed.contains("Thầy Nam"),
        "{listed}"
    );
    assert!(
        !listed.contains(token.rsplit('_').next().unwrap()),
        "never the secret"
    );

    // The tester and `edudns explain` agree, line for line after the header.
    for (name, band, ip) in [
        ("www.bet.example", "teen", "127.0.0.3"),
        ("ok.bet.example", "young", "127.0.0.2"),
        ("social.example", "staff", "127.0.0.4"),
    ] {
        let (status, _, tested) = call(
            api,
            "POST",
            "/api/v1/test",
            Some(&token),
            &[],
            &json!({"name": name, "school": "s1", "band": band}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{tested}");
        let explained = std::process::Command::new(BIN)
            .args(["explain", "--client", ip, name, "-c"])
            .arg(&config_path)
            .output()
            .unwrap();
        let explained = String::from_utf8(explained.stdout).unwrap();
        let from_cli: Vec<&str> = explained
            .lines()
            .filter(|l| {
                l.starts_with("verdict:") || l.starts_with("rule:") || l.starts_with("category:")
            })
            .collect();
        let from_api: Vec<&str> = tested["explanation"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| {
                l.starts_with("verdict:") || l.starts_with("rule:") || l.starts_with("category:")
            })
            .collect();
        assert!(!from_cli.is_empty());
        assert_eq!(from_api, from_cli, "{name} for {band}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_listener_speaks_tls_when_configured() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["edudns.school.internal".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("admin.crt"), dir.path().join("admin.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = base_config(&format!(
        "[admin]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    ));
    let server = TestServer::start(&config, None).await;
    let api = server.running.management_addr;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert_path).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(api).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("edudns.school.internal").unwrap(), tcp)
        .await
        .expect("TLS with the configured certificate");
    tls.write_all(
        b"GET /api/v1/whoami HTTP/1.1\r\nHost: edudns.school.internal\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(15), async {
        let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        (
            String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"),
            (),
            (),
        )
    })
    .await
    .unwrap();
    assert!(
        !status,
        "metrics are not served in clear text on the TLS listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_shares_the_unchanged_trie_and_rereads_a_changed_list() {
    // A real list of a few hundred thousand names beside the small one.
    let big = crate::harness::shared_data("hagezi/gambling.txt");
    let config = config().replace(
        "lists = [\"lists/gambling.txt\"]",
        &format!("lists = [\"lists/gambling.txt\", \"{big}\"]"),
    );
    let server = TestServer::start(&config, None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let before = server.running.handler.snapshot.load_full();
    assert!(
        before.lists.domain_count() > 100_000,
        "{}",
        before.lists.domain_count()
    );
    let started = Instant::now();
    let (status, _, answer) = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        r#"{"deny":["new-deny.example"]}"#,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    let after = server.running.handler.snapshot.load_full();
    assert!(after.generation > before.generation);
    assert!(
        Arc::ptr_eq(&before.lists, &after.lists),
        "lists unchanged: the trie is shared"
    );
    assert!(
        took < Duration::from_secs(1),
        "edit with {} listed names took {took:?}",
        after.lists.domain_count()
    );
    eprintln!(
        "policy edit with {} listed names: {took:?}",
        after.lists.domain_count()
    );
    let m = server
        .query_from("127.0.0.3", "new-deny.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&m), vec!["10.99.0.1"]);

    // A list file that changed since is read again by the next edit.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        server.path("lists/gambling.txt"),
        "bet.example\nfresh-entry.example\n",
    )
    .unwrap();
    let (status, _, _) = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        r#"{"deny":[]}"#,
    )
    .await;
    assert_eq!(status, 200);
    let rebuilt = server.running.handler.snapshot.load_full();
    assert!(
        !Arc::ptr_eq(&after.lists, &rebuilt.lists),
        "a changed list is parsed again"
    );
    let m = server
        .query_from("127.0.0.3", "fresh-entry.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&m), vec!["10.99.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_safe_search_are_edited_like_every_other_field() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let patch = json!({
        "safe_search": true,
        "youtube": "strict",
        "schedule": [{"category": "social", "days": ["mon-fri"], "windows": ["07:00-11:30"]}]
    });
    let (status, _, answer) = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        &patch.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let band = &answer["value"];
    assert_eq!(band["safe_search"], true);
    assert_eq!(band["youtube"], "strict");
    assert_eq!(band["schedule"][0]["category"], "social");
    // Tuesday 2026-11-24 09:00 in Hanoi is inside the window; 12:00 is not.
    let at = |time: &str| {
        json!({"name": "social.example", "school": "s1", "band": "teen", "at": format!("2026-11-24T{time}:00+07:00")}).to_string()
    };
    let (_, _, inside) = call(
        api,
        "POST",
        "/api/v1/test",
        Some(&office),
        &[],
        &at("09:00"),
    )
    .await;
    assert_eq!(inside["verdict"], "blocked", "{inside}");
    assert!(
        inside["explanation"]
            .as_str()
            .unwrap()
            .contains("schedule:"),
        "{inside}"
    );
    let (_, _, outside) = call(
        api,
        "POST",
        "/api/v1/test",
        Some(&office),
        &[],
        &at("12:00"),
    )
    .await;
    assert_eq!(outside["verdict"], "allowed", "{outside}");
    let (_, _, google) = call(
        api,
        "POST",
        "/api/v1/test",
        Some(&office),
        &[],
        &json!({"name": "www.google.com", "school": "s1", "band": "teen"}).to_string(),
    )
    .await;
    assert_eq!(google["verdict"], "safe_search", "{google}");
    // A bad window is refused, naming it.
    let bad = json!({"schedule": [{"category": "social", "windows": ["25:00-26:00"]}]});
    let (status, _, answer) = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        &bad.to_string(),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["issues"]
            .to_string()
            .contains("band[1].schedule[0].windows[0]"),
        "{answer}"
    );
    let bad_mode = call(
        api,
        "PATCH",
        "/api/v1/bands/teen",
        Some(&office),
        &[("If-Match", "*")],
        r#"{"youtube":"sometimes"}"#,
    )
    .await;
    assert_eq!(bad_mode.0, 422, "{}", bad_mode.2);
}

/// The subscribed list `feed` (20 names, then two protected names that must
/// be ignored), `missing` (404) and `slow` (held until the test opens
/// `gate`), served on loopback.
async fn list_server(gate: Arc<tokio::sync::Semaphore>) -> SocketAddr {
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

const FEED: &str = "# a list with bad data\nfeed0.example\nfeed1.example\nfeed2.example\nfeed3.example\nfeed4.example\nfeed5.example\nfeed6.example\nfeed7.example\nfeed8.example\nfeed9.example\nfeed10.example\nfeed11.example\nfeed12.example\nfeed13.example\nfeed14.example\nfeed15.example\nfeed16.example\nfeed17.example\nfeed18.example\nfeed19.example\ngoogle.com\ntongdai111.vn\n";

/// The base config with the gambling category also subscribed to `feed`
/// and `missing`, and to `slow` when `with_slow`.
fn subscribed_config(addr: SocketAddr, with_slow: bool) -> String {
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
async fn categories_until(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
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
fn list_named(categories: &Value, name: &str) -> Value {
    categories["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["lists"].as_array().unwrap())
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no list {name} in {categories}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_categories_api_shows_each_lists_state_and_the_lines_ignored_for_protected_names() {
    let addr = list_server(Arc::new(tokio::sync::Semaphore::new(0))).await;
    let upstream = TestUpstream::builder()
        .a("google.com", "192.0.2.8".parse().unwrap())
        .start()
        .await;
    let server = TestServer::start(&subscribed_config(addr, false), Some(upstream)).await;
    // Ready and in force (the reload after the download), and failed.
    let json = categories_until(&server, |j| {
        let feed = list_named(j, "feed");
        feed["state"] == "ready"
            && feed["entries"].is_u64()
            && list_named(j, "missing")["state"] == "failed"
    })
    .await;

    let feed = list_named(&json, "feed");
    assert_eq!(feed["state_label"], "đã tải / ready", "{feed}");
    assert_eq!(feed["source"], format!("http://{addr}/feed.txt"));
    assert!(
        feed["list"].as_str().unwrap().starts_with("feed"),
        "the existing fields stay: {feed}"
    );
    // Entries are the names in force: the list's 22 less the 2 ignored.
    assert_eq!(feed["entries"], 20, "{feed}");
    assert_eq!(feed["downloaded_entries"], 20, "{feed}");
    assert_eq!(feed["bytes"], FEED.len(), "{feed}");
    assert!(feed["last_download"].is_i64(), "{feed}");
    assert_eq!(feed["last_error"], Value::Null);
    assert_eq!(feed["downloading_since"], Value::Null);
    assert_eq!(feed["protected_ignored"], 2, "{feed}");
    let samples = feed["protected_samples"].as_array().unwrap();
    let google = samples
        .iter()
        .find(|s| s["entry"] == "google.com")
        .unwrap_or_else(|| panic!("google.com is a sample: {feed}"));
    assert_eq!(google["line"], 22, "{google}");
    assert!(
        google["protected"]
            .as_str()
            .unwrap()
            .ends_with("google.com"),
        "the protected name it would block: {google}"
    );
    assert!(
        samples.iter().any(|s| s["entry"] == "tongdai111.vn"),
        "{feed}"
    );

    // openapi.json documents exactly these fields.
    let (_, _, doc) = call(
        server.running.management_addr,
        "GET",
        "/api/v1/openapi.json",
        None,
        &[],
        "",
    )
    .await;
    let documented = |schema: &str| {
        let mut keys: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let served = |object: &Value| {
        let mut keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(served(&feed), documented("CategoryList"));
    assert_eq!(served(google), documented("IgnoredLine"));

    let missing = list_named(&json, "missing");
    assert_eq!(missing["state_label"], "lỗi / failed");
    assert!(
        missing["last_error"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    assert_eq!(missing["entries"], Value::Null);
    assert_eq!(missing["bytes"], Value::Null);
    assert_eq!(missing["protected_ignored"], 0);

    let local = list_named(&json, "lists/gambling.txt");
    assert_eq!(local["state"], "local", "{local}");
    assert_eq!(local["source"], Value::Null);
    assert_eq!(local["entries"], 2);
    let gambling = json["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gambling")
        .unwrap();
    assert_eq!(gambling["entries"], 22, "the local list and feed");
    assert_eq!(served(gambling), documented("Category"));

    // What the API says is what filtering does.
    let blocked = server.query("feed7.example.", RecordType::A).await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);
    let google = server.query("google.com.", RecordType::A).await;
    assert_eq!(a_records(&google), vec!["192.0.2.8"], "protected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_shows_the_lists_state_and_refreshes_while_one_downloads() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let addr = list_server(gate.clone()).await;
    let server = TestServer::start(&subscribed_config(addr, true), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");

    let browser = console_signed_in(api, &office).await;
    let label = browser
        .eval("return document.querySelector('button[data-tab=sources]').textContent;")
        .await;
    assert_eq!(label, json!("Danh sách"));
    browser.click("button[data-tab=\"sources\"]").await;

    // `slow` is held by the list server: shown as downloading while the
    // other two finish, with no click (the view refreshes itself).
    browser
        .find("tr[data-list=\"slow\"][data-state=\"downloading\"]")
        .await;
    browser
        .find("tr[data-list=\"feed\"][data-state=\"ready\"]")
        .await;
    browser
        .find("tr[data-list=\"missing\"][data-state=\"failed\"]")
        .await;
    let row = |name: &str| {
        format!("return document.querySelector('tr[data-list=\"{name}\"]').textContent;")
    };
    let feed = browser.eval(&row("feed")).await;
    let feed = feed.as_str().unwrap();
    assert!(feed.contains("đã tải"), "{feed}");
    assert!(feed.contains("20"), "entries: {feed}");
    assert!(
        feed.contains("2 dòng bị bỏ qua vì chặn tên được bảo vệ"),
        "{feed}"
    );
    let missing = browser.eval(&row("missing")).await;
    let missing = missing.as_str().unwrap();
    assert!(
        missing.contains("lỗi") && missing.contains("404"),
        "{missing}"
    );
    let slow = browser.eval(&row("slow")).await;
    assert!(slow.as_str().unwrap().contains("đang tải"), "{slow}");
    let summary = browser
        .eval("return document.getElementById('sources-summary').textContent;")
        .await;
    assert_eq!(
        summary,
        json!("1/3 danh sách tải về đã sẵn sàng; đang tải: 1; lỗi: 1")
    );
    let badge = browser
        .eval("return getComputedStyle(document.querySelector('tr[data-list=\"missing\"] .badge')).backgroundColor;")
        .await;
    assert_eq!(badge, json!("rgb(251, 228, 226)"), "failed is red");

    // The ignored lines open onto their samples.
    browser
        .click("tr[data-list=\"feed\"] details summary")
        .await;
    let sample = browser
        .eval("const d = document.querySelector('tr[data-list=\"feed\"] details'); return [d.open, d.querySelector('li').getClientRects().length > 0, d.querySelector('li').textContent];")
        .await;
    assert!(sample[0] == true && sample[1] == true, "shown: {sample}");
    let sample = sample[2].as_str().unwrap();
    assert!(
        sample.starts_with("dòng 22: google.com (bảo vệ: ") && sample.ends_with("google.com)"),
        "{sample}"
    );

    // The download finishes: the view follows by itself.
    gate.add_permits(10);
    browser
        .find("tr[data-list=\"slow\"][data-state=\"ready\"]")
        .await;
    let open = browser
        .eval("return document.querySelector('tr[data-list=\"feed\"] details').open;")
        .await;
    assert_eq!(open, json!(true), "a refresh keeps the samples open");
    let summary = browser
        .eval("return document.getElementById('sources-summary').textContent;")
        .await;
    assert_eq!(
        summary,
        json!("2/3 danh sách tải về đã sẵn sàng; đang tải: 0; lỗi: 1")
    );

    // For the reviewer's eye (docs/administration.md).
    let png = browser.cmd("GET", "/screenshot", Value::Null).await;
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(
        target.join("console-lists-screenshot.png"),
        base64_decode(png.as_str().unwrap()),
    )
    .unwrap();

    // English on demand.
    browser.click("#lang").await;
    browser.find("tr[data-list=\"feed\"] details summary").await;
    let feed = browser.eval(&row("feed")).await;
    assert!(
        feed.as_str()
            .unwrap()
            .contains("2 lines ignored for protected names"),
        "{feed}"
    );
}
