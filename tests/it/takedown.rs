//! The takedown list: a feed polled on loopback and pushes through the
//! management API apply to every band within seconds, with no failed query.

use crate::harness::*;
use axum::extract::State;
use hickory_proto::rr::RecordType;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn feed_server(body: Arc<Mutex<String>>) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route(
            "/takedown.txt",
            axum::routing::get(|State(b): State<Arc<Mutex<String>>>| async move {
                b.lock().unwrap().clone()
            }),
        )
        .with_state(body);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_feed_entry_blocks_every_band_within_two_seconds_without_failures() {
    let body = Arc::new(Mutex::new("# empty for now\n".to_string()));
    let feed = feed_server(body.clone()).await;
    let config = base_config(&format!(
        "[takedown]\nurl = \"http://{feed}/takedown.txt\"\nrefresh = \"1s\"\n"
    ));
    let server = TestServer::start(&config, None).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for src in ["127.0.0.2", "127.0.0.4"] {
        let (stop, answered) = (stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let blocked = query_udp(addr, src, "bet.example.", RecordType::A).await;
                assert!(src == "127.0.0.4" || a_records(&blocked) == ["10.99.0.1"]);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    *body.lock().unwrap() = "evil.example  # QĐ 99/QĐ-UBND 2026-11-24\n".into();
    let published = Instant::now();
    let mut took = None;
    while published.elapsed() < Duration::from_secs(5) {
        let staff = server
            .query_from("127.0.0.4", "www.evil.example.", RecordType::A)
            .await;
        if a_records(&staff) == ["10.99.0.1"] {
            took = Some(published.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client
            .await
            .expect("no failed query while the takedown applied");
    }
    let took = took.expect("takedown applied");
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    assert!(answered.load(Ordering::Relaxed) > 20);
    let young = server
        .query_from("127.0.0.2", "evil.example.", RecordType::A)
        .await;
    let (_, text) = extended_error(&young).unwrap();
    assert!(text.contains("takedown QĐ 99/QĐ-UBND"), "{text}");

    // Audited, and listed in the report.
    server.running.flush().unwrap();
    let db = rusqlite::Connection::open(server.path("stats.sqlite")).unwrap();
    let audited: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE action = 'takedown.add' AND subject = 'evil.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap())
        .date()
        .to_string();
    let (_, _, report) = server
        .api_get(&format!(
            "/api/v1/reports?school=s1&from={today}&to={today}"
        ))
        .await;
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["report"]["takedowns"][0]["domain"], "evil.example");
    assert_eq!(
        report["report"]["takedowns"][0]["reference"],
        "QĐ 99/QĐ-UBND"
    );

    // Removed from the feed: lifted again.
    *body.lock().unwrap() = "# nothing\n".into();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        a_records(
            &server
                .query_from("127.0.0.4", "www.evil.example.", RecordType::A)
                .await
        ),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_office_pushes_entries_through_the_api_with_its_token() {
    let hash: String = Sha256::digest(b"office-secret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = TestServer::start(
        &base_config(&format!("[takedown]\npush_token_sha256 = \"{hash}\"\n")),
        None,
    )
    .await;
    let api = server.running.management_addr;
    let body = r#"[{"domain": "Urgent.Example", "reference": "CV 7/SGDĐT", "date": "2026-11-24"}]"#;
    let json = ("Content-Type", "application/json");
    let post = |headers: Vec<(&'static str, &'static str)>, body: &'static str| async move {
        http_request(
            api,
            "127.0.0.1",
            "POST",
            "/api/v1/takedowns",
            &api.to_string(),
            &headers,
            body,
        )
        .await
        .0
    };
    assert_eq!(post(vec![json], body).await, 401, "no token");
    assert_eq!(
        post(vec![json, ("Authorization", "Bearer guess")], body).await,
        401,
        "wrong token"
    );
    assert_eq!(
        post(
            vec![
                ("Authorization", "Bearer office-secret"),
                ("Content-Type", "text/plain")
            ],
            body
        )
        .await,
        415
    );
    assert_eq!(
        post(
            vec![json, ("Authorization", "Bearer office-secret")],
            "[{\"domain\": \"bad name!\"}]"
        )
        .await,
        400
    );
    let started = Instant::now();
    assert_eq!(
        post(vec![json, ("Authorization", "Bearer office-secret")], body).await,
        200
    );
    let staff = server
        .query_from("127.0.0.4", "a.urgent.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&staff), vec!["10.99.0.1"], "every band, at once");
    assert!(started.elapsed() < Duration::from_secs(2));
    let (_, _, list) = server.api_get("/api/v1/takedowns").await;
    assert!(
        list.contains("urgent.example") && list.contains("CV 7/SGDĐT"),
        "{list}"
    );
}
