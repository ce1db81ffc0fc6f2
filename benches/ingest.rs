//! Office ingest at province scale (docs/performance.md, "Office ingest"):
//! a year of daily merge inputs from many schools, generated with
//! realistic category and band mixes and blocked domains, signed with each
//! school's key, then kept by `office::ingest` into a real
//! SQLite database as the office's `POST /api/v1/ingest` does; then district
//! reports for a month and for the year.
//!
//!   cargo bench --bench ingest            # SCHOOLS=1000 DAYS=365
//!   SCHOOLS=100 DAYS=30 cargo bench --bench ingest
//!
//! Inputs are checked on SENDERS (8) threads and kept through the office's
//! group-commit queue, as its HTTP handlers do. Prints school-days ingested
//! per second (signing excluded: the nodes do that), the commits' batch
//! size, the database's size per 1,000 school-years, and the report
//! times. Targets: ≥ 1,000 school-days/s, a year of 1,000 schools ≤ 2 s,
//! ≤ 1 GiB per 1,000 school-years.

use edudns::stats::report::{
    Cell, Count, Day, DomainCount, ListVersion, REPORT_FORMAT, Report, Reviews, SchoolRef, Source,
    Stage, Totals,
};
use std::time::{Duration, Instant};

const CATEGORIES: [(&str, u64); 9] = [
    ("adult", 40),
    ("gambling", 25),
    ("violence", 2),
    ("drugs", 1),
    ("dating", 3),
    ("social", 300),
    ("games", 120),
    ("malware", 8),
    ("doh-bypass", 5),
];
const BANDS: [(&str, u64); 4] = [("thcs", 50), ("thpt", 35), ("staff", 5), ("guest", 10)];

/// CPU seconds this process used so far (user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds the calling thread used so far.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: as above.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A cheap deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Roughly `mean`, between half and one and a half of it.
    fn around(&mut self, mean: u64) -> u64 {
        if mean == 0 {
            return 0;
        }
        mean / 2 + self.next() % (mean + 1)
    }
}

