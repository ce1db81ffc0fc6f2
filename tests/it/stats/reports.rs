//! Reports made by the `edudns` binary: signed, verified, tampered with,
//! rendered, and merged (replicas of one school into the report of one
//! server; the same statistics twice refused).

use super::{BIN, send, today, two_schools, upstream};
use crate::harness::*;
use std::path::Path;
use std::process::Command;

fn edudns(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn signed_reports_verify_detect_tampering_and_merge_exactly() {
    let server = TestServer::start(&two_schools(), None).await;
    send(&server, "127.0.0.2", "bet.example.", 14).await;
    send(&server, "127.0.1.7", "casino.example.", 21).await;
    server.running.flush().unwrap();
    let dir = server.dir.path();
    let config = "edudns.toml";
    for school in ["s1", "s2"] {
        let out = edudns(&["keys", "init", "-c", config, "--school", school], dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(format!("keys/{school}.key")))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "private key is private");
    }
    assert!(
        !edudns(&["keys", "init", "-c", config, "--school", "s1"], dir)
            .status
            .success(),
        "never overwrites a key"
    );
    let day = today();
    for school in ["s1", "s2"] {
        let out = edudns(
            &[
                "report",
                "-c",
                config,
                "--school",
                school,
                "--from",
                &day,
                "--to",
                &day,
                "-o",
                &format!("{school}.json"),
            ],
            dir,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let verify = edudns(
            &[
                "report",
                "verify",
                &format!("{school}.json"),
                "--key",
                &format!("keys/{school}.pub"),
            ],
            dir,
        );
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    // The wrong school's key is refused.
    assert!(
        !edudns(
            &["report", "verify", "s1.json", "--key", "keys/s2.pub"],
            dir
        )
        .status
        .success()
    );

    let merged = edudns(
        &["report", "merge", "s1.json", "s2.json", "--key-dir", "keys"],
        dir,
    );
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(merged["report"]["totals"]["blocked"], 35, "14 + 21");
    assert_eq!(merged["report"]["schools"].as_array().unwrap().len(), 2);
    let gambling = merged["report"]["blocked_by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "gambling")
        .unwrap()
        .clone();
    assert_eq!(gambling["count"], 35);

    // Tamper with one number: verification and merging both fail.
    let text = std::fs::read_to_string(dir.join("s2.json")).unwrap();
    let tampered = text.replacen("\"blocked\": 21", "\"blocked\": 2", 1);
    assert_ne!(text, tampered);
    std::fs::write(dir.join("s2.json"), tampered).unwrap();
    let verify = edudns(&["report", "verify", "s2.json"], dir);
    assert_eq!(verify.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&verify.stderr).contains("INVALID"));
    assert!(
        !edudns(&["report", "merge", "s1.json", "s2.json"], dir)
            .status
            .success()
    );

    let html = edudns(
        &[
            "report", "-c", config, "--school", "s1", "--from", &day, "--to", &day, "--format",
            "html",
        ],
        dir,
    );
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Báo cáo") && !html.contains("<script"),
        "inline chart, no scripts"
    );
}

/// `edudns report` of school s1 for `day` in the server directory `dir`.
fn report_s1(dir: &Path, day: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "report",
        "-c",
        "edudns.toml",
        "--school",
        "s1",
        "--from",
        day,
        "--to",
        day,
    ];
    args.extend(extra);
    edudns(&args, dir)
}

