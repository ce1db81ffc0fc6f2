//! Every list format, end to end on the real samples in ../shared/data:
//! one category per sample, one band per category, one client per band.

use crate::harness::*;
use hickory_proto::rr::RecordType;

/// (category id, sample file, declared format, a name the sample lists,
///  a name it must not block).
const SAMPLES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "plain",
        "domains-plain-sample.txt",
        "auto",
        "www.01b21db07772caa1.com",
        "example.org",
    ),
    (
        "hosts-zero",
        "hosts-0.0.0.0-sample.txt",
        "auto",
        "04867a76e0725075.com",
        "example.org",
    ),
    (
        "hosts-loopback",
        "hosts-127.0.0.1-sample.txt",
        "auto",
        "ae11.bb04.prn2.tfbnw.net",
        "localhost",
    ),
    (
        "hosts-multi",
        "hosts-compressed-multi-name-sample.txt",
        "auto",
        "pixel.1und1.de",
        "1und1.de",
    ),
    (
        "hosts-groups",
        "hosts-grouped-comments-sample.txt",
        "hosts",
        "x.doubleclick.net",
        "google.com",
    ),
    (
        "adblock",
        "adblock-hostsvn-sample.txt",
        "auto",
        "adx.vn",
        "vnexpress.net",
    ),
    (
        "dnsmasq-address",
        "dnsmasq-address-sample.conf",
        "auto",
        "10270089.fls.doubleclick.net",
        "fls.doubleclick.net",
    ),
    (
        "dnsmasq-local",
        "dnsmasq-local-sample.conf",
        "dnsmasq",
        "x.000free.us",
        "free.us",
    ),
    (
        "dnsmasq-server",
        "dnsmasq-server-sample.conf",
        "auto",
        "api-hl.amemv.com",
        "example.org",
    ),
    ("rpz", "rpz-sample.zone", "auto", "a.b.simpleswap.ac", "ac"),
    (
        "wildcard",
        "wildcard-sample.txt",
        "auto",
        "deep.sub.04af807d24817a1b.com",
        "com",
    ),
    (
        "idn",
        "idn-punycode-sample.txt",
        "auto",
        "xn--casinoerpnettet-plb.eu",
        "casinoerpnettet.eu",
    ),
    (
        "quirks",
        "quirks-mixed-sample.txt",
        "auto",
        "www.guruofporn.com",
        "example.org",
    ),
];

fn config() -> String {
    let mut text = String::from(
        r#"
[server]
dns_listen = ["127.0.0.1:0"]
management_listen = "127.0.0.1:0"
[upstream]
servers = ["127.0.0.1:1"]
timeout_ms = 300
[blocking]
sinkhole_ipv4 = "10.99.0.1"
[reload]
watch_interval_secs = 0
[[school]]
id = "s"
networks = ["127.0.0.0/24"]
[school.bands]
"#,
    );
    for (i, (id, ..)) in SAMPLES.iter().enumerate() {
        text.push_str(&format!("b-{id} = [\"127.0.0.{}/32\"]\n", 10 + i));
    }
    for (id, file, format, ..) in SAMPLES {
        let path = shared_data(&format!("formats/{file}"));
        text.push_str(&format!(
            "[[category]]\nid = \"{id}\"\nlists = [{{ path = \"{path}\", format = \"{format}\" }}]\n\
             [[band]]\nid = \"b-{id}\"\nblock = [\"{id}\"]\n"
        ));
    }
    text
}

#[tokio::test]
async fn each_list_format_blocks_what_its_real_sample_lists() {
    let server = TestServer::start(&config(), None).await;
    let mut failures = Vec::new();
    for (i, (id, _, _, listed, not_listed)) in SAMPLES.iter().enumerate() {
        let src = format!("127.0.0.{}", 10 + i);
        let blocked = server
            .query_from(&src, &format!("{listed}."), RecordType::A)
            .await;
        if a_records(&blocked) != ["10.99.0.1"] {
            failures.push(format!("{id}: {listed} not blocked"));
        } else if !extended_error(&blocked).is_some_and(|(_, t)| t.contains(id)) {
            failures.push(format!("{id}: wrong category for {listed}"));
        }
        let other = server
            .query_from(&src, &format!("{not_listed}."), RecordType::A)
            .await;
        if a_records(&other) == ["10.99.0.1"] {
            failures.push(format!("{id}: {not_listed} blocked but not listed"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Skipped lines are counted per list, and a bad line never drops the rest.
    let snapshot = server.running.handler.snapshot.load();
    let quirks = snapshot
        .lists_loaded
        .iter()
        .find(|l| l.display.contains("quirks-mixed"))
        .unwrap();
    assert!(
        quirks.entries > 50,
        "quirks sample keeps its good lines: {quirks:?}"
    );
}

#[tokio::test]
async fn adblock_exceptions_and_broken_lines_in_one_list() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("mixed.txt");
    write(
        &list,
        "! a hand-written adblock list\n||ads.example^\n@@||ok.ads.example^\n||bad domain^\n||$$$^\n||after-bad.example^\n",
    );
    let config = base_config("").replace("lists/gambling.txt", &list.display().to_string());
    let server = TestServer::start(&config, None).await;
    assert_eq!(
        a_records(&server.query("x.ads.example.", RecordType::A).await),
        vec!["10.99.0.1"]
    );
    assert_eq!(
        a_records(&server.query("after-bad.example.", RecordType::A).await),
        vec!["10.99.0.1"]
    );
    let exception = server.query("ok.ads.example.", RecordType::A).await;
    assert_ne!(
        a_records(&exception),
        vec!["10.99.0.1"],
        "@@ exception wins"
    );
    let snapshot = server.running.handler.snapshot.load();
    assert_eq!(
        snapshot.lists_loaded[0].skipped, 2,
        "two broken lines skipped and counted"
    );
}
