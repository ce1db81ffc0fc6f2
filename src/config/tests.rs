//! Validation tests: defaults, references, and errors with key and line.

use super::validate::parse;
use super::*;
use std::path::Path;

const MINIMAL: &str = r#"
[upstream]
servers = ["192.0.2.53"]

[blocking]
sinkhole_ipv4 = "10.0.0.1"

[[category]]
id = "gambling"
lists = ["g.txt"]

[[category]]
id = "social"
lists = [{ path = "s.txt", format = "hosts" }]

[[band]]
id = "staff"
block = ["gambling"]

[[band]]
id = "kids"
block = ["gambling", "social"]

[[school]]
id = "s1"
networks = ["10.1.0.0/16"]
"#;

fn ok(text: &str) -> Config {
    parse(
        text,
        Path::new("t.toml"),
        ListRoot::Directory("/etc/edudns".into()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    match parse(text, Path::new("t.toml"), ListRoot::Directory(".".into())) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.issues().to_vec(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn minimal_config_gets_defaults() {
    let config = ok(MINIMAL);
    assert_eq!(
        config.server.dns_listen,
        vec!["0.0.0.0:53".parse().unwrap()]
    );
    assert_eq!(config.server.max_in_flight, 2048);
    assert_eq!(config.server.outside_clients, OutsideClients::Refuse);
    assert_eq!(
        config.upstream.servers,
        vec![UpstreamServer::Plain("192.0.2.53:53".parse().unwrap())]
    );
    assert_eq!(config.blocking.mode, BlockMode::Sinkhole);
    assert!(config.blocking.ttl <= 300);
    assert!(config.blocking.block_doh_canary);
    assert_eq!(
        config.categories[1].lists[0].format,
        crate::lists::formats::ListFormat::Hosts
    );
    assert_eq!(
        config.categories[0].lists[0].path,
        Path::new("/etc/edudns/g.txt")
    );
    // The strictest band (most blocked categories) for unknown clients.
    assert_eq!(config.bands[config.schools[0].unknown_band].id, "kids");
}

#[test]
fn upstream_servers_are_plain_dot_or_doh() {
    let parse = |text: &str| text.parse::<UpstreamServer>();
    assert_eq!(
        parse("192.0.2.1"),
        Ok(UpstreamServer::Plain("192.0.2.1:53".parse().unwrap()))
    );
    let tls = parse("tls://192.0.2.1#dns.example").unwrap();
    assert_eq!(
        tls,
        UpstreamServer::Tls(EncryptedServer {
            host: "192.0.2.1".into(),
            port: 853,
            tls_name: "dns.example".into(),
            path: String::new(),
        })
    );
    assert_eq!(tls.to_string(), "tls://192.0.2.1:853#dns.example");
    let doh = parse("https://Dns.Example/dns-query").unwrap();
    assert_eq!(
        doh,
        UpstreamServer::Https(EncryptedServer {
            host: "dns.example".into(),
            port: 443,
            tls_name: "dns.example".into(),
            path: "/dns-query".into(),
        })
    );
    let v6 = parse("https://[2001:db8::1]:8443/q#dns.example").unwrap();
    assert_eq!(v6.to_string(), "https://[2001:db8::1]:8443/q#dns.example");
    for (bad, says) in [
        ("tls://192.0.2.1/dns-query", "no path"),
        ("https://192.0.2.1", "needs the path"),
        ("quic://192.0.2.1", "unknown scheme"),
        ("tls://192.0.2.1#", "nothing after '#'"),
        ("tls://bad host:853", "not host or host:port"),
        ("tls://192.0.2.1:0", "not host or host:port"),
        ("dns.example", "tls://IP:853#name"),
    ] {
        let error = parse(bad).unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
    }
}

#[test]
fn bad_upstream_entries_and_ca_files_are_named_with_their_line() {
    let text = MINIMAL.replace(
        "servers = [\"192.0.2.53\"]",
        "servers = [\"192.0.2.53\", \"tls://192.0.2.1/x\"]\ntls_ca_file = \"/nonexistent/ca.pem\"",
    );
    let found = issues(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].key, "upstream.servers[1]");
    assert_eq!(found[0].line, line_of(&text, "servers ="));
    assert_eq!(found[1].key, "upstream.tls_ca_file");
    assert!(
        found[1].message.contains("/nonexistent/ca.pem"),
        "{:?}",
        found[1]
    );
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let text = MINIMAL.replace(
        "servers = [\"192.0.2.53\"]",
        &format!(
            "servers = [\"tls://192.0.2.1#d.example\"]\ntls_ca_file = {:?}",
            not_pem.display().to_string()
        ),
    );
    let found = issues(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("no certificate"),
        "{:?}",
        found[0]
    );
}

#[test]
fn unknown_keys_are_errors_with_path_and_line() {
    let text = MINIMAL.replace("[blocking]", "[blocking]\nsinkhole_ip = \"10.0.0.2\"");
    let found = issues(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "blocking.sinkhole_ip");
    assert!(found[0].message.contains("sinkhole_ip"), "{:?}", found[0]);
    assert_eq!(found[0].line, line_of(&text, "sinkhole_ip "));
}

#[test]
fn type_errors_name_the_key() {
    let text = MINIMAL.replace("servers = [\"192.0.2.53\"]", "servers = \"192.0.2.53\"");
    let found = issues(&text);
    assert_eq!(found[0].key, "upstream.servers");
    assert_eq!(found[0].line, line_of(&text, "servers ="));
}

#[test]
fn all_semantic_errors_are_collected() {
    let text = MINIMAL
        .replace("id = \"kids\"", "id = \"staff\"")
        .replace("networks = [\"10.1.0.0/16\"]", "networks = [\"10.1.0.0/33\", \"10.2.0.0/16\", \"10.2.0.0/16\"]\nunknown_band = \"nobody\"")
        .replace("[blocking]", "[blocking]\nttl = 3600\nmode = \"loud\"");
    let found = issues(&text);
    let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
    for expected in [
        "blocking.mode",
        "blocking.ttl",
        "band[1].id",
        "school[0].networks[0]",
        "school[0].networks[2]",
        "school[0].unknown_band",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let ttl = found.iter().find(|i| i.key == "blocking.ttl").unwrap();
    assert_eq!(ttl.line, line_of(&text, "ttl = 3600"));
    assert!(
        found.iter().all(|i| i.line > 0),
        "every error has a line: {found:?}"
    );
}

#[test]
fn invalid_domains_in_allow_lists_are_errors() {
    let text = MINIMAL.replace(
        "block = [\"gambling\"]",
        "block = [\"gambling\"]\nallow = [\"ok.example\", \"bad domain!\"]",
    );
    let found = issues(&text);
    assert_eq!(found[0].key, "band[0].allow[1]");
}

#[test]
fn missing_essentials_are_reported() {
    let found = issues("[server]\n");
    let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
    for expected in [
        "upstream.servers",
        "blocking.sinkhole_ipv4",
        "band",
        "school",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
}

#[test]
fn embedded_config_is_valid() {
    let config = load_embedded().unwrap();
    assert_eq!(config.list_root, ListRoot::Embedded);
    assert!(config.categories.len() >= 5);
}

#[test]
fn out_of_range_schedule_hours_are_errors_not_overflows() {
    // 6424 * 60 overflows u16: the `config` fuzzer found that the product
    // was computed before the range check (a panic in debug builds).
    let text = format!(
        "{MINIMAL}\n[[band.schedule]]\ncategory = \"social\"\nwindows = [\"6424:00-6425:00\", \"25:00-26:00\", \"07:00-11:30\"]\n"
    );
    let found = issues(&text);
    let keys: Vec<&str> = found
        .iter()
        .map(|i| i.key.as_str())
        .filter(|k| k.contains("windows"))
        .collect();
    assert_eq!(
        keys,
        [
            "band[1].schedule[0].windows[0]",
            "band[1].schedule[0].windows[1]"
        ],
        "{found:?}"
    );
}

#[test]
fn encrypted_dns_names_the_missing_or_mismatched_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    let pem = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (cert, _) = pem("a.test");
    let (_, other_key) = pem("b.test");
    let (cert_path, key_path) = (dir.path().join("dns.crt"), dir.path().join("dns.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, other_key).unwrap();
    let text = |cert: &Path| {
        format!(
            "{MINIMAL}\n[encrypted_dns]\ndot_listen = [\"127.0.0.1:853\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
            cert.display(),
            key_path.display()
        )
    };
    let missing = issues(&text(&dir.path().join("absent.crt")));
    assert_eq!(missing[0].key, "encrypted_dns.certificate", "{missing:?}");
    assert!(missing[0].message.contains("absent.crt"), "{missing:?}");
    let mismatched = issues(&text(&cert_path));
    assert_eq!(
        mismatched[0].key, "encrypted_dns.private_key",
        "{mismatched:?}"
    );
    assert!(
        mismatched[0].message.contains("does not match"),
        "{mismatched:?}"
    );
    let no_files = issues(&format!(
        "{MINIMAL}\n[encrypted_dns]\ndoh_listen = [\"127.0.0.1:443\"]\n"
    ));
    assert_eq!(no_files[0].key, "encrypted_dns.certificate", "{no_files:?}");
}

#[test]
fn the_heartbeat_goes_beside_the_ingest_url_unless_set() {
    let upload = |extra: &str| {
        format!(
            "{MINIMAL}\n[upload]\nurl = \"https://office.example/api/v1/ingest\"\ntoken_file = \"u.token\"\n{extra}"
        )
    };
    let config = ok(&upload(""));
    let up = config.upload.unwrap();
    assert_eq!(up.heartbeat_url, "https://office.example/api/v1/heartbeat");
    assert_eq!(
        up.heartbeat_interval,
        UploadConfig::DEFAULT_HEARTBEAT_INTERVAL
    );
    let config = ok(&upload(
        "heartbeat_url = \"https://beat.example/hb\"\nheartbeat_interval = \"5m\"\n",
    ));
    let up = config.upload.unwrap();
    assert_eq!(up.heartbeat_url, "https://beat.example/hb");
    assert_eq!(up.heartbeat_interval, std::time::Duration::from_secs(300));
    assert_eq!(
        UploadConfig::heartbeat_beside("http://o/api/v1/ingest/").as_deref(),
        Some("http://o/api/v1/heartbeat")
    );
    let text = upload("heartbeat_interval = \"0s\"\n");
    let found = issues(&text);
    assert_eq!(found[0].key, "upload.heartbeat_interval", "{found:?}");
    assert_eq!(found[0].line, line_of(&text, "heartbeat_interval"));
    // An ingest URL of another shape: the heartbeat's must be given.
    let text = upload("").replace("/api/v1/ingest", "/upload");
    let found = issues(&text);
    assert_eq!(found[0].key, "upload.url", "{found:?}");
    assert!(
        found[0].message.contains("upload.heartbeat_url"),
        "{found:?}"
    );
}
