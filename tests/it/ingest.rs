//! Statistics flow up: two school nodes send each closed day to an office
//! node over HTTP (through a proxy the test cuts, as a down office), every
//! day arrives once, and the district report is the sum of the nodes'
//! exact counts with k-anonymity applied once at the end. Tampered inputs,
//! a wrong key, a second version of a kept day and another school's token
//! are refused.

use crate::harness::*;
use edudns::stats::report::Stage;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A TCP proxy to `target` that, while `down`, closes every connection at
/// once (the office unreachable).
pub(crate) async fn proxy(target: SocketAddr, down: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if down.load(Ordering::Relaxed) {
                drop(client);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut office) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut office).await;
                }
            });
        }
    });
    addr
}

/// A TCP proxy to `target` that passes requests on but, while `lose` is
/// above zero, drops the office's answer to one request (the office kept
/// the day; the node never hears it) and counts `lose` down.
pub(crate) async fn lossy_proxy(target: SocketAddr, lose: Arc<AtomicUsize>) -> SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let lose = lose.clone();
            tokio::spawn(async move {
                let Ok(mut office) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let losing = lose
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if !losing {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut office).await;
                    return;
                }
                let (mut from_client, _) = client.split();
                let (mut from_office, mut to_office) = office.split();
                // The request goes through; the first bytes of the answer
                // end the connection instead of reaching the node.
                let mut answer = [0u8; 1];
                tokio::select! {
                    _ = tokio::io::copy(&mut from_client, &mut to_office) => {}
                    _ = from_office.read(&mut answer) => {}
                }
            });
        }
    });
    addr
}

/// The local date `days` days ago in the test schools' time zone.
pub(crate) fn day_ago(days: i64) -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
    let t =
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - days * 86_400).unwrap();
    t.to_zoned_datetime(tz).date().to_string()
}

/// Rows of the hourly roll-up `days` days ago: (band, category, verdict, count).
pub(crate) fn seed(server: &TestServer, school: &str, days: i64, rows: &[(&str, &str, &str, i64)]) {
    let hour = (jiff::Timestamp::now().as_second() - days * 86_400) / 3600;
    let store = server.running.store.lock().unwrap();
    for (band, category, verdict, count) in rows {
        store
            .connection()
            .execute(
                "INSERT INTO hourly (hour, school, band, category, verdict, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![hour, school, band, category, verdict, count],
            )
            .unwrap();
    }
}

pub(crate) async fn metric(server: &TestServer, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, _, body) = http_get(server.running.management_addr, "/metrics").await;
    sample(&parse_exposition(&body), name, labels)
}

pub(crate) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POST a body to the office's ingest with `token`: (status, body).
async fn post(office: &TestServer, token: &str, body: &str) -> (u16, String) {
    post_to(office, "/api/v1/ingest", token, body).await
}

