//! What the running server counts and shows: exact counts in /metrics, the
//! SQLite roll-ups and the report API; small cells hidden; counts carried
//! over a restart; the opt-in incident log; the Grafana dashboard only uses
//! metrics that exist.

use super::{BIN, send, today, two_schools, upstream};
use crate::harness::*;
use edudns::app::reload::{ConfigSource, Overrides};
use edudns::app::start;
use hickory_proto::rr::RecordType;
use std::process::Command;

#[tokio::test]
async fn counts_match_a_known_query_mix_in_metrics_rollups_and_report() {
    let server = TestServer::start(&two_schools(), Some(upstream().await)).await;
    send(&server, "127.0.0.2", "bet.example.", 12).await; // young, gambling
    send(&server, "127.0.0.2", "www.social.example.", 11).await; // young, social
    send(&server, "127.0.0.2", "allowed.example.", 6).await; // young, allowed
    send(&server, "127.0.0.3", "casino.example.", 15).await; // teen, gambling
    send(&server, "127.0.0.3", "allowed.example.", 9).await; // teen, allowed
    send(&server, "127.0.1.9", "bet.example.", 4).await; // s2, unknown band = young

    let (status, head, body) = http_get(server.running.management_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/plain"), "{head}");
    let samples = parse_exposition(&body);
    let q = |school, band, category, verdict| {
        sample(
            &samples,
            "edudns_queries_total",
            &[
                ("school", school),
                ("band", band),
                ("category", category),
                ("verdict", verdict),
            ],
        )
    };
    assert_eq!(q("s1", "young", "gambling", "blocked"), 12.0);
    assert_eq!(q("s1", "young", "social", "blocked"), 11.0);
    assert_eq!(q("s1", "young", "none", "allowed"), 6.0);
    assert_eq!(q("s1", "teen", "gambling", "blocked"), 15.0);
    assert_eq!(q("s1", "teen", "none", "allowed"), 9.0);
    assert_eq!(q("s2", "young", "gambling", "blocked"), 4.0);
    assert_eq!(
        sample(&samples, "edudns_cache_hits_total", &[("school", "s1")]),
        14.0,
        "15 allowed, one miss"
    );
    assert!(
        samples.iter().all(|(_, labels, _)| labels
            .iter()
            .all(|(k, v)| !v.contains("example") && k != "client")),
        "no domain or address in any label"
    );
    for family in [
        "edudns_answer_duration_seconds_bucket",
        "edudns_upstream_duration_seconds_count",
        "edudns_config_generation",
        "edudns_build_info",
        "edudns_list_entries",
        "edudns_list_last_load_timestamp_seconds",
        "edudns_refused_total",
    ] {
        assert!(
            samples.iter().any(|(n, _, _)| n == family),
            "{family} exported"
        );
    }
    assert_eq!(
        sample(&samples, "edudns_list_entries", &[("category", "gambling")]),
        2.0
    );
    assert_eq!(
        sample(&samples, "edudns_answer_duration_seconds_count", &[]),
        57.0
    );

    // Durable roll-ups.
    server.running.flush().unwrap();
    let db = rusqlite::Connection::open(server.path("stats.sqlite")).unwrap();
    let sum = |school: &str, verdict: &str| -> i64 {
        db.query_row(
            "SELECT COALESCE(SUM(count), 0) FROM hourly WHERE school = ?1 AND verdict = ?2",
            [school, verdict],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        (
            sum("s1", "blocked"),
            sum("s1", "allowed"),
            sum("s2", "blocked")
        ),
        (38, 15, 4)
    );

    // The report, over the management API.
    let day = today();
    let (status, _, body) = server
        .api_get(&format!(
            "/api/v1/reports?school=s1&from={day}&to={day}&format=json"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let report = &json["report"];
    assert_eq!(report["totals"]["queries"], 53);
    assert_eq!(report["totals"]["blocked"], 38);
    assert_eq!(report["totals"]["allowed"], 15);
    let cell = |section: &str, key: &str| {
        report[section]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map(|c| c["count"].clone())
    };
    assert_eq!(
        cell("blocked_by_category", "gambling"),
        Some(serde_json::json!(27))
    );
    assert_eq!(
        cell("blocked_by_category", "social"),
        Some(serde_json::json!(11))
    );
    assert_eq!(
        cell("blocked_by_band", "young"),
        Some(serde_json::json!(23))
    );
    assert_eq!(report["daily"][0]["blocked"], 38);
    let top: Vec<(String, u64)> = report["top_blocked_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["domain"].as_str().unwrap().to_string(),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            ("casino.example".into(), 15),
            ("bet.example".into(), 12),
            ("social.example".into(), 11)
        ]
    );
    assert!(report["lists"].as_array().unwrap().iter().any(|l| l["list"] == "lists/gambling.txt" && l["sha256"].as_str().unwrap().len() == 64));
    assert!(json["signature"].is_null(), "no key yet: unsigned");

    for format in ["csv", "html"] {
        let (status, _, body) = server
            .api_get(&format!(
                "/api/v1/reports?school=s1&from={day}&to={day}&format={format}"
            ))
            .await;
        assert_eq!(status, 200);
        assert!(body.contains("38"), "{format}: {body}");
        assert!(!body.contains("127.0.0"), "{format}: no client address");
    }
    let (status, _, body) = server
        .api_get("/api/v1/reports?school=nope&from=2026-01-01&to=2026-01-02")
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown school"), "{body}");
    let (status, _, body) = server.api_get("/api/v1/reports?school=s1").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn small_cells_are_hidden_with_complementary_suppression() {
    let server = TestServer::start(&base_config(""), None).await;
    send(&server, "127.0.0.2", "bet.example.", 30).await;
    send(&server, "127.0.0.2", "www.social.example.", 3).await;
    server.running.flush().unwrap();
    let day = today();
    let (_, _, body) = server
        .api_get(&format!("/api/v1/reports?school=s1&from={day}&to={day}"))
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let categories = json["report"]["blocked_by_category"].as_array().unwrap();
    // social (3) is hidden; gambling is hidden too, or 33 - gambling = social.
    assert!(
        categories.iter().all(|c| c["count"] == "<10"),
        "{categories:?}"
    );
    assert_eq!(json["report"]["totals"]["blocked"], 33, "totals stay exact");
    let domains: Vec<&str> = json["report"]["top_blocked_domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        vec!["bet.example"],
        "domains under k are not published"
    );
}

#[tokio::test]
async fn a_restart_continues_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    write(&dir.path().join("lists/gambling.txt"), GAMBLING);
    write(&dir.path().join("lists/social.txt"), SOCIAL);
    write(&dir.path().join("edudns.toml"), &base_config(""));
    let source = ConfigSource::File(dir.path().join("edudns.toml"));
    for round in 0..2 {
        let running = start(source.clone(), Overrides::default()).await.unwrap();
        for _ in 0..(5 + round * 2) {
            query_udp(
                running.dns_addrs()[0],
                "127.0.0.2",
                "bet.example.",
                RecordType::A,
            )
            .await;
        }
        drop(running); // shutdown flushes
    }
    let db = rusqlite::Connection::open(dir.path().join("stats.sqlite")).unwrap();
    let blocked: i64 = db
        .query_row(
            "SELECT SUM(count) FROM hourly WHERE verdict = 'blocked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(blocked, 5 + 7);
    let incidents: i64 = db
        .query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(incidents, 0, "no client address is stored by default");
}

#[tokio::test]
async fn the_incident_log_is_opt_in_and_capped() {
    let config = base_config("[privacy]\nincident_log_days = 2\n");
    let server = TestServer::start(&config, None).await;
    send(&server, "127.0.0.2", "x.bet.example.", 2).await;
    server.running.flush().unwrap();
    let db = rusqlite::Connection::open(server.path("stats.sqlite")).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT client, domain FROM incidents")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![("127.0.0.2".to_string(), "bet.example".to_string()); 2]
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edudns.toml");
    write(&path, &base_config("[privacy]\nincident_log_days = 90\n"));
    let output = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("privacy.incident_log_days"));
}

#[tokio::test]
async fn the_grafana_dashboard_uses_only_exported_metrics() {
    let server = TestServer::start(&base_config(""), None).await;
    send(&server, "127.0.0.2", "bet.example.", 1).await;
    let (_, _, body) = http_get(server.running.management_addr, "/metrics").await;
    let exported: std::collections::HashSet<String> = parse_exposition(&body)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    let dashboard = std::fs::read_to_string(format!(
        "{}/deploy/monitoring/grafana-dashboard.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("valid JSON");
    let mut used = Vec::new();
    let mut rest = dashboard.as_str();
    while let Some(at) = rest.find("edudns_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        used.push(name);
    }
    assert!(used.len() >= 5, "the dashboard shows something: {used:?}");
    for name in used {
        assert!(
            exported.contains(&name),
            "dashboard uses {name}, which /metrics does not export"
        );
    }
}
