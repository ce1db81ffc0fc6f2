use super::*;
use crate::stats::report::{Count, Day, Report, SchoolRef, Source, Stage, Totals};
use crate::stats::store::Store;
use std::sync::{Arc, Mutex};

fn input(school: &str, day: &str, queries: u64) -> Report {
    Report {
        format: crate::stats::report::REPORT_FORMAT.into(),
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
            queries,
            allowed: queries,
            blocked: 0,
            safe_search: 0,
        },
        blocked_by_category: Vec::new(),
        blocked_by_band: Vec::new(),
        daily: vec![Day {
            date: day.into(),
            queries: Count::Exact(queries),
            blocked: Count::Exact(0),
        }],
        top_blocked_domains: Vec::new(),
        reviews: Default::default(),
        lists: Vec::new(),
        takedowns: Vec::new(),
        sources: vec![Source {
            database: format!("node-{school}"),
            school: school.into(),
            from: day.into(),
            to: day.into(),
        }],
    }
}

struct Office {
    _dir: tempfile::TempDir,
    keys: std::path::PathBuf,
    path: std::path::PathBuf,
    store: crate::stats::flusher::SharedStore,
    signing: Vec<std::path::PathBuf>,
}

const SCHOOLS: [&str; 3] = ["s1", "s2", "s3"];
const TODAY: jiff::civil::Date = jiff::civil::date(2026, 1, 1);

fn office() -> Office {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let path = dir.path().join("office.sqlite");
    let store = Store::open(&path).unwrap();
    ensure_schema(store.connection()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let signing = SCHOOLS
        .iter()
        .map(|s| crate::stats::sign::init_keys(&keys, s).unwrap().0)
        .collect();
    Office {
        _dir: dir,
        keys,
        path,
        store,
        signing,
    }
}

impl Office {
    fn checked(&self, school: usize, day: &str, queries: u64) -> Checked {
        self.checked_report(school, input(SCHOOLS[school], day, queries))
    }

    fn checked_report(&self, school: usize, report: Report) -> Checked {
        let signed = crate::stats::sign::sign(report, &self.signing[school]).unwrap();
        let body = serde_json::to_vec(&signed).unwrap();
        check_input(&body, SCHOOLS[school], &self.keys, TODAY).unwrap()
    }

    fn kept(&self) -> (i64, i64) {
        let store = self.store.lock().unwrap();
        store
            .connection()
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(queries), 0) FROM ingest_days",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap()
    }
}

fn day(n: i64) -> String {
    jiff::civil::date(2025, 1, 1)
        .checked_add(jiff::Span::new().days(n))
        .unwrap()
        .to_string()
}

#[test]
fn inputs_waiting_together_are_kept_in_one_commit_and_each_is_answered_once() {
    let office = office();
    let ingest = Arc::new(Ingest::default());
    // 3 schools × 45 days, each sent twice, and one day sent again with
    // other numbers: 271 inputs, more than one batch holds.
    let mut receivers = Vec::new();
    let mut expected_queries = 0;
    {
        // The writer cannot write while the store is held: everything
        // submitted meanwhile waits together, as a burst of requests does.
        let _held = office.store.lock().unwrap();
        for d in 0..45 {
            for school in 0..SCHOOLS.len() {
                let queries = 100 + d as u64 * 3 + school as u64;
                expected_queries += queries as i64;
                for _ in 0..2 {
                    receivers.push(ingest.submit(
                        office.store.clone(),
                        office.checked(school, &day(d), queries),
                    ));
                }
            }
        }
        receivers.push(ingest.submit(office.store.clone(), office.checked(1, &day(7), 5)));
    }
    let outcomes: Vec<Result<Receipt, Refused>> = receivers
        .into_iter()
        .map(|r| r.blocking_recv().unwrap().unwrap())
        .collect();
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(r) if r.stored == Stored::New))
        .count();
    let duplicate = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(r) if r.stored == Stored::Duplicate))
        .count();
    assert_eq!((stored, duplicate), (135, 135));
    assert!(
        matches!(outcomes.last(), Some(Err(Refused::Conflict { school, .. })) if school == "s2"),
        "{:?}",
        outcomes.last()
    );
    // The first copy of every day, once.
    assert_eq!(office.kept(), (135, expected_queries));
    let batches = ingest
        .figures
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    let batched = ingest
        .figures
        .batched
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(batched, 271);
    // At most one batch taken before the store was free, then full ones:
    // 271 inputs need two at least (MAX_BATCH = 256), and a commit per
    // input would be 271.
    assert!((2..=3).contains(&batches), "{batches} batches");
    // The roll-ups count each kept day once too.
    let store = office.store.lock().unwrap();
    let merged =
        crate::office::district::district_report(store.connection(), &day(0), &day(44), None)
            .unwrap();
    assert_eq!(merged.report.totals.queries as i64, expected_queries);
}

