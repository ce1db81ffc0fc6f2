//! The console's overview API: `GET /api/v1/district` on a real office
//! that two school nodes sent three closed days to (as in `ingest.rs`:
//! hourly rows seeded while the office is unreachable, then `[upload]`
//! sends them), and `GET /api/v1/dashboard` on a node. The numbers are the
//! seeded sums with k = 10 applied per day; a configured school that sent
//! nothing is listed as not reporting; roles and parameters are checked.

use crate::harness::*;
use crate::ingest::{day_ago, metric, node, proxy, seed, until};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// An office and the two school nodes that sent to it.
pub struct District {
    pub office: TestServer,
    /// School s1's node (in the office's configuration).
    pub a: TestServer,
    /// School s2's node (not in the office's configuration: known from
    /// what it sent).
    pub b: TestServer,
}

/// The gambling list's version in force on the seeded days.
pub const LIST_SHA256: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

/// Rows of the top blocked domains `days` days ago.
fn seed_top(server: &TestServer, school: &str, days: i64, rows: &[(&str, i64)]) {
    let store = server.running.store.lock().unwrap();
    for (domain, count) in rows {
        store
            .connection()
            .execute(
                "INSERT INTO top_blocked (day, school, domain, count) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![day_ago(days), school, domain, count],
            )
            .unwrap();
    }
}

/// The office (schools s1 and s3; s3 never sends), and nodes of s1 and s2
/// that sent days 3, 2 and 1 ago:
///
/// | day | s1                                  | s2                    |
/// |-----|-------------------------------------|-----------------------|
/// | 3   | gambling 40 (young), social 12 (teen), deny_list 3 (staff) | gambling 25 (young) |
/// | 2   | gambling 40, social 12              | gambling 25, social 6 |
/// | 1   | gambling 40, social 12              | gambling 25, social 6 |
///
/// and top blocked domains casino.example 12 + 5, bet.example 4.
pub async fn district() -> District {
    let office_config = base_config(
        r#"
[[school]]
id = "s3"
name = "Trường Ba"
networks = ["127.0.2.0/24"]
"#,
    );
    let office = TestServer::start_with_upstream_addrs(&office_config, vec![]).await;
    // Unreachable while the days are seeded, so no day is sent half-made.
    let down = Arc::new(AtomicBool::new(true));
    let via = proxy(office.running.management_addr, down.clone()).await;
    let url = format!("http://{via}/api/v1/ingest");
    let a = node("s1", &url, &office.token("school:s1"), &office).await;
    let b = node("s2", &url, &office.token("school:s2"), &office).await;
    for days in 1..=3 {
        seed(
            &a,
            "s1",
            days,
            &[
                ("young", "none", "allowed", 500),
                ("young", "gambling", "blocked", 40),
                ("teen", "social", "blocked", 12),
            ],
        );
        seed(&b, "s2", days, &[("young", "gambling", "blocked", 25)]);
        if days < 3 {
            seed(&b, "s2", days, &[("teen", "social", "blocked", 6)]);
        }
    }
    seed(&a, "s1", 3, &[("staff", "deny_list", "blocked", 3)]);
    // The nodes loaded their lists at start, after the seeded days: the
    // version in force on those days was loaded before.
    for server in [&a, &b] {
        let store = server.running.store.lock().unwrap();
        store
            .connection()
            .execute(
                "INSERT INTO list_versions (loaded_at, category, list, entries, sha256) VALUES (?1, 'gambling', 'lists/gambling.txt', 2, ?2)",
                rusqlite::params![jiff::Timestamp::now().as_second() - 10 * 86_400, LIST_SHA256],
            )
            .unwrap();
    }
    seed_top(&a, "s1", 1, &[("casino.example", 12), ("bet.example", 4)]);
    seed_top(&b, "s2", 2, &[("casino.example", 5)]);
    down.store(false, Ordering::Relaxed);
    until("six days stored", async || {
        metric(&office, "edudns_ingest_total", &[("result", "stored")]).await == 6.0
    })
    .await;
    District { office, a, b }
}

