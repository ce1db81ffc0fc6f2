use super::*;
use crate::stats::report::{Cell, Count, Day, DomainCount, Report, SchoolRef, Source, Totals};

/// A small xorshift: the same days every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn input(school: &str, node: &str, day: &str, rng: &mut Rng) -> Report {
    // Small counts, so k = 10 hides some cells and complementary
    // suppression has work to do.
    let cell = |key: &str, rng: &mut Rng| Cell {
        key: key.into(),
        label: key.into(),
        count: Count::Exact(rng.below(15)),
    };
    let by_category: Vec<Cell> = ["adult", "gambling", "games"]
        .iter()
        .map(|k| cell(k, rng))
        .collect();
    let blocked: u64 = by_category.iter().filter_map(|c| c.count.exact()).sum();
    let teen = rng.below(blocked + 1);
    let allowed = 100 + rng.below(900);
    Report {
        format: report::REPORT_FORMAT.into(),
        stage: Stage::MergeInput,
        schools: vec![SchoolRef {
            id: school.into(),
            name: format!("Trường {school}"),
        }],
        from: day.into(),
        to: day.into(),
        timezone: "Asia/Ho_Chi_Minh".into(),
        k_anonymity: 10,
        generated_at: "2026-12-07T00:00:00Z".into(),
        totals: Totals {
            queries: allowed + blocked,
            allowed,
            blocked,
            safe_search: rng.below(5),
        },
        blocked_by_category: by_category,
        blocked_by_band: vec![
            Cell {
                key: "teen".into(),
                label: "teen".into(),
                count: Count::Exact(teen),
            },
            Cell {
                key: "young".into(),
                label: "young".into(),
                count: Count::Exact(blocked - teen),
            },
        ],
        daily: vec![Day {
            date: day.into(),
            queries: Count::Exact(allowed + blocked),
            blocked: Count::Exact(blocked),
        }],
        top_blocked_domains: (0..3)
            .map(|_| (format!("d{}.example", rng.below(6)), 1 + rng.below(6)))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .map(|(domain, count)| DomainCount { domain, count })
            .collect(),
        reviews: report::Reviews {
            requested: rng.below(3),
            accepted: rng.below(2),
            rejected: 0,
            pending: rng.below(2),
        },
        lists: Vec::new(),
        takedowns: Vec::new(),
        sources: vec![Source {
            database: node.into(),
            school: school.into(),
            from: day.into(),
            to: day.into(),
        }],
    }
}

/// What a published report says, without when it was made or which
/// database spans it names.
fn numbers(mut r: Report) -> Report {
    r.generated_at.clear();
    r.sources.clear();
    r
}

#[test]
fn district_reports_from_month_rollups_equal_merging_every_kept_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::stats::store::Store::open(&dir.path().join("office.sqlite")).unwrap();
    let db = store.connection();
    let keys = dir.path().join("keys");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Three schools, one with two nodes, 20 January to 5 March 2025 with
    // some days missing (a node that was off).
    let sources = [("s1", "n1"), ("s1", "n2"), ("s2", "n3"), ("s3", "n4")];
    let mut signing = std::collections::HashMap::new();
    for school in ["s1", "s2", "s3"] {
        signing.insert(
            school,
            crate::stats::sign::init_keys(&keys, school).unwrap().0,
        );
    }
    let mut day = jiff::civil::date(2025, 1, 20);
    while day <= jiff::civil::date(2025, 3, 5) {
        for (school, node) in sources {
            if rng.below(8) == 0 {
                continue;
            }
            let signed = crate::stats::sign::sign(
                input(school, node, &day.to_string(), &mut rng),
                &signing[school],
            )
            .unwrap();
            let body = serde_json::to_vec(&signed).unwrap();
            crate::office::ingest::accept(db, &body, school, &keys, jiff::civil::date(2026, 1, 1))
                .unwrap()
                .unwrap();
        }
        if day == jiff::civil::date(2025, 2, 10) {
            // A report halfway: the days so far are rolled up, the
            // later ones are added to the same months' sums.
            district_report(db, "2025-01-01", "2025-02-10", None).unwrap();
            let queued: i64 = db
                .query_row("SELECT COUNT(*) FROM ingest_rollup_queue", [], |row| {
                    row.get(0)
                })
                .unwrap();
            assert_eq!(queued, 0);
        }
        day = day.tomorrow().unwrap();
    }
    let periods = [
        ("2025-01-20", "2025-03-05"), // part, a whole month, part
        ("2025-02-01", "2025-02-28"), // one whole month
        ("2025-01-01", "2025-12-31"), // whole months, some empty
        ("2025-01-31", "2025-03-01"), // one day, a month, one day
        ("2025-02-10", "2025-02-20"), // days inside one month
        ("2025-03-05", "2025-03-05"), // one day
    ];
    let check = |label: &str| {
        for (from, to) in periods {
            for schools in [
                None,
                Some(vec!["s1".to_string()]),
                Some(vec!["s2".into(), "s3".into()]),
            ] {
                let district = district_report(db, from, to, schools.as_deref()).unwrap();
                let kept = inputs(db, from, to, schools.as_deref()).unwrap();
                let mut merged = report::merge(&kept).unwrap();
                merged.report.from = from.into();
                merged.report.to = to.into();
                assert_eq!(
                    numbers(district.report.clone()),
                    numbers(merged.report),
                    "{label}: {from}..{to} for {schools:?}"
                );
                // Each node is named once, with the days it sent.
                let nodes: Vec<_> = district
                    .report
                    .sources
                    .iter()
                    .map(|s| s.database.as_str())
                    .collect();
                let mut unique = nodes.clone();
                unique.dedup();
                assert_eq!(nodes, unique);
            }
        }
    };
    check("kept at ingest");
    // A database kept before the roll-ups existed gets them rebuilt.
    db.execute_batch("DELETE FROM ingest_month_days; DELETE FROM ingest_month_cells; DELETE FROM ingest_month_domains; DELETE FROM ingest_office_days; DELETE FROM ingest_office_day_domains;").unwrap();
    assert!(district_report(db, "2025-02-01", "2025-02-28", None).is_err());
    crate::office::ingest::rebuild_rollups(db).unwrap();
    check("rebuilt");
}

#[test]
fn periods_split_into_whole_months_and_the_days_around_them() {
    let d = |s: &str| day_number(s);
    let m = |s: &str| month_of(day_number(s));
    assert_eq!(
        split(d("2025-01-20"), d("2025-03-05")),
        Split {
            months: Some((m("2025-02-01"), m("2025-02-01"))),
            days: vec![
                (d("2025-01-20"), d("2025-01-31")),
                (d("2025-03-01"), d("2025-03-05"))
            ]
        }
    );
    assert_eq!(
        split(d("2025-01-01"), d("2025-12-31")),
        Split {
            months: Some((m("2025-01-01"), m("2025-12-01"))),
            days: vec![]
        }
    );
    assert_eq!(
        split(d("2025-02-10"), d("2025-02-20")),
        Split {
            months: None,
            days: vec![(d("2025-02-10"), d("2025-02-20"))]
        }
    );
    // February of a leap year, across a year's end.
    assert_eq!(
        split(d("2023-12-15"), d("2024-02-29")),
        Split {
            months: Some((m("2024-01-01"), m("2024-02-01"))),
            days: vec![(d("2023-12-15"), d("2023-12-31"))]
        }
    );
}
