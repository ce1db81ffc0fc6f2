use super::*;
use crate::stats::report::{Cell, DomainCount, ListVersion, REPORT_FORMAT, SchoolRef, Stage};

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn cells(pairs: &[(&str, u64)]) -> Vec<Cell> {
    pairs
        .iter()
        .map(|(key, n)| Cell {
            key: key.to_string(),
            label: format!("label {key}"),
            count: Count::Exact(*n),
        })
        .collect()
}

/// A merge input of `school` for `day`.
fn input(
    school: &str,
    day: &str,
    categories: &[(&str, u64)],
    bands: &[(&str, u64)],
    domains: &[(&str, u64)],
) -> Report {
    Report {
        format: REPORT_FORMAT.into(),
        stage: Stage::MergeInput,
        schools: vec![SchoolRef {
            id: school.into(),
            name: format!("Trường {school}"),
        }],
        from: day.into(),
        to: day.into(),
        timezone: OFFICE_TIMEZONE.into(),
        k_anonymity: 10,
        generated_at: String::new(),
        totals: Default::default(),
        blocked_by_category: cells(categories),
        blocked_by_band: cells(bands),
        daily: Vec::new(),
        top_blocked_domains: domains
            .iter()
            .map(|(d, n)| DomainCount {
                domain: d.to_string(),
                count: *n,
            })
            .collect(),
        reviews: Default::default(),
        lists: vec![ListVersion {
            category: "gambling".into(),
            list: "lists/gambling.txt".into(),
            entries: 2,
            sha256: "0123456789abcdef0123".into(),
            loaded_at: String::new(),
        }],
        takedowns: Vec::new(),
        sources: Vec::new(),
    }
}

fn counts(day: &DayCells) -> Vec<(&str, Option<u64>)> {
    day.by_category
        .iter()
        .map(|c| (c.key.as_str(), c.count))
        .collect()
}

#[test]
fn each_day_is_summed_over_schools_and_published_with_k() {
    let reports = [
        input(
            "s1",
            "2026-12-01",
            &[("gambling", 40), ("social", 6)],
            &[("young", 40), ("teen", 6)],
            &[],
        ),
        input(
            "s2",
            "2026-12-01",
            &[("gambling", 25), ("social", 6)],
            &[("young", 25), ("teen", 6)],
            &[],
        ),
        input(
            "s1",
            "2026-12-03",
            &[("gambling", 40), ("deny_list", 30), ("social", 3)],
            &[("young", 70), ("teen", 3)],
            &[],
        ),
        // Outside the period: not counted.
        input("s1", "2026-11-30", &[("gambling", 99)], &[], &[]),
    ];
    let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-04"), 10);
    assert_eq!(
        days.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(),
        ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"],
        "every day of the period"
    );
    // 6 + 6 is shown: k applies to the district's sum, not to each school.
    assert_eq!(
        counts(&days[0]),
        [
            ("deny_list", Some(0)),
            ("gambling", Some(65)),
            ("social", Some(12))
        ]
    );
    // A day without data is there, every key zero.
    assert_eq!(
        counts(&days[1]),
        [
            ("deny_list", Some(0)),
            ("gambling", Some(0)),
            ("social", Some(0))
        ]
    );
    // social 3 is hidden, and the smallest other cell with it
    // (complementary suppression), so 3 cannot be had from the total.
    assert_eq!(
        counts(&days[2]),
        [
            ("deny_list", None),
            ("gambling", Some(40)),
            ("social", None)
        ]
    );
    assert_eq!(days[2].by_category[1].label, "label gambling");
    let bands: Vec<_> = days[2]
        .by_band
        .iter()
        .map(|c| (c.key.as_str(), c.count))
        .collect();
    assert_eq!(bands, [("teen", None), ("young", None)], "two cells: both");
    assert!(days[3].by_band.iter().all(|c| c.count == Some(0)));
}

#[test]
fn a_day_with_only_one_small_cell_hides_it_alone() {
    let reports = [input("s1", "2026-12-01", &[("social", 4)], &[], &[])];
    let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-01"), 10);
    assert_eq!(counts(&days[0]), [("social", None)]);
    // k = 1 hides nothing.
    let days = blocked_by_day(&reports, date("2026-12-01"), date("2026-12-01"), 1);
    assert_eq!(counts(&days[0]), [("social", Some(4))]);
}

