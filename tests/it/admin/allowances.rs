//! Temporary allowances: they work, lapse by themselves and are audited.

use super::{call, config};
use crate::harness::{TestServer, a_records};
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
