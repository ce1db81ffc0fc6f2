//! The real binary: start-up on the shipped config, SIGHUP, check-config and
//! explain. Also parses every config shipped in the repository.

use crate::harness::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_edudns");

fn repo(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}

/// Collects stderr lines of a child on a channel.
fn lines_of(stderr: std::process::ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// A loopback port free for both UDP and TCP (the server binds both; a
/// port free only for UDP failed a CI run with "Address already in use").
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn binary_serves_the_shipped_config_reloads_on_sighup_and_stops_on_sigterm() {
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "-c", &repo("config/edudns.toml")])
        .args(["--dns-listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", "127.0.0.1:1"])
        .env("EDUDNS_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    assert!(
        wait_for(&rx, "listening on 127.0.0.1", &mut seen),
        "no listening line: {seen:#?}"
    );

    let dig = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+short",
            "+tries=1",
            "+time=3",
            "pornhub.com",
        ])
        .output()
        .expect("dig is installed (.ci/run installs bind9-dnsutils)");
    assert_eq!(
        String::from_utf8_lossy(&dig.stdout).trim(),
        "127.0.0.1",
        "shipped demo blocks adult sites"
    );

    // SIGHUP is handled from "edudns started" on (before, it would end the process).
    assert!(
        wait_for(&rx, "edudns started", &mut seen),
        "no started line: {seen:#?}"
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(
        wait_for(&rx, "reload succeeded", &mut seen),
        "no reload line: {seen:#?}"
    );
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[test]
fn check_config_accepts_every_shipped_config() {
    let mut files = Vec::new();
    for dir in ["config", "config/examples", "tests/fixtures"] {
        let Ok(entries) = std::fs::read_dir(repo(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "toml")
                && !entry.path().to_string_lossy().contains("invalid")
            {
                files.push(entry.path());
            }
        }
    }
    assert!(
        files.len() >= 2,
        "config/edudns.toml and at least one example: {files:?}"
    );
    for file in files {
        let output = Command::new(BIN)
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("OK"));
    }
}

#[test]
fn check_config_names_file_key_and_line_of_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = base_config("")
        .replace(
            r#"sinkhole_ipv4 = "10.99.0.1""#,
            r#"sinkhole_ipv4 = "10.99.0""#,
        )
        .replace(
            r#"block = ["gambling"]"#,
            r#"block = ["gambling", "gamblin"]"#,
        )
        .replace(r#"teen = ["127.0.0.3/32"]"#, r#"teen = ["127.0.0.300/32"]"#);
    write(&path, &text);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let output = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78), "config errors exit 78");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display().to_string();
    for (needle, key) in [
        ("10.99.0\"", "blocking.sinkhole_ipv4"),
        ("gamblin\"", "band[1].block[1]"),
        ("127.0.0.300", "school[0].bands.teen[0]"),
    ] {
        let expected = format!("{file}:{}: {key}:", line_of(needle));
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("3 errors"),
        "all errors collected:\n{stderr}"
    );

    // An unknown key and a missing list file.
    write(
        &path,
        &base_config("").replace("[upstream]", "[upstream]\nservrs = []"),
    );
    let output = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("{file}:"))
            && stderr.contains("upstream")
            && stderr.contains("servrs"),
        "{stderr}"
    );

    write(&path, &base_config(""));
    let output = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "lists/gambling.txt does not exist next to it"
    );
    assert!(
        stderr.contains("category[0].lists[0]") && stderr.contains("lists/gambling.txt"),
        "{stderr}"
    );
}