#[test]
fn top_domains_are_summed_and_those_under_k_left_out() {
    let reports = [
        input(
            "s1",
            "2026-12-01",
            &[],
            &[],
            &[("casino.example", 8), ("bet.example", 4)],
        ),
        input("s2", "2026-12-02", &[], &[], &[("casino.example", 5)]),
        input("s2", "2026-12-02", &[], &[], &[("deny.example", 10)]),
    ];
    let top = top_domains(&reports, 10);
    assert_eq!(
        top.iter()
            .map(|d| (d.domain.as_str(), d.count))
            .collect::<Vec<_>>(),
        [("casino.example", 13), ("deny.example", 10)]
    );
    let many: Vec<Report> = (0..30)
        .map(|i| {
            input(
                "s1",
                "2026-12-01",
                &[],
                &[],
                &[(&format!("d{i:02}.example"), 50 + i)],
            )
        })
        .collect();
    let top = top_domains(&many, 10);
    assert_eq!(top.len(), TOP_DOMAINS);
    assert_eq!(top[0].domain, "d29.example");
}

#[test]
fn schools_without_inputs_are_listed_as_not_reporting() {
    let known = [
        ("s1".to_string(), "Trường Một".to_string()),
        ("s3".to_string(), "Trường Ba".to_string()),
    ];
    let at = 1_796_000_000;
    let received = [
        ("s1".into(), "node-a".into(), "2026-12-06".into(), at),
        ("s1".into(), "node-b".into(), "2026-12-05".into(), at + 60),
        ("s2".into(), "node-c".into(), "2026-12-04".into(), at),
    ];
    let latest: Vec<LatestDay> = [
        input("s1", "2026-12-06", &[], &[], &[]),
        input("s2", "2026-12-04", &[], &[], &[]),
    ]
    .into_iter()
    .map(|r| LatestDay {
        school: r.schools[0].id.clone(),
        name: r.schools[0].name.clone(),
        lists: r.lists,
    })
    .collect();
    let today = date("2026-12-07");
    let now = at + 86_400;
    let with = |heartbeats| Received {
        days: &received,
        latest: &latest,
        heartbeats,
    };
    let schools = school_statuses(&known, with(&[]), today, now);
    let ids: Vec<_> = schools.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["s1", "s3", "s2"],
        "the configured ones, then the others"
    );
    let s1 = &schools[0];
    assert_eq!(s1.name, "Trường Một");
    assert_eq!(s1.last_day.as_deref(), Some("2026-12-06"));
    assert_eq!(
        s1.last_received_at.as_deref(),
        Some(
            jiff::Timestamp::from_second(at + 60)
                .unwrap()
                .to_string()
                .as_str()
        )
    );
    assert_eq!((s1.nodes, s1.reporting), (2, true));
    assert_eq!(s1.list_versions.len(), 1, "the same version once");
    assert_eq!(s1.list_versions[0].sha256, "0123456789ab");
    let s3 = &schools[1];
    assert_eq!(
        (s3.last_day.as_deref(), s3.nodes, s3.reporting),
        (None, 0, false)
    );
    assert!(s3.last_received_at.is_none() && s3.list_versions.is_empty());
    // s2's last day is three days ago: stopped; its name from its input.
    let s2 = &schools[2];
    assert_eq!((s2.name.as_str(), s2.reporting), ("Trường s2", false));
    // The day before yesterday still counts.
    let schools = school_statuses(&known, with(&[]), date("2026-12-06"), now);
    assert!(schools[2].reporting);
    // Without heartbeats (older nodes) the last report is still there.
    assert!(!s1.filter_up && s1.heartbeat_at.is_none() && s1.last_policy_fetch.is_none());

    let beat = |school: &str, node: &str, ago: i64, up: bool, fetched: Option<i64>| Kept {
        school: school.into(),
        node: node.into(),
        received_at: now - ago,
        started_at: now - 86_400,
        last_policy_fetch: fetched,
        version: "0.1.0".into(),
        filter_up: up,
        policy_etag: fetched.map(|t| format!("\"{t:x}-0123456789abcdef\"")),
        lists: 2,
    };
    let heartbeats = [
        // s1: node-a up now; node-b down, but three hours ago: stale.
        beat("s1", "node-a", 600, true, Some(now - 900)),
        beat("s1", "node-b", 3 * 3600, false, Some(now - 4 * 3600)),
        // s2: up, but its last heartbeat is three hours old.
        beat("s2", "node-c", 3 * 3600, true, None),
        // s4: heartbeats, no day sent yet.
        beat("s4", "node-d", 60, false, None),
    ];
    let schools = school_statuses(&known, with(&heartbeats), today, now);
    let ids: Vec<_> = schools.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s3", "s2", "s4"]);
    let s1 = &schools[0];
    assert!(s1.filter_up, "the stale heartbeat of node-b does not count");
    assert_eq!(s1.heartbeat_at, rfc3339(now - 600));
    assert_eq!(s1.last_policy_fetch, rfc3339(now - 900), "the latest fetch");
    assert_eq!(
        s1.policy_etag,
        Some(format!("{:x}-012", now - 900)),
        "12 characters, no quotes"
    );
    assert_eq!(s1.last_day.as_deref(), Some("2026-12-06"));
    assert!(!schools[1].filter_up, "s3: no heartbeat");
    assert!(!schools[2].filter_up, "s2: none within 2 hours");
    assert_eq!(schools[2].heartbeat_at, rfc3339(now - 3 * 3600));
    let s4 = &schools[3];
    assert_eq!(
        (s4.filter_up, s4.nodes, s4.last_day.as_deref()),
        (false, 0, None)
    );
    assert!(s4.heartbeat_at.is_some());
    // One fresh heartbeat saying down makes the school's filter down.
    let heartbeats = [
        beat("s1", "node-a", 600, true, None),
        beat("s1", "node-b", 60, false, None),
    ];
    let schools = school_statuses(&known, with(&heartbeats), today, now);
    assert!(!schools[0].filter_up);
}