fn succeeded(out: &std::process::Output) -> bool {
    if !out.status.success() {
        eprintln!(
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The numbers of a signed report: without the signature, when it was made,
/// which databases it counted and when each node loaded its lists.
fn numbers(signed: &serde_json::Value) -> serde_json::Value {
    let mut report = signed["report"].clone();
    let object = report.as_object_mut().unwrap();
    object.remove("generated_at");
    object.remove("sources");
    for list in object["lists"].as_array_mut().unwrap() {
        list.as_object_mut().unwrap().remove("loaded_at");
    }
    report
}

fn count(signed: &serde_json::Value, section: &str, key: &str) -> serde_json::Value {
    signed["report"][section]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .map(|c| c["count"].clone())
        .unwrap_or_default()
}

/// One school served by three replicas (same configuration, each with its
/// own state directory, database and signing key) and, for comparison, one
/// server that answers every query the three answered. Per replica the cells
/// are below k; their `--for-merge` reports, merged by the real binary, give
/// the single server's report number for number.
#[tokio::test]
async fn replica_reports_merge_into_the_report_of_one_server() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(TestServer::start(&base_config(""), Some(upstream().await)).await);
    }
    let single = TestServer::start(&base_config(""), Some(upstream().await)).await;
    // (replica, client, name, times). Gambling: 9 + 8 + 8 = 25 blocks, each
    // replica's below k = 10; social: 3, hidden even after the merge;
    // deny_list: 11, then hidden with social by complementary suppression.
    let mix: &[(usize, &str, &str, usize)] = &[
        (0, "127.0.0.2", "bet.example.", 4),
        (1, "127.0.0.2", "bet.example.", 5),
        (2, "127.0.0.2", "bet.example.", 3),
        (0, "127.0.0.3", "casino.example.", 5),
        (1, "127.0.0.3", "casino.example.", 3),
        (2, "127.0.0.3", "casino.example.", 5),
        (0, "127.0.0.2", "www.social.example.", 2),
        (2, "127.0.0.2", "www.social.example.", 1),
        (1, "127.0.0.2", "deny.example.", 6),
        (2, "127.0.0.2", "deny.example.", 5),
        (0, "127.0.0.2", "allowed.example.", 3),
        (1, "127.0.0.3", "allowed.example.", 4),
        (2, "127.0.0.4", "allowed.example.", 2),
    ];
    for (replica, client, name, times) in mix {
        send(&replicas[*replica], client, name, *times).await;
        send(&single, client, name, *times).await;
    }
    for server in replicas.iter().chain([&single]) {
        server.running.flush().unwrap();
    }

    let day = today();
    let office = tempfile::tempdir().unwrap();
    let office = office.path();
    std::fs::create_dir(office.join("keys")).unwrap();
    // Each replica signs with a key of its own; the office keeps the public
    // keys as s1.pub, s1.b.pub, s1.c.pub.
    for (i, (replica, key_name)) in replicas.iter().zip(["s1", "s1.b", "s1.c"]).enumerate() {
        let dir = replica.dir.path();
        assert!(succeeded(&edudns(
            &["keys", "init", "-c", "edudns.toml", "--school", "s1"],
            dir
        )));
        std::fs::copy(
            dir.join("keys/s1.pub"),
            office.join(format!("keys/{key_name}.pub")),
        )
        .unwrap();
        assert!(succeeded(&report_s1(
            dir,
            &day,
            &["--for-merge", "-o", "input.json"]
        )));
        std::fs::copy(dir.join("input.json"), office.join(format!("r{i}.json"))).unwrap();
        assert!(succeeded(&report_s1(dir, &day, &["-o", "final.json"])));
        std::fs::copy(
            dir.join("final.json"),
            office.join(format!("final{i}.json")),
        )
        .unwrap();
    }
    assert!(succeeded(&report_s1(
        single.dir.path(),
        &day,
        &["-o", "single.json"]
    )));
    let single_report = read_json(&single.dir.path().join("single.json"));

    // A merge input is exact; the same replica's final report hides.
    let input = read_json(&office.join("r0.json"));
    assert_eq!(input["report"]["stage"], "merge-input");
    assert_eq!(count(&input, "blocked_by_category", "social"), 2);
    assert_eq!(count(&input, "blocked_by_category", "gambling"), 9);
    let verify = edudns(
        &["report", "verify", "r0.json", "--key", "keys/s1.pub"],
        office,
    );
    assert!(succeeded(&verify), "the signature is valid");
    assert!(String::from_utf8_lossy(&verify.stderr).contains("NOT for publication"));
    let final0 = read_json(&office.join("final0.json"));
    assert!(final0["report"].get("stage").is_none());
    assert_eq!(count(&final0, "blocked_by_category", "gambling"), "<10");

    // The merge: every input verified against its school's keys, the
    // result signed with the key of the first replica.
    let merge = |files: &[&str], extra: &[&str]| {
        let mut args = vec!["report", "merge"];
        args.extend(files);
        args.extend(extra);
        edudns(&args, office)
    };
    let signing_key = replicas[0].path("keys/s1.key");
    let out = merge(
        &["r0.json", "r1.json", "r2.json"],
        &[
            "--key-dir",
            "keys",
            "--sign-key",
            signing_key.to_str().unwrap(),
            "-o",
            "merged.json",
        ],
    );
    assert!(succeeded(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "exact inputs, no warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = read_json(&office.join("merged.json"));
    assert_eq!(numbers(&merged), numbers(&single_report));
    // What that equality covers.
    assert_eq!(merged["report"]["schools"].as_array().unwrap().len(), 1);
    assert_eq!(merged["report"]["sources"].as_array().unwrap().len(), 3);
    assert_eq!(count(&merged, "blocked_by_category", "gambling"), 25);
    assert_eq!(count(&merged, "blocked_by_category", "social"), "<10");
    assert_eq!(count(&merged, "blocked_by_category", "deny_list"), "<10");
    assert_eq!(count(&merged, "blocked_by_band", "teen"), 13);
    assert_eq!(merged["report"]["totals"]["blocked"], 39);
    assert_eq!(merged["report"]["totals"]["allowed"], 9);
    assert_eq!(merged["report"]["daily"][0]["blocked"], 39);
    assert_eq!(
        merged["report"]["lists"].as_array().unwrap().len(),
        single_report["report"]["lists"].as_array().unwrap().len(),
        "list versions once, not once per replica"
    );
    let replica_key = replicas[0].path("keys/s1.pub");
    assert!(succeeded(&edudns(
        &[
            "report",
            "verify",
            "merged.json",
            "--key",
            replica_key.to_str().unwrap()
        ],
        office
    )));
    // --key, repeated, instead of a key directory.
    assert!(succeeded(&merge(
        &["r0.json", "r1.json", "r2.json"],
        &[
            "--key",
            "keys/s1.pub",
            "--key",
            "keys/s1.b.pub",
            "--key",
            "keys/s1.c.pub"
        ],
    )));
    // A replica whose key the office does not have is refused.
    std::fs::rename(office.join("keys/s1.c.pub"), office.join("s1.c.pub")).unwrap();
    let out = merge(&["r0.json", "r1.json", "r2.json"], &["--key-dir", "keys"]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("r2.json"));
    std::fs::rename(office.join("s1.c.pub"), office.join("keys/s1.c.pub")).unwrap();

    // Final (suppressed) replica reports cannot be merged exactly: the
    // merge keeps today's lower bounds and names the hidden cells.
    let out = merge(&["final0.json", "final1.json", "final2.json"], &[]);
    assert!(succeeded(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("final1.json: blocked_by_category gambling is hidden (<10)"),
        "{stderr}"
    );
    let lower_bounds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        count(&lower_bounds, "blocked_by_category", "gambling")
            .as_str()
            .unwrap()
            .starts_with('≥')
    );

    // A merge input is never published as it is.
    let out = report_s1(
        replicas[0].dir.path(),
        &day,
        &["--for-merge", "--format", "html"],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JSON only"));
}

#[tokio::test]
async fn merging_the_same_statistics_twice_is_refused() {
    let server = TestServer::start(&base_config(""), None).await;
    send(&server, "127.0.0.2", "bet.example.", 12).await;
    server.running.flush().unwrap();
    let dir = server.dir.path();
    assert!(succeeded(&edudns(
        &["keys", "init", "-c", "edudns.toml", "--school", "s1"],
        dir
    )));
    let day = today();
    let report = |output: &str| report_s1(dir, &day, &["--for-merge", "-o", output]);
    assert!(succeeded(&report("a.json")));
    std::fs::copy(dir.join("a.json"), dir.join("copy.json")).unwrap();
    // Made again from the same database: another file, the same rows.
    assert!(succeeded(&report("again.json")));
    for files in [
        ["a.json", "a.json"],
        ["a.json", "copy.json"],
        ["a.json", "again.json"],
    ] {
        let out = edudns(&["report", "merge", files[0], files[1]], dir);
        assert_eq!(out.status.code(), Some(65), "{files:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("counted twice"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing merged");
    }
    // Alone, the input is published with k-anonymity: 12 blocks, exact.
    let out = edudns(&["report", "merge", "a.json"], dir);
    assert!(succeeded(&out));
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(merged["report"].get("stage").is_none());
    assert_eq!(count(&merged, "blocked_by_category", "gambling"), 12);
}
