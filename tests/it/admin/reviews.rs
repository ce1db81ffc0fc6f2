//! The review queue: scoped to the school, and accepting unblocks.

use super::{call, config};
use crate::harness::{TestServer, a_records};
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;

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
