//! Policy edits: applied under load within a second and kept across a
//! restart, two editors and bad edits, the shared trie, schedules and
//! safe search.

use super::{call, config};
use crate::harness::{TestServer, a_records, etag_of};
use crate::upstream::TestUpstream;
use edudns::app::reload::{ConfigSource, Overrides};
use edudns::app::start;
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
        upstreams: upstream
            .iter()
            .map(|u| edudns::config::UpstreamServer::Plain(u.addr))
            .collect(),
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