#[test]
fn explain_tells_school_band_verdict_category_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    write(&dir.path().join("lists/gambling.txt"), GAMBLING);
    write(&dir.path().join("lists/social.txt"), SOCIAL);
    let config = dir.path().join("edudns.toml");
    write(&config, &base_config(""));
    let explain = |client: &str, name: &str| {
        let output = Command::new(BIN)
            .args(["explain", "-c"])
            .arg(&config)
            .args(["--client", client, name])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let blocked = explain("127.0.0.2", "www.casino.example");
    assert!(blocked.contains("Trường Thử / Test school"), "{blocked}");
    assert!(blocked.contains("band:    young"), "{blocked}");
    assert!(blocked.contains("BLOCKED"), "{blocked}");
    assert!(
        blocked.contains("Cờ bạc / Gambling (gambling)"),
        "{blocked}"
    );
    assert!(
        blocked.contains("casino.example listed in lists/gambling.txt line 3"),
        "{blocked}"
    );

    let exception = explain("127.0.0.2", "ok.bet.example");
    assert!(
        exception.contains("ALLOWED") && exception.contains("allow list of band young"),
        "{exception}"
    );
    let line = base_config("")
        .lines()
        .position(|l| l.contains("ok.bet.example"))
        .unwrap()
        + 1;
    assert!(
        exception.contains(&format!("edudns.toml:{line}: band[0].allow[0]")),
        "{exception}"
    );

    let staff = explain("127.0.0.4", "www.casino.example");
    assert!(
        staff.contains("band:    staff") && staff.contains("ALLOWED"),
        "{staff}"
    );
    let outside = explain("192.0.2.1", "www.casino.example");
    assert!(outside.contains("REFUSED"), "{outside}");
    assert!(Path::new(BIN).exists());
}

#[test]
fn explain_at_a_time_names_the_schedule_window_and_safe_search() {
    let config = repo("config/examples/school.toml");
    let run = |at: &str, name: &str| {
        let output = Command::new(BIN)
            .args([
                "explain",
                "-c",
                &config,
                "--client",
                "10.20.33.4",
                "--at",
                at,
                name,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let lesson = run("2026-11-24 08:00", "www.facebook.com");
    assert!(
        lesson.contains("BLOCKED")
            && lesson.contains("schedule: blocked mon-sat 07:00-11:30, 13:30-17:00"),
        "{lesson}"
    );
    assert!(lesson.contains("band[1].schedule[0]"), "{lesson}");
    let lunch = run("2026-11-24 12:00", "www.facebook.com");
    assert!(lunch.contains("ALLOWED"), "{lunch}");
    let holiday = run("2027-02-08 08:00", "www.facebook.com");
    assert!(holiday.contains("ALLOWED"), "Tết holiday: {holiday}");
    let search = run("2026-11-24 08:00", "www.google.com.vn");
    assert!(
        search.contains("SAFE SEARCH") && search.contains("forcesafesearch.google.com"),
        "{search}"
    );
    let bad = Command::new(BIN)
        .args([
            "explain",
            "-c",
            &config,
            "--client",
            "10.20.33.4",
            "--at",
            "tomorrow",
            "x.com",
        ])
        .output()
        .unwrap();
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD HH:MM")
    );
}

#[test]
fn kill_9_loses_at_most_the_last_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    write(&dir.path().join("lists/gambling.txt"), GAMBLING);
    write(&dir.path().join("lists/social.txt"), SOCIAL);
    let port = free_port();
    let config = base_config("[stats]\nflush_interval_secs = 1\n").replace(
        "127.0.0.1:0\"]\nmanagement",
        &format!("127.0.0.1:{port}\"]\nmanagement"),
    );
    write(&dir.path().join("edudns.toml"), &config);
    let mut child = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(dir.path().join("edudns.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    assert!(
        wait_for(&rx, "listening on 127.0.0.1", &mut seen),
        "{seen:#?}"
    );
    let socket = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let query = query_message(1, "bet.example.", hickory_proto::rr::RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut buffer = [0u8; 512];
    for _ in 0..20 {
        socket.send_to(&query, ("127.0.0.1", port)).unwrap();
        socket.recv_from(&mut buffer).expect("answer");
    }
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap(); // SIGKILL: no shutdown flush
    child.wait().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("stats.sqlite")).unwrap();
    let blocked: i64 = db
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM hourly WHERE verdict = 'blocked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        blocked, 20,
        "every count older than one flush interval survived kill -9"
    );
}
