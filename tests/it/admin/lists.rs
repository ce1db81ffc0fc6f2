//! The categories API: each list's state and the lines ignored for
//! protected names.

use super::{FEED, call, categories_until, list_named, list_server, subscribed_config};
use crate::harness::{TestServer, a_records};
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use std::sync::Arc;

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