#[test]
fn latest_days_are_each_schools_last_day_per_node_in_one_query() {
    let db = Connection::open_in_memory().unwrap();
    ensure_schema(&db).unwrap();
    let list = |sha: &str| {
        serde_json::to_string(&[ListVersion {
            category: "gambling".into(),
            list: "lists/gambling.txt".into(),
            entries: 2,
            sha256: sha.into(),
            loaded_at: String::new(),
        }])
        .unwrap()
    };
    // s1: node-a and node-b sent day 20; node-c stopped at day 18.
    // s2: one node, day 19, renamed since day 10.
    for (id, school, node, day, name, sha) in [
        (1, "s1", "node-a", 20, "Trường Một", "aaaa"),
        (2, "s1", "node-b", 20, "Trường Một", "bbbb"),
        (3, "s1", "node-c", 18, "Trường Một (cũ)", "cccc"),
        (4, "s2", "node-d", 19, "Trường Hai", "dddd"),
    ] {
        db.execute(
            "INSERT INTO ingest_sources (id, school, node) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, school, node],
        )
        .unwrap();
        for (d, n) in [(day, name), (10, "Tên cũ")] {
            db.execute(
                "INSERT INTO ingest_days (source, day, received_at, sha256, school_name, timezone,
                     k, queries, allowed, blocked, safe_search, reviews)
                 VALUES (?1, ?2, 0, '', ?3, 'UTC', 10, 0, 0, 0, 0, '{}')",
                rusqlite::params![id, d, n],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO ingest_lists (source, day, lists, takedowns) VALUES (?1, ?2, ?3, '[]')",
            rusqlite::params![id, day, list(sha)],
        )
        .unwrap();
    }
    let latest = latest_days(&db).unwrap();
    let got: Vec<(&str, &str, &str)> = latest
        .iter()
        .map(|d| {
            (
                d.school.as_str(),
                d.name.as_str(),
                d.lists[0].sha256.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("s1", "Trường Một", "aaaa"),
            ("s1", "Trường Một", "bbbb"),
            ("s2", "Trường Hai", "dddd"),
        ],
        "node-c's older day is not the school's latest"
    );
}

#[test]
fn periods_default_to_thirty_days_and_errors_name_the_parameter() {
    let today = date("2026-12-07");
    assert_eq!(period(None, None, today), Ok((date("2026-11-08"), today)));
    assert_eq!(
        period(None, Some("2026-12-01"), today),
        Ok((date("2026-11-02"), date("2026-12-01")))
    );
    assert_eq!(
        period(Some("2026-12-01"), None, today),
        Ok((date("2026-12-01"), today))
    );
    let bad = period(Some("2026-13-01"), None, today).unwrap_err();
    assert!(bad.to_string().starts_with("from: "), "{bad}");
    let bad = period(None, Some("yesterday"), today).unwrap_err();
    assert!(bad.to_string().starts_with("to: "), "{bad}");
    let bad = period(Some("2026-12-05"), Some("2026-12-01"), today).unwrap_err();
    assert!(matches!(bad, PeriodError::Reversed { .. }), "{bad}");
    let bad = period(Some("2024-01-01"), Some("2026-01-01"), today).unwrap_err();
    assert!(bad.to_string().contains("at most 366 days"), "{bad}");
    assert!(period(Some("2025-01-01"), Some("2025-12-31"), today).is_ok());
}