/// POST a JSON body to `path` on the office with `token`: (status, body).
pub(crate) async fn post_to(
    office: &TestServer,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let (status, _, text) = http_request(
        office.running.management_addr,
        "127.0.0.1",
        "POST",
        path,
        "localhost",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    (status, text)
}

/// A school node for `school` sending to `url` with `token`; its key is
/// registered at the office. Its heartbeats go nowhere (heartbeat.rs tests
/// them): here they would race the heartbeats a test makes by hand.
pub(crate) async fn node(school: &str, url: &str, token: &str, office: &TestServer) -> TestServer {
    let config = base_config(&format!(
        "\n[upload]\nurl = \"{url}\"\ntoken_file = \"upload.token\"\ninterval = \"1s\"\nheartbeat_url = \"http://127.0.0.1:1/api/v1/heartbeat\"\n"
    ))
    .replace("id = \"s1\"", &format!("id = \"{school}\""));
    let server = TestServer::start_with_upstream_addrs(&config, vec![]).await;
    std::fs::write(server.path("upload.token"), token).unwrap();
    let key_dir = server
        .running
        .handler
        .snapshot
        .load()
        .config
        .stats
        .key_dir
        .clone();
    let (_, public) = edudns::stats::sign::init_keys(&key_dir, school).unwrap();
    let office_keys = office
        .running
        .handler
        .snapshot
        .load()
        .config
        .stats
        .key_dir
        .clone();
    std::fs::create_dir_all(&office_keys).unwrap();
    std::fs::copy(public, office_keys.join(format!("{school}.pub"))).unwrap();
    server
}

/// The signed merge input of `school` for `day` from `server`'s database.
fn input(server: &TestServer, school: &str, day: &str) -> edudns::stats::sign::SignedReport {
    let config = server.running.handler.snapshot.load().config.clone();
    let store = server.running.store.lock().unwrap();
    let report = edudns::stats::report::build_stage(
        store.connection(),
        &config,
        school,
        day,
        day,
        10,
        Stage::MergeInput,
    )
    .unwrap();
    let (key, _) = edudns::stats::sign::key_paths(&config.stats.key_dir, school);
    edudns::stats::sign::sign(report, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schools_send_their_days_through_an_outage_once_each_and_the_district_report_sums_them()
{
    let office = TestServer::start_with_upstream_addrs(&base_config(""), vec![]).await;
    let down = Arc::new(AtomicBool::new(true));
    let via = proxy(office.running.management_addr, down.clone()).await;
    let url = format!("http://{via}/api/v1/ingest");
    let a = node("s1", &url, &office.token("school:s1"), &office).await;
    let b = node("s2", &url, &office.token("school:s2"), &office).await;
    // Three closed days at each school; social blocked 6 a day at each:
    // under k = 10 per school and day, 36 in the district's three days.
    for days in 1..=3 {
        for (server, school, gambling) in [(&a, "s1", 40), (&b, "s2", 25)] {
            seed(
                server,
                school,
                days,
                &[
                    ("young", "none", "allowed", 500),
                    ("young", "gambling", "blocked", gambling),
                    ("teen", "social", "blocked", 6),
                ],
            );
        }
    }
    // The office is down: the nodes try, fail, and keep the days.
    until("both nodes failed twice", async || {
        metric(
            &a,
            "edudns_statistics_upload_total",
            &[("result", "failed")],
        )
        .await
            >= 2.0
            && metric(
                &b,
                "edudns_statistics_upload_total",
                &[("result", "failed")],
            )
            .await
                >= 2.0
    })
    .await;
    assert_eq!(
        metric(&a, "edudns_statistics_upload_pending_days", &[]).await,
        3.0
    );
    let (_, _, ready) = http_get(a.running.management_addr, "/readyz").await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["statistics_upload"]["pending_days"], 3, "{ready}");
    assert!(
        ready["statistics_upload"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the office")),
        "{ready}"
    );
    assert_eq!(
        metric(&office, "edudns_ingest_total", &[("result", "stored")]).await,
        0.0
    );
    // Back: each node catches up, in order.
    down.store(false, Ordering::Relaxed);
    until("six days stored", async || {
        metric(&office, "edudns_ingest_total", &[("result", "stored")]).await == 6.0
    })
    .await;
    for node in [&a, &b] {
        until("nothing pending", async || {
            metric(node, "edudns_statistics_upload_pending_days", &[]).await == 0.0
        })
        .await;
        assert_eq!(
            metric(
                node,
                "edudns_statistics_upload_total",
                &[("result", "sent")]
            )
            .await,
            3.0
        );
    }
    // More passes send nothing again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kept: i64 = office
        .running
        .store
        .lock()
        .unwrap()
        .connection()
        .query_row("SELECT COUNT(*) FROM ingest_days", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 6, "every node's day once");
    let days: Vec<String> = {
        let store = office.running.store.lock().unwrap();
        let mut statement = store
            .connection()
            .prepare(
                "SELECT date(d.day * 86400, 'unixepoch') FROM ingest_days d
                 JOIN ingest_sources s ON s.id = d.source WHERE s.school = 's1' ORDER BY d.day",
            )
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        days,
        [day_ago(3), day_ago(2), day_ago(1)],
        "the three closed days"
    );

    // The district report: the sums, suppression once at the end.
    let token = office.token("office");
    let auth = format!("Bearer {token}");
    let path = format!(
        "/api/v1/reports?district=all&from={}&to={}",
        day_ago(3),
        day_ago(1)
    );
    let (status, _, body) = http_request(
        office.running.management_addr,
        "127.0.0.1",
        "GET",
        &path,
        "localhost",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let report = &report["report"];
    assert_eq!(
        report["totals"]["queries"],
        3 * (500 + 40 + 6 + 500 + 25 + 6)
    );
    assert_eq!(report["totals"]["blocked"], 3 * (40 + 6 + 25 + 6));
    let cell = |key: &str| {
        report["blocked_by_category"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| c["count"].clone())
    };
    assert_eq!(cell("gambling"), Some(serde_json::json!(3 * (40 + 25))));
    assert_eq!(
        cell("social"),
        Some(serde_json::json!(36)),
        "6 a day per school is under k; the district's 36 is shown"
    );
    assert_eq!(report["schools"].as_array().unwrap().len(), 2);
    // The CSV has the same numbers.
    let (status, _, csv) = http_request(
        office.running.management_addr,
        "127.0.0.1",
        "GET",
        &format!("{path}&format=csv"),
        "localhost",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.contains(&(3 * (40 + 25)).to_string()), "{csv}");
    // And the CLI, on the office's database and configuration.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edudns"))
        .args(["report", "district", "-c"])
        .arg(office.path("edudns.toml"))
        .args([
            "--from",
            &day_ago(3),
            "--to",
            &day_ago(1),
            "--schools",
            "s2",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["report"]["totals"]["queries"], 3 * (500 + 25 + 6));
    assert_eq!(cli["report"]["schools"][0]["id"], "s2");
}

#[tokio::test]
async fn the_office_refuses_tampered_inputs_other_keys_second_versions_and_other_schools() {
    let office = TestServer::start_with_upstream_addrs(&base_config(""), vec![]).await;
    // Nodes whose upload points nowhere: the test sends by hand.
    let s1 = office.token("school:s1");
    let s2 = office.token("school:s2");
    let a = node("s1", "http://127.0.0.1:1/api/v1/ingest", &s1, &office).await;
    let b = node("s2", "http://127.0.0.1:1/api/v1/ingest", &s2, &office).await;
    seed(&a, "s1", 1, &[("young", "gambling", "blocked", 12)]);
    seed(&b, "s2", 1, &[("young", "gambling", "blocked", 30)]);
    let day = day_ago(1);
    let good = input(&a, "s1", &day);
    let text = serde_json::to_string(&good).unwrap();

    let (status, body) = post(&office, &s1, &text).await;
    assert_eq!((status, body.contains("\"stored\"")), (200, true), "{body}");
    let (status, body) = post(&office, &s1, &text).await;
    assert_eq!(
        (status, body.contains("\"duplicate\"")),
        (200, true),
        "the same input again counts once: {body}"
    );

    // Tampered: a number changed after signing.
    let mut tampered = good.clone();
    tampered.report.totals.blocked += 1;
    let (status, body) = post(&office, &s1, &serde_json::to_string(&tampered).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("changed"), "{body}");

    // Signed by a key the office does not know.
    let stranger = tempfile::tempdir().unwrap();
    let (key, _) = edudns::stats::sign::init_keys(stranger.path(), "s1").unwrap();
    let other_key = edudns::stats::sign::sign(good.report.clone(), &key).unwrap();
    let (status, body) = post(&office, &s1, &serde_json::to_string(&other_key).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("none of"), "{body}");

    // A second, different version of a day the office kept (a replay of
    // an older copy, or a forged one): refused, the first stays.
    seed(&a, "s1", 1, &[("teen", "social", "blocked", 3)]);
    let second = input(&a, "s1", &day);
    let (status, body) = post(&office, &s1, &serde_json::to_string(&second).unwrap()).await;
    assert_eq!(status, 409, "{body}");

    // A school's token cannot send for another school.
    let theirs = input(&b, "s2", &day);
    let (status, body) = post(&office, &s1, &serde_json::to_string(&theirs).unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("cannot send statistics of school s2"),
        "{body}"
    );

    // A future day, a final (published) report, and no JSON at all.
    let mut future = input(&b, "s2", &day);
    future.report.from = day_ago(-3);
    future.report.to = day_ago(-3);
    let key_b = edudns::stats::sign::key_paths(
        &b.running.handler.snapshot.load().config.stats.key_dir,
        "s2",
    )
    .0;
    let future = edudns::stats::sign::sign(future.report, &key_b).unwrap();
    let (status, body) = post(&office, &s2, &serde_json::to_string(&future).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("in the future"), "{body}");
    let mut published = input(&b, "s2", &day).report;
    published.stage = Stage::Final;
    let published = edudns::stats::sign::sign(published, &key_b).unwrap();
    let (status, body) = post(&office, &s2, &serde_json::to_string(&published).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a merge input"), "{body}");
    let (status, body) = post(&office, &s2, "{\"report\": 1}").await;
    assert_eq!(status, 400, "{body}");
    // An office token is not a school's.
    let (status, _) = post(&office, &office.token("office"), &text).await;
    assert_eq!(status, 403);

    // One input kept in all; the refusals are counted.
    assert_eq!(
        metric(&office, "edudns_ingest_total", &[("result", "stored")]).await,
        1.0
    );
    assert_eq!(
        metric(&office, "edudns_ingest_total", &[("result", "refused")]).await,
        8.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_heard_the_office_keep_a_day_sends_it_again_and_it_counts_once() {
    let office = TestServer::start_with_upstream_addrs(&base_config(""), vec![]).await;
    let lose = Arc::new(AtomicUsize::new(1));
    let via = lossy_proxy(office.running.management_addr, lose.clone()).await;
    let url = format!("http://{via}/api/v1/ingest");
    let a = node("s1", &url, &office.token("school:s1"), &office).await;
    for days in [2, 1] {
        seed(
            &a,
            "s1",
            days,
            &[("young", "gambling", "blocked", 20 + days)],
        );
    }
    // The office keeps the first day, its answer is lost; the node builds
    // the day again (a new signature and generated_at) and sends it again:
    // the office answers "duplicate", the node goes on to the next day.
    let upload = async |result: &str| {
        metric(&a, "edudns_statistics_upload_total", &[("result", result)]).await
    };
    until("both days confirmed", async || {
        upload("sent").await + upload("duplicate").await >= 2.0
    })
    .await;
    assert_eq!(lose.load(Ordering::SeqCst), 0, "an answer was lost");
    assert_eq!(
        metric(&a, "edudns_statistics_upload_pending_days", &[]).await,
        0.0
    );
    assert!(upload("failed").await >= 1.0);
    assert_eq!(
        (upload("sent").await, upload("duplicate").await),
        (1.0, 1.0)
    );
    let ingest =
        async |result: &str| metric(&office, "edudns_ingest_total", &[("result", result)]).await;
    assert_eq!(
        (ingest("stored").await, ingest("duplicate").await),
        (2.0, 1.0)
    );
    let blocked = |office: &TestServer| -> i64 {
        office
            .running
            .store
            .lock()
            .unwrap()
            .connection()
            .query_row("SELECT SUM(blocked) FROM ingest_days", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(blocked(&office), 22 + 21, "each day once");

    // The node's numbers for the older day change after it was sent, and
    // its record of sent days is lost: the office keeps its first copy
    // (409), the node counts the conflict and still sends the days after
    // it instead of retrying the refused one forever.
    seed(&a, "s1", 2, &[("teen", "social", "blocked", 5)]);
    a.running
        .store
        .lock()
        .unwrap()
        .connection()
        .execute("DELETE FROM uploads", [])
        .unwrap();
    until(
        "the conflict counted and the next day confirmed",
        async || upload("conflict").await == 1.0 && upload("duplicate").await == 2.0,
    )
    .await;
    assert_eq!(
        metric(&a, "edudns_statistics_upload_pending_days", &[]).await,
        0.0
    );
    assert_eq!(blocked(&office), 22 + 21, "the first copy stays");
}
