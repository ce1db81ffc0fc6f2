//! The installed configuration (`config/examples/school.toml`, what the
//! package puts in /etc/edudns) as a new school gets it: it passes
//! `check-config` before any list is downloaded; a fresh start answers at
//! once from the curated floor, then downloads every default subscription
//! from a loopback mirror of `../shared/data` (one source missing there, so
//! it fails without holding the others back) and blocks a name of each;
//! protected names survive a subscribed list that names them; and
//! `edudns lists update` shows its progress as lines or as bars.

use crate::harness::*;
use crate::upstream::TestUpstream;
use edudns::lists::catalogue;
use edudns::lists::formats;
use edudns::lists::protected::ProtectedNames;
use edudns::lists::status::{self, State as ListState};
use hickory_proto::rr::RecordType;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../benches/efficacy/install.rs"]
#[allow(dead_code)] // shared with the efficacy benchmark, which uses the rest
mod install;
use install::*;

const EDUDNS: &str = env!("CARGO_BIN_EXE_edudns");

/// A name the source blocks and nothing else of the installed
/// configuration would: not protected, not under a curated entry, not
/// allowed by the school or a band.
fn name_only_this_source_blocks(source: &DefaultSource, floor: &[String]) -> String {
    let file = source.data.as_ref().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let protected = ProtectedNames::embedded();
    let allowed = ["nguyendu.edu.vn", "moet.gov.vn", "tongdai111.vn", "zalo.me"];
    let mut found = None;
    formats::parse(&text, source.source.format, &mut |e| {
        let name = e.domain;
        if found.is_some()
            || e.action != edudns::lists::RuleAction::Block
            || !name.contains('.')
            || protected.blocked_by_entry(name).is_some()
            || floor.iter().any(|rule| covered(name, rule))
            || allowed.iter().any(|rule| covered(name, rule))
        {
            return;
        }
        found = Some(name.to_string());
    });
    found.unwrap_or_else(|| panic!("{}: no usable entry", file.display()))
}

fn blocked(message: &hickory_proto::op::Message) -> bool {
    a_records(message) == [SINKHOLE]
}