/// GET `path` on `server` with `token` (or none): (status, JSON).
pub async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, _, body) = http_request(
        server.running.management_addr,
        "127.0.0.1",
        "GET",
        path,
        "localhost",
        &headers,
        "",
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The day `date` of an answer's `blocked_by_day`, as {key: count} of `group`.
fn day(answer: &Value, date: &str, group: &str) -> Value {
    let day = answer["blocked_by_day"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no day {date} in {answer}"));
    let cells = day[group].as_array().unwrap();
    Value::Object(
        cells
            .iter()
            .map(|c| (c["key"].as_str().unwrap().to_string(), c["count"].clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_sums_what_the_schools_sent_per_day_with_k_and_names_who_stopped() {
    let District { office, a, b } = district().await;
    let token = office.token("office");
    let (status, answer) = get(&office, "/api/v1/district", Some(&token)).await;
    assert_eq!(status, 200, "{answer}");
    // The default period: the 30 days ending yesterday, every one present.
    assert_eq!(answer["from"], day_ago(30));
    assert_eq!(answer["to"], day_ago(1));
    assert_eq!(answer["k_anonymity"], 10);
    let days = answer["blocked_by_day"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[0]["date"], day_ago(30));
    // Days 1 and 2: 40 + 25 gambling, 12 + 6 social (6 alone would be
    // under k: k applies to the district's sum).
    for d in [1, 2] {
        assert_eq!(
            day(&answer, &day_ago(d), "by_category"),
            json!({"deny_list": 0, "gambling": 65, "social": 18})
        );
        assert_eq!(
            day(&answer, &day_ago(d), "by_band"),
            json!({"staff": 0, "teen": 18, "young": 65})
        );
    }
    // Day 3: deny_list 3 is hidden, and social 12 with it (complementary
    // suppression), so 3 cannot be had from the day's total.
    assert_eq!(
        day(&answer, &day_ago(3), "by_category"),
        json!({"deny_list": null, "gambling": 65, "social": null})
    );
    assert_eq!(
        day(&answer, &day_ago(3), "by_band"),
        json!({"staff": null, "teen": null, "young": 65})
    );
    // A day nothing was sent for is there, zero.
    assert_eq!(
        day(&answer, &day_ago(10), "by_category"),
        json!({"deny_list": 0, "gambling": 0, "social": 0})
    );
    let gambling = days[29]["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "gambling")
        .unwrap();
    assert_eq!(gambling["label"], "Cờ bạc / Gambling");
    // casino.example 12 + 5 is listed; bet.example 4 is under k.
    assert_eq!(
        answer["top_blocked_domains"],
        json!([{"count": 17, "domain": "casino.example"}])
    );

    // Every school: the office's own (s1, s3), then s2 that sent.
    let schools = answer["schools"].as_array().unwrap();
    let ids: Vec<&str> = schools.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["s1", "s3", "s2"]);
    for s in [&schools[0], &schools[2]] {
        assert_eq!(s["last_day"], day_ago(1), "{s}");
        assert_eq!(s["nodes"], 1);
        assert_eq!(s["reporting"], true);
        let received = s["last_received_at"].as_str().unwrap();
        assert!(received.parse::<jiff::Timestamp>().is_ok(), "{received}");
        let lists = s["list_versions"].as_array().unwrap();
        assert!(
            lists
                .iter()
                .any(|l| l["list"] == "lists/gambling.txt" && l["entries"] == 2),
            "{s}"
        );
        assert!(
            lists
                .iter()
                .all(|l| l["sha256"].as_str().unwrap().len() == 12)
        );
        // These nodes' heartbeats never reach the office (as an older
        // node's): the last report is there all the same.
        assert_eq!(
            (&s["filter_up"], &s["heartbeat_at"], &s["last_policy_fetch"]),
            (&json!(false), &Value::Null, &Value::Null),
            "{s}"
        );
    }
    assert_eq!(
        schools[1],
        json!({"id": "s3", "name": "Trường Ba", "last_day": null, "last_received_at": null,
               "nodes": 0, "list_versions": [], "reporting": false, "filter_up": false,
               "heartbeat_at": null, "last_policy_fetch": null, "policy_etag": null})
    );

    // A period of its own.
    let (status, answer) = get(
        &office,
        &format!("/api/v1/district?from={}&to={}", day_ago(3), day_ago(2)),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["blocked_by_day"].as_array().unwrap().len(), 2);
    assert_eq!(
        answer["top_blocked_domains"],
        json!([]),
        "5 on day 2 alone is under k"
    );

    // Roles: the auditor reads it, a school does not, nobody without a token.
    let (status, _) = get(&office, "/api/v1/district", Some(&office.token("auditor"))).await;
    assert_eq!(status, 200);
    let (status, answer) = get(
        &office,
        "/api/v1/district",
        Some(&office.token("school:s1")),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    let (status, _) = get(&office, "/api/v1/district", None).await;
    assert_eq!(status, 401);
    // Errors name the parameter.
    for (query, names) in [
        ("from=2026-02-30", "from: "),
        ("to=yesterday", "to: "),
        ("from=2026-12-05&to=2026-12-01", "to: "),
        ("from=2020-01-01&to=2026-01-01", "from, to: "),
    ] {
        let (status, answer) =
            get(&office, &format!("/api/v1/district?{query}"), Some(&token)).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(names),
            "{query}: {answer}"
        );
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shows_its_school_from_its_own_statistics() {
    let server = TestServer::start_with_upstream_addrs(&base_config(""), vec![]).await;
    seed(
        &server,
        "s1",
        3,
        &[
            ("young", "gambling", "blocked", 40),
            ("teen", "social", "blocked", 12),
            ("staff", "deny_list", "blocked", 3),
        ],
    );
    for d in [1, 2] {
        seed(
            &server,
            "s1",
            d,
            &[
                ("young", "gambling", "blocked", 40),
                ("teen", "social", "blocked", 12),
            ],
        );
    }
    seed_top(
        &server,
        "s1",
        1,
        &[("casino.example", 12), ("bet.example", 4)],
    );
    let school = server.token("school:s1");
    let (status, answer) = get(&server, "/api/v1/dashboard?school=s1", Some(&school)).await;
    assert_eq!(status, 200, "{answer}");
    // The default period: the 30 days ending today (the school's zone).
    assert_eq!(answer["to"], day_ago(0));
    assert_eq!(answer["from"], day_ago(29));
    assert_eq!(answer["school"], "s1");
    assert_eq!(answer["blocked_by_day"].as_array().unwrap().len(), 30);
    for d in [1, 2] {
        assert_eq!(
            day(&answer, &day_ago(d), "by_category"),
            json!({"deny_list": 0, "gambling": 40, "social": 12})
        );
    }
    assert_eq!(
        day(&answer, &day_ago(3), "by_category"),
        json!({"deny_list": null, "gambling": 40, "social": null})
    );
    assert_eq!(
        day(&answer, &day_ago(3), "by_band"),
        json!({"staff": null, "teen": null, "young": 40})
    );
    assert_eq!(
        day(&answer, &day_ago(0), "by_band"),
        json!({"staff": 0, "teen": 0, "young": 0})
    );
    assert_eq!(
        answer["top_blocked_domains"],
        json!([{"count": 12, "domain": "casino.example"}])
    );
    let (status, answer) = get(
        &server,
        &format!(
            "/api/v1/dashboard?school=s1&from={}&to={}",
            day_ago(3),
            day_ago(3)
        ),
        Some(&server.token("auditor")),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["blocked_by_day"].as_array().unwrap().len(), 1);
    assert_eq!(answer["top_blocked_domains"], json!([]));
    // Roles and parameters.
    let office = server.token("office");
    let (status, _) = get(&server, "/api/v1/dashboard?school=s1", Some(&office)).await;
    assert_eq!(status, 200);
    let other = server.token("school:s2");
    let (status, answer) = get(&server, "/api/v1/dashboard?school=s1", Some(&other)).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = get(&server, "/api/v1/dashboard", Some(&office)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("school: "));
    let (status, answer) = get(&server, "/api/v1/dashboard?school=s9", Some(&office)).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = get(
        &server,
        "/api/v1/dashboard?school=s1&to=2026-1-1",
        Some(&school),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("to: "));
}