#[test]
fn a_batch_the_database_cannot_write_keeps_nothing_and_its_resend_is_kept_once() {
    let office = office();
    let ingest = Arc::new(Ingest::default());
    // Another writer holds the database (as `edudns report` or a backup
    // could): the batch fails, every input of it is answered with the error.
    let other = rusqlite::Connection::open(&office.path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let failed: Vec<Outcome> = (0..3)
        .map(|school| ingest.submit(office.store.clone(), office.checked(school, &day(0), 50)))
        .map(|r| r.blocking_recv().unwrap())
        .collect();
    assert!(
        failed
            .iter()
            .all(|o| matches!(o, Err(KeepError(e)) if e.contains("locked"))),
        "{failed:?}"
    );
    other.execute_batch("ROLLBACK;").unwrap();
    assert_eq!(office.kept(), (0, 0));
    // Sent again (the nodes retry), each is kept, once.
    for school in 0..3 {
        let receipt = ingest
            .submit(office.store.clone(), office.checked(school, &day(0), 50))
            .blocking_recv()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(receipt.stored, Stored::New);
    }
    assert_eq!(office.kept(), (3, 150));
}

#[test]
fn an_input_that_fails_to_write_is_rolled_back_alone_and_leaves_no_id_behind() {
    let office = office();
    let ingest = Arc::new(Ingest::default());
    // The database refuses one input halfway through its writing (after
    // its new domain names and labels are in): a trigger stands for a
    // disk or constraint failure.
    office
        .store
        .lock()
        .unwrap()
        .connection()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON ingest_lists WHEN NEW.lists LIKE '%poison%'
             BEGIN SELECT RAISE(ABORT, 'poisoned input'); END;",
        )
        .unwrap();
    let with = |school: usize, day: &str, domain: &str, poison: bool| {
        let mut report = input(SCHOOLS[school], day, 40);
        report.top_blocked_domains = vec![crate::stats::report::DomainCount {
            domain: domain.into(),
            count: 12,
        }];
        report.blocked_by_category = vec![crate::stats::report::Cell {
            key: "gambling".into(),
            label: "Cờ bạc".into(),
            count: Count::Exact(12),
        }];
        if poison {
            report.lists = vec![crate::stats::report::ListVersion {
                category: "gambling".into(),
                list: "https://lists.example/poison.txt".into(),
                entries: 1,
                sha256: "00".into(),
                loaded_at: "2026-01-01T00:00:00Z".into(),
            }];
        }
        office.checked_report(school, report)
    };
    let receivers = {
        let _held = office.store.lock().unwrap();
        [
            ingest.submit(office.store.clone(), with(0, &day(0), "new.example", true)),
            ingest.submit(office.store.clone(), with(1, &day(0), "new.example", false)),
            ingest.submit(
                office.store.clone(),
                with(2, &day(0), "other.example", false),
            ),
        ]
    };
    let outcomes: Vec<Outcome> = receivers
        .into_iter()
        .map(|r| r.blocking_recv().unwrap())
        .collect();
    assert!(
        matches!(&outcomes[0], Err(KeepError(e)) if e.contains("poisoned input")),
        "{:?}",
        outcomes[0]
    );
    for outcome in &outcomes[1..] {
        assert!(
            matches!(outcome, Ok(Ok(r)) if r.stored == Stored::New),
            "{outcome:?}"
        );
    }
    assert_eq!(office.kept(), (2, 80));
    // The refused school sends again, without the poison: kept, and every
    // domain and label row points at a name the database holds.
    let again = ingest
        .submit(office.store.clone(), with(0, &day(0), "new.example", false))
        .blocking_recv()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(again.stored, Stored::New);
    let store = office.store.lock().unwrap();
    let db = store.connection();
    let dangling: i64 = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM ingest_domains d
                     LEFT JOIN ingest_domain_names n ON n.id = d.domain WHERE n.id IS NULL)
                  + (SELECT COUNT(*) FROM ingest_cells c
                     LEFT JOIN ingest_labels l ON l.id = c.label WHERE l.id IS NULL)
                  + (SELECT COUNT(*) FROM ingest_days d
                     LEFT JOIN ingest_sources s ON s.id = d.source WHERE s.id IS NULL)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0);
    let new_example: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM ingest_domains d JOIN ingest_domain_names n ON n.id = d.domain
             WHERE n.name = 'new.example'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(new_example, 2);
}
