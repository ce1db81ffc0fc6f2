//! Tokens from the CLI, and the tester saying what `edudns explain` says.

use super::{call, config};
use crate::harness::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_cli_work_and_the_tester_says_what_explain_says() {
    const BIN: &str = env!("CARGO_BIN_EXE_edudns");
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let config_path = server.path("edudns.toml");
    let bad = std::process::Command::new(BIN)
        .args([
            "tokens",
            "create",
            "--role",
            "school:nope",
            "--name",
            "x",
            "-c",
        ])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown school \"nope\""));
    let made = std::process::Command::new(BIN)
        .args([
            "tokens",
            "create",
            "--role",
            "school:s1",
            "--name",
            "Thầy Nam",
            "-c",
        ])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let (status, _, who) = call(api, "GET", "/api/v1/whoami", Some(&token), &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(who["role"], "school:s1");
    assert_eq!(who["name"], "Thầy Nam");
    let listed = std::process::Command::new(BIN)
        .args(["tokens", "list", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("school:s1") && listed.contains("Thầy Nam"),
        "{listed}"
    );
    assert!(
        !listed.contains(token.rsplit('_').next().unwrap()),
        "never the secret"
    );

    // The tester and `edudns explain` agree, line for line after the header.
    for (name, band, ip) in [
        ("www.bet.example", "teen", "127.0.0.3"),
        ("ok.bet.example", "young", "127.0.0.2"),
        ("social.example", "staff", "127.0.0.4"),
    ] {
        let (status, _, tested) = call(
            api,
            "POST",
            "/api/v1/test",
            Some(&token),
            &[],
            &json!({"name": name, "school": "s1", "band": band}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{tested}");
        let explained = std::process::Command::new(BIN)
            .args(["explain", "--client", ip, name, "-c"])
            .arg(&config_path)
            .output()
            .unwrap();
        let explained = String::from_utf8(explained.stdout).unwrap();
        let from_cli: Vec<&str> = explained
            .lines()
            .filter(|l| {
                l.starts_with("verdict:") || l.starts_with("rule:") || l.starts_with("category:")
            })
            .collect();
        let from_api: Vec<&str> = tested["explanation"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| {
                l.starts_with("verdict:") || l.starts_with("rule:") || l.starts_with("category:")
            })
            .collect();
        assert!(!from_cli.is_empty());
        assert_eq!(from_api, from_cli, "{name} for {band}");
    }
}
