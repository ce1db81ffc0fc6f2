//! The reports: the results section of docs/efficacy.md and the start-up
//! table of docs/performance.md, each written between its markers.

use crate::data::{Loaded, thpt_social_in_force};
use crate::install::REPO;
use crate::server::Startup;
use std::collections::HashSet;
use std::fmt::Write as _;

/// `part` of `whole` as a table cell (`–` when there is no whole).
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".to_string();
    }
    format!("{:.2} %", 100.0 * part as f64 / whole as f64)
}

/// Replaces the text between `<!-- {marker}:begin -->` and its end marker.
pub fn write_between(file: &str, marker: &str, body: &str) {
    let path = format!("{REPO}/{file}");
    let text = std::fs::read_to_string(&path).unwrap();
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        panic!("{file} lacks the markers {begin} … {end}");
    };
    let out = format!("{}{begin}\n{body}\n{}", &text[..a], &text[b..]);
    std::fs::write(&path, out).unwrap();
}

/// Now, in school time (Asia/Ho_Chi_Minh).
pub fn school_time() -> jiff::ZonedDateTime {
    jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap())
}

/// What the results section shows: the sources, then each part's table(s)
/// and figures, as the parts measured them.
pub struct Results<'a> {
    pub now: &'a jiff::ZonedDateTime,
    /// How many default sources there are; those with a copy read; the
    /// names of those without.
    pub sources: usize,
    pub loaded: &'a [Loaded],
    pub missing: &'a [&'a str],
    /// (a) Parsing recall.
    pub recall_table: &'a str,
    pub all_blocked: usize,
    pub all_asked: usize,
    pub questions: usize,
    pub ask_secs: f64,
    pub excluded: &'a str,
    /// (b) Leave-one-out coverage.
    pub coverage_table: &'a str,
    /// (c) False alarms: the size of the child-friendly set, the false
    /// alarms, the held-out check.
    pub friendly_len: usize,
    pub alarm_table: &'a str,
    pub held_out_table: &'a str,
    /// (d) Cost: per band, per category.
    pub top_table: &'a str,
    pub category_table: &'a str,
}

/// The results section of docs/efficacy.md.
pub fn results(results: &Results) -> String {
    let &Results {
        now,
        sources,
        loaded,
        missing,
        recall_table,
        all_blocked,
        all_asked,
        questions,
        ask_secs,
        excluded,
        coverage_table,
        friendly_len,
        alarm_table,
        held_out_table,
        top_table,
        category_table,
    } = results;
    let versions = versions(loaded);
    format!(
        "Run on {date} ({time} school time, Asia/Ho_Chi_Minh) with `cargo bench --bench efficacy`; \
         {sources} default sources, {copies} of them with a copy in `../shared/data` \
         (missing there: {missing}).\n\n\
         ### List versions\n\n{versions}\n\
         ### (a) Parsing recall over DNS (band THCS)\n\n{recall_table}\n\
         All sources: {all_blocked} of {all_asked} questions blocked ({all_share}), \
         {questions} distinct questions in {ask_secs:.1} s. Lines that name nothing a DNS \
         filter can block (left out of the recall): {excluded}.\n\n\
         ### (b) Coverage, leave-one-out (in process)\n\n{coverage_table}\n\
         ### (c) False alarms ({friendly_len} child-friendly names and the protected names)\n\n{alarm_table}\n\
         A held-out check, not tuned against: UT1's `child` and `educational_games` lists \
         (sites for children, `../shared/data/ut1/`), asked from every band:\n\n{held_out_table}\n\
         ### (d) Cost: the Umbrella top 10k\n\n\
         Per band, over DNS (the THPT social schedule was {thpt_social} at the time of the run):\n\n{top_table}\n\
         Per category, in process (the category's sources after protection, and its curated floor):\n\n{category_table}",
        date = now.date(),
        time = now.time().strftime("%H:%M"),
        copies = loaded.len(),
        missing = if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        },
        all_share = percent(all_blocked, all_asked),
        thpt_social = if thpt_social_in_force(now) {
            "in force"
        } else {
            "not in force"
        },
    )
}

/// The start-up table of docs/performance.md: what the two starts measured,
/// and the RSS after the whole benchmark.
pub fn startup(
    now: &jiff::ZonedDateTime,
    loaded: &[Loaded],
    sources: usize,
    startup: &Startup,
    final_rss: (f64, f64),
) -> String {
    let unique: HashSet<&str> = loaded
        .iter()
        .flat_map(|l| l.rules.iter().map(String::as_str))
        .collect();
    format!(
        "Run on {date} with `cargo bench --bench efficacy` (release build, loopback mirror of \
         `../shared/data`, {copies} of {sources} default sources available):\n\n\
         | Measure | Value | Target |\n|---|---:|---:|\n\
         | Unique listed domains (after protection) | {unique} | |\n\
         | Rules loaded (`edudns_list_entries`, all categories) | {total_rules} | |\n\
         | First start: first answer | {fa:.3} s | ≤ 1 s |\n\
         | First start: every list downloaded and loaded | {fl:.1} s | |\n\
         | First start: RSS when loaded (peak) | {fr:.0} MiB ({fp:.0} MiB) | ≤ 96 MiB |\n\
         | Restart: first answer | {ra:.3} s | ≤ 0.5 s |\n\
         | Restart: every list loaded from the compiled cache | {rl:.3} s | ≤ 0.5 s |\n\
         | Restart: RSS when loaded (peak) | {rr:.0} MiB ({rp:.0} MiB) | ≤ 96 MiB |\n\
         | RSS after the whole benchmark (peak) | {er:.0} MiB ({ep:.0} MiB) | ≤ 96 MiB |\n",
        date = now.date(),
        copies = loaded.len(),
        unique = unique.len(),
        fa = startup.first_answer.as_secs_f64(),
        fl = startup.first_loaded.as_secs_f64(),
        fr = startup.first_rss.0,
        fp = startup.first_rss.1,
        ra = startup.restart_answer.as_secs_f64(),
        rl = startup.restart_loaded.as_secs_f64(),
        rr = startup.restart_rss.0,
        rp = startup.restart_rss.1,
        er = final_rss.0,
        ep = final_rss.1,
        total_rules = startup.total_rules,
    )
}

/// The list versions table: each source's copy and its header's version.
fn versions(loaded: &[Loaded]) -> String {
    let mut versions = String::from(
        "| Source | Category | Copy | Bytes | Lines | SHA-256 | Header |\n|---|---|---|---:|---:|---|---|\n",
    );
    for l in loaded {
        let file = l
            .file
            .strip_prefix(REPO)
            .unwrap_or(&l.file)
            .display()
            .to_string();
        let _ = writeln!(
            versions,
            "| {} | {} | `{}` | {} | {} | `{}` | {} |",
            l.name,
            l.category,
            file.trim_start_matches('/'),
            l.bytes,
            l.lines,
            l.sha256,
            if l.version.is_empty() {
                "–".to_string()
            } else {
                l.version.replace('|', "/")
            }
        );
    }
    versions
}
