//! Test data shared by the report tests: what three replicas of one school
//! counted, in three databases, and in one database that counted it all.

use super::gather::{ReportError, build_stage};
use super::types::{Cell, Count, Report, Stage};
use crate::config::{Config, ListRoot, validate};
use crate::stats::store::Store;
use rusqlite::{Connection, params};
use std::path::Path;

const CONFIG: &str = r#"
[upstream]
servers = ["192.0.2.53"]
[blocking]
sinkhole_ipv4 = "10.0.0.1"
[[category]]
id = "gambling"
name = "Cờ bạc / Gambling"
[[category]]
id = "social"
[[band]]
id = "young"
block = ["gambling", "social"]
[[band]]
id = "teen"
block = ["gambling"]
[[school]]
id = "s1"
name = "Trường Một"
networks = ["10.0.0.0/8"]
"#;

const DAY1: &str = "2026-03-02T02:00:00Z"; // 09:00 on 2 March in Hà Nội
const DAY2: &str = "2026-03-03T02:00:00Z";

/// (replica, time, band, category, verdict, count): what three replicas
/// of school s1 counted. Every replica's gambling and social cells are
/// below k = 10; the sum's social cell still is, deny_list is not.
const MIX: &[(usize, &str, &str, &str, &str, i64)] = &[
    (0, DAY1, "young", "gambling", "blocked", 4),
    (0, DAY1, "young", "social", "blocked", 2),
    (0, DAY1, "teen", "gambling", "blocked", 6),
    (0, DAY1, "young", "none", "allowed", 20),
    (0, DAY2, "young", "gambling", "blocked", 3),
    (1, DAY1, "young", "gambling", "blocked", 5),
    (1, DAY1, "teen", "gambling", "blocked", 3),
    (1, DAY1, "young", "none", "safe_search", 2),
    (1, DAY2, "young", "deny_list", "blocked", 6),
    (2, DAY1, "young", "gambling", "blocked", 3),
    (2, DAY2, "teen", "gambling", "blocked", 5),
    (2, DAY2, "young", "deny_list", "blocked", 5),
    (2, DAY1, "teen", "none", "allowed", 7),
];

/// (replica, local day, domain, blocks) for the top blocked domains.
const DOMAINS: &[(usize, &str, &str, i64)] = &[
    (0, "2026-03-02", "bet.example", 4),
    (1, "2026-03-02", "bet.example", 5),
    (2, "2026-03-02", "bet.example", 3),
    (0, "2026-03-02", "casino.example", 9),
    (1, "2026-03-02", "casino.example", 3),
    (2, "2026-03-03", "casino.example", 5),
    (0, "2026-03-02", "social.example", 2),
    (1, "2026-03-03", "deny.example", 6),
    (2, "2026-03-03", "deny.example", 5),
];

pub fn build_for_merge(
    db: &Connection,
    config: &Config,
    school: &str,
    from: &str,
    to: &str,
) -> Result<Report, ReportError> {
    build_stage(db, config, school, from, to, 10, Stage::MergeInput)
}

pub fn config() -> Config {
    validate::parse(CONFIG, Path::new("t.toml"), ListRoot::Embedded).unwrap()
}

fn unix(time: &str) -> i64 {
    time.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Three replica databases and one "single node" database that counted
/// everything the three did.
pub fn databases(dir: &Path) -> (Vec<Store>, Store) {
    let replicas: Vec<Store> = (0..3)
        .map(|i| Store::open(&dir.join(format!("replica{i}.sqlite"))).unwrap())
        .collect();
    let single = Store::open(&dir.join("single.sqlite")).unwrap();
    for (replica, time, band, category, verdict, count) in MIX {
        for store in [&replicas[*replica], &single] {
            store
                .connection()
                .execute(
                    "INSERT INTO hourly (hour, school, band, category, verdict, count) VALUES (?1, 's1', ?2, ?3, ?4, ?5)
                     ON CONFLICT (hour, school, band, category, verdict) DO UPDATE SET count = count + excluded.count",
                    params![unix(time) / 3600, band, category, verdict, count],
                )
                .unwrap();
        }
    }
    for (replica, day, domain, count) in DOMAINS {
        for store in [&replicas[*replica], &single] {
            store
                .connection()
                .execute(
                    "INSERT INTO top_blocked (day, school, domain, count) VALUES (?1, 's1', ?2, ?3)
                     ON CONFLICT (day, school, domain) DO UPDATE SET count = count + excluded.count",
                    params![day, domain, count],
                )
                .unwrap();
        }
    }
    for (replica, status) in ["pending", "accepted", "rejected"].iter().enumerate() {
        for store in [&replicas[replica], &single] {
            store
                .connection()
                .execute(
                    "INSERT INTO reviews (created_at, day, school, band, domain, category, status)
                     VALUES (?1, '2026-03-02', 's1', 'young', ?2, 'social', ?3)",
                    params![unix(DAY1), format!("r{replica}.example"), status],
                )
                .unwrap();
        }
    }
    // The same list, loaded a few seconds apart by each node.
    let list = [(
        "gambling".to_string(),
        "lists/gambling.txt".to_string(),
        2,
        "ab".repeat(32),
    )];
    single.record_lists(unix(DAY1) - 86_400, &list).unwrap();
    for (i, store) in replicas.iter().enumerate() {
        store
            .record_lists(unix(DAY1) - 86_400 + 5 * i as i64, &list)
            .unwrap();
    }
    (replicas, single)
}

/// A report without what differs from run to run and node to node.
pub fn numbers(mut report: Report) -> Report {
    report.generated_at.clear();
    report.sources.clear();
    report
}

pub fn cell<'a>(cells: &'a [Cell], key: &str) -> &'a Count {
    &cells.iter().find(|c| c.key == key).unwrap().count
}