async fn metrics(server: &TestServer) -> Vec<Sample> {
    let (status, _, body) = http_get(server.running.management_addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    parse_exposition(&body)
}

#[test]
fn the_installed_configuration_passes_check_config_before_any_download() {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("edudns.toml");
    write(
        &config,
        &installed_config(
            state.path(),
            "http://127.0.0.1:9",
            "127.0.0.1:0",
            "127.0.0.1:0",
        ),
    );
    let output = Command::new(EDUDNS)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains(": OK"), "{stdout}");
    let subscriptions = default_sources().len();
    assert!(
        subscriptions >= 20,
        "only {subscriptions} default subscriptions"
    );
    assert!(
        stdout.contains(&format!(
            "{subscriptions} of {subscriptions} subscribed lists are not downloaded yet"
        )),
        "{stdout}"
    );
    // The file as shipped, unchanged: the package installs it as is.
    let output = Command::new(EDUDNS)
        .arg("check-config")
        .arg(format!("{REPO}/config/examples/school.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn every_category_of_the_installed_configurations_subscribes_and_keeps_a_curated_floor() {
    let catalogue = catalogue::parse(catalogue::EMBEDDED).unwrap();
    for file in [
        "config/examples/school.toml",
        "deploy/kubernetes/base/edudns.toml",
        "deploy/kubernetes/overlays/example-province/edudns.toml",
    ] {
        let text = std::fs::read_to_string(format!("{REPO}/{file}")).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        for category in doc["category"].as_array().unwrap() {
            let id = category["id"].as_str().unwrap();
            if id == "province" {
                continue; // the province's own list, not a catalogue category
            }
            let lists = category["lists"].as_array().unwrap();
            let subscribed: Vec<&str> = lists
                .iter()
                .filter_map(|l| l.get("source").and_then(|s| s.as_str()))
                .collect();
            assert!(!subscribed.is_empty(), "{file}: {id} subscribes to nothing");
            for name in &subscribed {
                let source = catalogue.iter().find(|s| s.name == *name);
                // One category of the configurations, "malware", takes the
                // catalogue's malware and phishing sources together.
                let fits = |c: &str| c == id || (id == "malware" && c == "phishing");
                assert!(
                    source.is_some_and(|s| fits(&s.category)),
                    "{file}: {id} subscribes to {name}, catalogued for another category"
                );
            }
            let floor = lists.iter().any(|l| {
                l.as_str()
                    .or_else(|| l.get("path").and_then(|p| p.as_str()))
                    .is_some_and(|p| {
                        p.contains("curated/") || p.starts_with("/usr/share/edudns/lists/")
                    })
            });
            assert!(floor, "{file}: {id} has no curated floor");
        }
    }
    // The demo configuration stays offline.
    let demo = std::fs::read_to_string(format!("{REPO}/config/edudns.toml")).unwrap();
    assert!(!demo.contains("source ="), "config/edudns.toml subscribes");
    assert!(!demo.contains("url ="), "config/edudns.toml subscribes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_filters_at_once_then_downloads_every_default_source() {
    let sources = default_sources();
    let floor = curated_floor();
    let mirror = Mirror::start(mirror_bodies(&sources), false).await;
    let state = tempfile::tempdir().unwrap();
    let config = installed_config(state.path(), &mirror.url(), "127.0.0.1:0", "127.0.0.1:0");
    let upstream = TestUpstream::builder().start().await;
    let server = TestServer::start(&config, Some(upstream)).await;

    // Nothing is downloaded yet (the mirror holds every answer), and the
    // curated floor already filters.
    assert!(blocked(
        &server.query_from(THCS, "pornhub.com", RecordType::A).await
    ));
    assert!(blocked(
        &server.query_from(STAFF, "fb88.com", RecordType::A).await
    ));
    let subscriptions = sources.len() as f64;
    let m = metrics(&server).await;
    assert_eq!(
        sample(&m, "edudns_list_subscriptions_pending", &[]),
        subscriptions
    );
    let chosen: Vec<(String, String)> = sources
        .iter()
        .filter(|s| s.data.is_some())
        .map(|s| {
            (
                s.source.name.clone(),
                name_only_this_source_blocks(s, &floor),
            )
        })
        .collect();
    for (source, name) in &chosen {
        let answer = server.query_from(THCS, name, RecordType::A).await;
        assert!(
            !blocked(&answer),
            "{name} ({source}) blocked before any download"
        );
    }
    // Downloads are under way, at most [lists] parallel_downloads at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running = sample(
            &metrics(&server).await,
            "edudns_list_downloads_running",
            &[],
        );
        assert!(running <= 4.0, "{running} downloads at once");
        if running > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no download started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    mirror.open();
    let available: Vec<&DefaultSource> = sources.iter().filter(|s| s.data.is_some()).collect();
    let missing: Vec<&DefaultSource> = sources.iter().filter(|s| s.data.is_none()).collect();
    assert!(
        !missing.is_empty(),
        "the test expects one source absent from the mirror"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let m = metrics(&server).await;
        let loaded = available
            .iter()
            .filter(|s| {
                sample(
                    &m,
                    "edudns_list_source_entries",
                    &[("source", &s.source.name)],
                ) > 0.0
            })
            .count();
        let failed = missing
            .iter()
            .filter(|s| {
                sample(
                    &m,
                    "edudns_list_downloads_total",
                    &[("source", &s.source.name), ("result", "rejected")],
                ) > 0.0
            })
            .count();
        if loaded == available.len() && failed == missing.len() {
            assert_eq!(
                sample(&m, "edudns_list_subscriptions_pending", &[]),
                missing.len() as f64,
                "only the sources with no copy stay without a list"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 180 s: {loaded} of {} sources loaded, {failed} of {} failed",
            available.len(),
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requested = mirror.requests.lock().unwrap().clone();
    for source in &sources {
        let path = mirror_path(&source.source.url);
        assert!(
            requested.contains(&path),
            "{} never asked for {path}",
            source.source.name
        );
    }

    for (source, name) in &chosen {
        let answer = server.query_from(THCS, name, RecordType::A).await;
        assert!(
            blocked(&answer),
            "{name} ({source}) not blocked after the download"
        );
    }

    let config = server.running.handler.snapshot.load().config.clone();
    let statuses = status::collect(&config, jiff::Timestamp::now().as_second());
    for list in statuses.iter().filter(|l| l.url.is_some()) {
        if missing.iter().any(|s| s.source.name == list.name) {
            assert_eq!(list.state, ListState::Failed, "{}", list.name);
            let error = list.last_error.as_deref().unwrap_or("");
            assert!(error.contains("404"), "{}: {error}", list.name);
        } else {
            assert_eq!(
                list.state,
                ListState::Ready,
                "{}: {:?}",
                list.name,
                list.last_error
            );
            assert!(list.entries.unwrap_or(0) > 0, "{}", list.name);
            assert!(list.bytes.unwrap_or(0) > 0, "{}", list.name);
        }
    }
    // The same from the command line, beside the running service.
    let stdout = lists_status(&config.path);
    for source in &missing {
        let line = stdout
            .lines()
            .find(|l| l.contains(&source.source.name))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("lỗi / failed"), "{line}");
    }
    let ready = stdout
        .lines()
        .filter(|l| l.contains("đã tải / ready"))
        .count();
    assert_eq!(ready, available.len(), "{stdout}");
}

/// A config with a subscribed gambling feed (which names protected names),
/// a local social list naming a protected name, and a band `deny` of one.
fn protected_config(mirror: &str) -> String {
    base_config("")
        .replace(
            "lists = [\"lists/gambling.txt\"]",
            &format!(
                "lists = [\"lists/gambling.txt\", {{ url = \"{mirror}/lists.example/feed.txt\", name = \"feed\", format = \"hosts\" }}]"
            ),
        )
        .replace(
            "deny = [\"deny.example\"]",
            "deny = [\"deny.example\", \"drive.google.com\"]",
        )
}

const FEED: &str = "\
# a subscribed list with bad data in it
0.0.0.0 bet-feed.example
0.0.0.0 google.com
0.0.0.0 classroom.google.com
0.0.0.0 drive.google.com
0.0.0.0 hanoi.edu.vn
0.0.0.0 tongdai111.vn
0.0.0.0 edu.vn
0.0.0.0 casino-feed.example
";

#[tokio::test]
async fn a_subscribed_list_never_blocks_a_protected_name_but_a_deny_and_a_local_list_do() {
    let bodies = HashMap::from([(
        "/lists.example/feed.txt".to_string(),
        FEED.as_bytes().to_vec(),
    )]);
    let mirror = Mirror::start(bodies, true).await;
    let upstream = TestUpstream::builder().start().await;
    let server = TestServer::start(&protected_config(&mirror.url()), Some(upstream)).await;
    // The local social list names a protected name: local lists are the
    // school's own choice and are not filtered.
    write(
        &server.path("lists/social.txt"),
        "social.example\nzalo.me\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !blocked_at(&server, "bet-feed.example", "10.99.0.1").await {
        assert!(Instant::now() < deadline, "the feed never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.running.reloader.reload("test").await.unwrap();

    assert!(blocked_at(&server, "casino-feed.example", "10.99.0.1").await);
    for name in [
        "google.com",
        "classroom.google.com",
        "hanoi.edu.vn",
        "tongdai111.vn",
        "edu.vn",
    ] {
        assert!(
            !blocked_at(&server, name, "10.99.0.1").await,
            "{name} blocked by a subscribed list"
        );
    }
    // Only an explicit deny blocks a protected name; a local list does too.
    assert!(blocked_at(&server, "drive.google.com", "10.99.0.1").await);
    assert!(blocked_at(&server, "zalo.me", "10.99.0.1").await);

    // Counted per list, with the lines, in the status, the metrics and explain.
    let config = server.running.handler.snapshot.load().config.clone();
    let statuses = status::collect(&config, jiff::Timestamp::now().as_second());
    let feed = statuses.iter().find(|l| l.name == "feed").unwrap();
    assert_eq!(feed.state, ListState::Ready);
    assert_eq!(feed.protected_ignored, 6, "{:?}", feed.protected_samples);
    assert_eq!(feed.entries, Some(2));
    let lines: BTreeMap<u32, &str> = feed
        .protected_samples
        .iter()
        .map(|s| (s.line, s.entry.as_str()))
        .collect();
    assert_eq!(lines.get(&3), Some(&"google.com"), "{lines:?}");
    assert_eq!(lines.get(&6), Some(&"hanoi.edu.vn"), "{lines:?}");
    let m = metrics(&server).await;
    assert_eq!(
        sample(&m, "edudns_list_protected_ignored", &[("source", "feed")]),
        6.0
    );
    let snapshot = server.running.handler.snapshot.load_full();
    let text = edudns::snapshot::explain::explain(
        &snapshot,
        "127.0.0.2".parse().unwrap(),
        "classroom.google.com",
        jiff::Timestamp::now(),
    );
    assert!(text.contains("protected: *.google.com"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ignored: feed") && l.contains("line 4: classroom.google.com")),
        "{text}"
    );
    let stdout = lists_status(&config.path);
    assert!(stdout.contains("google.com"), "{stdout}");
    assert!(stdout.contains("line 3"), "{stdout}");
}

/// What `edudns lists status` prints for the config at `path`.
fn lists_status(path: &Path) -> String {
    let output = Command::new(EDUDNS)
        .args(["lists", "status", "-c"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn blocked_at(server: &TestServer, name: &str, sinkhole: &str) -> bool {
    a_records(&server.query_from("127.0.0.2", name, RecordType::A).await) == [sinkhole]
}

/// `edudns lists update` on a config whose two subscriptions are on the
/// mirror, one of them missing there.
fn update_config(dir: &Path, mirror: &str) -> PathBuf {
    let config = base_config("")
        .replace(
            "lists = [\"lists/gambling.txt\"]",
            &format!(
                "lists = [\"lists/gambling.txt\", {{ url = \"{mirror}/lists.example/feed.txt\", name = \"feed\", format = \"hosts\" }}, {{ url = \"{mirror}/lists.example/gone.txt\", name = \"gone\", format = \"hosts\" }}]"
            ),
        )
        .replace("[blocking]", &format!("[lists]\ncache_dir = \"{}\"\n\n[blocking]", dir.join("cache").display()))
        .replace("[server]", &format!("[stats]\ndatabase = \"{}\"\n\n[server]", dir.join("stats.sqlite").display()));
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    write(&dir.join("lists/gambling.txt"), GAMBLING);
    write(&dir.join("lists/social.txt"), SOCIAL);
    let path = dir.join("edudns.toml");
    write(&path, &config);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_update_prints_lines_when_piped_and_bars_on_a_terminal() {
    let bodies = HashMap::from([(
        "/lists.example/feed.txt".to_string(),
        FEED.as_bytes().to_vec(),
    )]);
    let mirror = Mirror::start(bodies, true).await;
    let dir = tempfile::tempdir().unwrap();
    let config = update_config(dir.path(), &mirror.url());

    let output = tokio::process::Command::new(EDUDNS)
        .args(["lists", "update", "-c"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one list failed: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "feed: downloading {}/lists.example/feed.txt",
            mirror.url()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("feed: updated, 2 entries, ")
            && stdout.contains("6 lines ignored for protected names"),
        "{stdout}"
    );
    assert!(
        stderr.contains("gone: rejected") && stderr.contains("404"),
        "{stderr}"
    );
    assert!(
        stdout.contains("1 of 2 lists downloaded or current; 1 rejected"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("[=") && !stderr.contains("[="),
        "a bar when piped"
    );

    // Under a terminal (script(1) gives it a pty): one bar per list, no
    // plain "downloading" lines.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let command = format!("{EDUDNS} lists update -c {}", config.display());
    let output = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains(&format!("[{}]", "=".repeat(30))), "{shown}");
    assert!(shown.contains("updated, 2 entries"), "{shown}");
    assert!(!shown.contains("feed: downloading"), "{shown}");
    assert!(
        shown.contains("1 of 2 lists downloaded or current"),
        "{shown}"
    );
}
