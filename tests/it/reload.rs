//! Hot reload: new snapshots swap in without a failed query; a broken
//! config or list keeps the running snapshot.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

async fn upstream() -> TestUpstream {
    TestUpstream::builder()
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .a("new0.example", Ipv4Addr::new(192, 0, 2, 50))
        .start()
        .await
}

#[tokio::test]
async fn queries_never_fail_across_several_reloads() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, wrong) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for worker in 0..4 {
        let (stop, answered, wrong) = (stop.clone(), answered.clone(), wrong.clone());
        clients.push(tokio::spawn(async move {
            let src = format!("127.0.0.{}", 2 + worker % 2);
            while !stop.load(Ordering::Relaxed) {
                let blocked = query_udp(addr, &src, "bet.example.", RecordType::A).await;
                let allowed = query_udp(addr, &src, "allowed.example.", RecordType::A).await;
                if a_records(&blocked) != ["10.99.0.1"] || a_records(&allowed) != ["192.0.2.10"] {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                answered.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    for round in 0..5 {
        // Each round lists one more domain; the reload must pick it up.
        let mut list = GAMBLING.to_string();
        for i in 0..=round {
            list.push_str(&format!("new{i}.example\n"));
        }
        write(&server.path("lists/gambling.txt"), &list);
        let generation = server
            .running
            .reloader
            .reload("test")
            .await
            .expect("reload succeeds");
        assert_eq!(generation, 2 + round as u64);
        let fresh = server
            .query(&format!("new{round}.example."), RecordType::A)
            .await;
        assert_eq!(
            a_records(&fresh),
            vec!["10.99.0.1"],
            "round {round}: new entry blocks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    // hickory's client would have panicked on a missing answer; wrong answers count here.
    assert_eq!(wrong.load(Ordering::Relaxed), 0);
    assert!(
        answered.load(Ordering::Relaxed) > 50,
        "queries kept flowing during reloads"
    );
    assert_eq!(server.running.reloader.successes.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn broken_config_or_missing_list_keeps_the_running_snapshot() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let config_path = server.path("edudns.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();

    write(
        &config_path,
        &good.replace(
            "[[band]]\nid = \"teen\"",
            "[[band]]\nid = \"teen\"\nbogus_key = 1",
        ),
    );
    let error = server.running.reloader.reload("test").await.unwrap_err();
    assert!(error.to_string().contains("bogus_key"), "{error}");

    write(
        &config_path,
        &good.replace("lists/social.txt", "lists/missing.txt"),
    );
    let error = server.running.reloader.reload("test").await.unwrap_err();
    assert!(error.to_string().contains("missing.txt"), "{error}");

    assert_eq!(server.running.reloader.failures.load(Ordering::Relaxed), 2);
    assert_eq!(
        server.running.handler.snapshot.load().generation,
        1,
        "old snapshot in force"
    );
    let still = server.query("www.social.example.", RecordType::A).await;
    assert_eq!(
        a_records(&still),
        vec!["10.99.0.1"],
        "old lists still filter"
    );
}

#[tokio::test]
async fn a_changed_list_file_is_picked_up_by_the_watcher() {
    let config = base_config("").replace("watch_interval_secs = 0", "watch_interval_secs = 1");
    let server = TestServer::start(&config, Some(upstream().await)).await;
    let before = server.query("new0.example.", RecordType::A).await;
    assert_eq!(a_records(&before), vec!["192.0.2.50"]);
    write(
        &server.path("lists/gambling.txt"),
        &format!("{GAMBLING}new0.example\n"),
    );
    let mut blocked = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = server.query("new0.example.", RecordType::A).await;
        assert_eq!(now.metadata.response_code, ResponseCode::NoError);
        if a_records(&now) == ["10.99.0.1"] {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "the watcher reloaded the changed list within 10 s");
}
