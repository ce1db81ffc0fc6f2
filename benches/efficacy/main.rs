//! The efficacy benchmark (`cargo bench --bench efficacy`, docs/efficacy.md).
//!
//! It starts the real `edudns` binary on the installed configuration
//! (`config/examples/school.toml`) with a loopback mirror serving every
//! default subscription from its copy in `../shared/data`, waits for the
//! downloads, and measures:
//! - start: first answer, all lists loaded, RSS; the same after a restart
//!   from the compiled lists (docs/performance.md);
//! - (a) parsing recall: every listed name of every default source, and a
//!   random subdomain of each, asked over DNS from the strictest band;
//! - (b) coverage, leave-one-out: per category, how much of each source
//!   the other sources and the curated floor still block (in process);
//! - (c) false alarms: a child-friendly set and the protected names, asked
//!   from every band;
//! - (d) cost: the share of the Umbrella top 10k blocked per band (over
//!   DNS) and per category (in process).
//!
//! The tables are written into docs/efficacy.md and docs/performance.md
//! between their markers; the misses go to target/efficacy/misses.txt.
//! Exit status 1 when a recall is under 99.9 % or a false alarm happens.
//!
//! `run` is the sequence of those parts: `server` starts and restarts
//! edudns, `recall` is (a), `categories` the in-process parts of (b) and
//! (d), `bands` what every band is answered over DNS ((c) and (d)); `data`
//! reads what they ask and `report` writes the results.

mod bands;
mod categories;
mod data;
#[allow(dead_code)] // shared with tests/it/defaults.rs, which uses the rest
mod install;
mod net;
mod reader;
mod recall;
mod report;
mod server;

use edudns::lists::protected::ProtectedNames;
use install::{REPO, SINKHOLE, default_sources};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run())
}

async fn run() -> ExitCode {
    net::self_check();
    reader::self_check();
    let out_dir = PathBuf::from(format!("{REPO}/target/efficacy"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let sinkhole: Ipv4Addr = SINKHOLE.parse().unwrap();
    let protected = ProtectedNames::embedded();
    let allows = data::Allows::read();
    let sources = default_sources();
    let loaded = data::load_sources(&sources, &protected);
    let available: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    let missing: Vec<&str> = sources
        .iter()
        .filter(|s| s.data.is_none())
        .map(|s| s.source.name.as_str())
        .collect();
    eprintln!(
        "efficacy: {} default sources ({} with a copy in ../shared/data)",
        sources.len(),
        loaded.len()
    );

    // The server on the installed configuration: first start, restart.
    let mut started = server::start_and_restart(&sources, &available, &missing, &out_dir).await;
    let dns = started.server.dns;
    // (a) Parsing recall over DNS, from THCS.
    let recall = recall::recall(dns, sinkhole, &loaded, &protected, &allows, &out_dir).await;
    // (b) Leave-one-out coverage, in process.
    let floor = data::curated_floor_by_category();
    let coverage_table = categories::leave_one_out(&loaded, &floor);
    // (c) False alarms and the held-out check, (d) the top 10k: every band
    // over DNS.
    let (friendly, friendly_len) = data::never_blocked();
    let held_out = data::held_out_child_friendly();
    let top = data::top_sites();
    let bands = bands::ask_bands(dns, sinkhole, &friendly, &held_out, &top).await;
    let final_rss = started.server.finish(&out_dir).await;
    // (d) per category, in process.
    let category_table = categories::top_per_category(&loaded, &floor, &top);

    // Reports.
    let now = report::school_time();
    let results = report::results(&report::Results {
        now: &now,
        sources: sources.len(),
        loaded: &loaded,
        missing: &missing,
        recall_table: &recall.table,
        all_blocked: recall.blocked,
        all_asked: recall.asked,
        questions: recall.questions,
        ask_secs: recall.secs,
        excluded: &recall.excluded,
        coverage_table: &coverage_table,
        friendly_len,
        alarm_table: &bands.alarms,
        held_out_table: &bands.held_out,
        top_table: &bands.top,
        category_table: &category_table,
    });
    report::write_between("docs/efficacy.md", "efficacy:results", &results);
    let startup = &started.startup;
    let startup_text = report::startup(&now, &loaded, sources.len(), startup, final_rss);
    report::write_between("docs/performance.md", "efficacy:startup", &startup_text);
    println!("{results}\n{startup_text}");

    let mut status = ExitCode::SUCCESS;
    for (what, value, target) in [
        ("first answer", startup.first_answer.as_secs_f64(), 1.0),
        (
            "restart to serving",
            startup.restart_loaded.as_secs_f64(),
            0.5,
        ),
        ("RSS (MiB)", startup.restart_rss.1.max(final_rss.1), 96.0),
    ] {
        if value > target {
            eprintln!("efficacy: warning: {what} {value:.2} above the target {target}");
        }
    }
    if !recall.failed.is_empty() {
        eprintln!(
            "efficacy: FAILED: recall under 99.9 %: {}",
            recall.failed.join(", ")
        );
        status = ExitCode::FAILURE;
    }
    if !bands.false_alarms.is_empty() {
        eprintln!(
            "efficacy: FAILED: false alarms: {}",
            bands.false_alarms.join(", ")
        );
        status = ExitCode::FAILURE;
    }
    status
}