fn input(school: usize, day: &str, rng: &mut Rng, lists: &[ListVersion]) -> Report {
    let size = 1 + (school % 7) as u64; // schools of different sizes
    let by_category: Vec<Cell> = CATEGORIES
        .iter()
        .map(|(id, mean)| Cell {
            key: id.to_string(),
            label: id.to_string(),
            count: Count::Exact(rng.around(mean * size)),
        })
        .collect();
    let blocked: u64 = by_category.iter().filter_map(|c| c.count.exact()).sum();
    let mut left = blocked;
    let by_band: Vec<Cell> = BANDS
        .iter()
        .enumerate()
        .map(|(i, (id, share))| {
            let n = if i + 1 == BANDS.len() {
                left
            } else {
                (blocked * share / 100).min(left)
            };
            left -= n;
            Cell {
                key: id.to_string(),
                label: id.to_string(),
                count: Count::Exact(n),
            }
        })
        .collect();
    let allowed = rng.around(20_000 * size);
    // 50–100 distinct blocked domains a day, from a pool of 20,000 (popular
    // ones more often).
    let domains = 50 + (rng.next() % 51) as usize;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..domains {
        let pick = (rng.next() % 20_000) * (rng.next() % 20_000) / 20_000;
        *seen
            .entry(format!("blocked-{pick}.example.net"))
            .or_insert(0u64) += 1 + rng.next() % 20;
    }
    Report {
        format: REPORT_FORMAT.into(),
        stage: Stage::MergeInput,
        schools: vec![SchoolRef {
            id: format!("school-{school:04}"),
            name: format!("Trường số {school}"),
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
            safe_search: rng.around(30),
        },
        blocked_by_category: by_category,
        blocked_by_band: by_band,
        daily: vec![Day {
            date: day.into(),
            queries: Count::Exact(allowed + blocked),
            blocked: Count::Exact(blocked),
        }],
        top_blocked_domains: seen
            .into_iter()
            .map(|(domain, count)| DomainCount { domain, count })
            .collect(),
        reviews: Reviews::default(),
        lists: lists.to_vec(),
        takedowns: Vec::new(),
        sources: vec![Source {
            database: format!("{:032x}", school as u128 * 0x9e37_79b9_7f4a_7c15),
            school: format!("school-{school:04}"),
            from: day.into(),
            to: day.into(),
        }],
    }
}

fn main() {
    let schools = env("SCHOOLS", 1000);
    // Requests in flight at once, as schools' nodes sending after midnight.
    let senders = env("SENDERS", 8).max(1);
    let days = env("DAYS", 365);
    let dir = tempfile::tempdir().unwrap();
    let key_dir = dir.path().join("keys");
    let db_path = dir.path().join("office.sqlite");
    let store = std::sync::Arc::new(std::sync::Mutex::new(
        edudns::stats::store::Store::open(&db_path).unwrap(),
    ));
    let office = std::sync::Arc::new(edudns::office::ingest::Ingest::default());
    let keys: Vec<_> = (0..schools)
        .map(|s| {
            edudns::stats::sign::init_keys(&key_dir, &format!("school-{s:04}"))
                .unwrap()
                .0
        })
        .collect();
    let lists: Vec<ListVersion> = (0..23)
        .map(|i| ListVersion {
            category: CATEGORIES[i % CATEGORIES.len()].0.into(),
            list: format!("https://lists.example/source-{i}.txt"),
            entries: 10_000 + i as u64 * 1_000,
            sha256: format!("{:064x}", i),
            loaded_at: "2026-12-06T03:00:00Z".into(),
        })
        .collect();
    let first = jiff::civil::date(2025, 1, 1);
    let today = jiff::civil::date(2026, 12, 7);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut ingest = Duration::ZERO;
    let mut ingest_cpu = 0.0;
    let checking = std::sync::Mutex::new(0.0f64);
    let mut bytes = 0usize;
    let started = Instant::now();
    for d in 0..days {
        let day = first
            .checked_add(jiff::Span::new().days(d as i64))
            .unwrap()
            .to_string();
        let bodies: Vec<(String, Vec<u8>)> = (0..schools)
            .map(|s| {
                let signed =
                    edudns::stats::sign::sign(input(s, &day, &mut rng, &lists), &keys[s]).unwrap();
                (
                    format!("school-{s:04}"),
                    serde_json::to_vec(&signed).unwrap(),
                )
            })
            .collect();
        bytes += bodies.iter().map(|(_, b)| b.len()).sum::<usize>();
        let t = Instant::now();
        let cpu = cpu_seconds();
        // As the office's `POST /api/v1/ingest` handlers do: each request
        // checks its input on a thread of its own, then queues it for the
        // writer (group commit) and waits for the answer.
        std::thread::scope(|scope| {
            for part in bodies.chunks(bodies.len().div_ceil(senders)) {
                let (office, store, key_dir, checking) = (&office, &store, &key_dir, &checking);
                scope.spawn(move || {
                    for (school, body) in part {
                        let cpu = thread_cpu_seconds();
                        let checked =
                            edudns::office::ingest::check_input(body, school, key_dir, today)
                                .unwrap();
                        *checking.lock().unwrap() += thread_cpu_seconds() - cpu;
                        let receipt = office
                            .submit(store.clone(), checked)
                            .blocking_recv()
                            .unwrap()
                            .unwrap()
                            .unwrap();
                        assert_eq!(receipt.stored, edudns::office::ingest::Stored::New);
                    }
                });
            }
        });
        ingest += t.elapsed();
        ingest_cpu += cpu_seconds() - cpu;
        if (d + 1) % 30 == 0 || d + 1 == days {
            eprintln!(
                "ingest: {} of {days} days, {:.0} school-days/s so far ({:.0} s in all)",
                d + 1,
                ((d + 1) * schools) as f64 / ingest.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let store = store.lock().unwrap();
    let db = store.connection();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let size = std::fs::metadata(&db_path).unwrap().len();
    let school_days = schools * days;
    let per_1000_years = size as f64 / (school_days as f64 / 365_000.0);
    let last = first
        .checked_add(jiff::Span::new().days(days as i64 - 1))
        .unwrap();
    let month_from = last
        .checked_sub(jiff::Span::new().days(29))
        .unwrap()
        .max(first);
    let time = |from: jiff::civil::Date| {
        let t = Instant::now();
        let merged = edudns::office::district::district_report(
            db,
            &from.to_string(),
            &last.to_string(),
            None,
        )
        .unwrap();
        (
            t.elapsed(),
            merged.report.totals.queries,
            merged.report.schools.len(),
        )
    };
    // The last inputs are still queued for the roll-ups: the first report
    // adds them, as an office's first report after a burst of sends does.
    let (month, month_queries, month_schools) = time(month_from);
    let (year, year_queries, year_schools) = time(first);
    let (again, ..) = time(first);
    let tables: Vec<(String, i64)> = db
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    println!("office ingest, {schools} schools × {days} days = {school_days} school-days");
    println!(
        "  inputs: {:.1} KiB each on average (signed JSON as sent)",
        bytes as f64 / school_days as f64 / 1024.0
    );
    println!(
        "  ingest: {:.0} school-days/s of wall time ({:.1} s), {:.0} per CPU-second (target ≥ 1,000/s)",
        school_days as f64 / ingest.as_secs_f64(),
        ingest.as_secs_f64(),
        school_days as f64 / ingest_cpu
    );
    println!(
        "  database: {:.1} MiB, {:.0} MiB per 1,000 school-years (target ≤ 1,024; includes the last {} days' compressed inputs)",
        size as f64 / 1_048_576.0,
        per_1000_years / 1_048_576.0,
        edudns::office::ingest::RAW_INPUT_DAYS
    );
    println!(
        "  district report, last 30 days: {:.2} s ({month_schools} schools, {month_queries} queries)",
        month.as_secs_f64()
    );
    println!(
        "  district report, all {days} days: {:.2} s ({year_schools} schools, {year_queries} queries; target ≤ 2 s for a year of 1,000 schools), {:.2} s asked again",
        year.as_secs_f64(),
        again.as_secs_f64()
    );
    let figures = &office.figures;
    let batches = figures.batches.load(std::sync::atomic::Ordering::Relaxed);
    let batched = figures.batched.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  commits: {batches} transactions, {:.1} inputs each on average ({senders} senders)",
        batched as f64 / batches.max(1) as f64
    );
    let checking = *checking.lock().unwrap();
    println!(
        "  CPU per input: {:.0} µs checking (JSON, signature; on the senders' threads), {:.0} µs the rest (the writer's)",
        checking / school_days as f64 * 1e6,
        (ingest_cpu - checking) / school_days as f64 * 1e6
    );
    println!("  database by table and index (MiB):");
    for (name, bytes) in tables.iter().take(12) {
        println!("    {name:<40} {:>8.1}", *bytes as f64 / 1_048_576.0);
    }
    if let Ok(keep) = std::env::var("KEEP_DB") {
        std::fs::copy(&db_path, &keep).unwrap();
        println!("  database kept at {keep}");
    }
}
