//! Safe search, bypass prevention, CNAME cloaking, schedules and service
//! presets, against a real upstream serving the target names.

use crate::harness::*;
use crate::upstream::TestUpstream;
use edudns::policy::clock::ManualClock;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// young: safe search + YouTube strict; teen: YouTube moderate; staff: neither,
/// and no bypass prevention.
fn config() -> String {
    base_config("")
        .replace(
            "deny = [\"deny.example\"]",
            "deny = [\"deny.example\"]\nsafe_search = true\nyoutube = \"strict\"",
        )
        .replace(
            "[[band]]\nid = \"teen\"\nblock = [\"gambling\"]",
            "[[band]]\nid = \"teen\"\nblock = [\"gambling\"]\nyoutube = \"moderate\"\n\
             [[band.schedule]]\ncategory = \"social\"\ndays = [\"mon-sat\"]\nwindows = [\"07:00-11:30\", \"13:30-17:00\"]",
        )
        .replace("[[band]]\nid = \"staff\"\nblock = []", "[[band]]\nid = \"staff\"\nblock = []\nbypass_prevention = false")
        .replace(
            "networks = [\"127.0.0.0/24\"]",
            "networks = [\"127.0.0.0/24\"]\nholidays = [{ from = \"2026-12-31\", to = \"2027-01-01\", name = \"Tết Dương lịch\" }]",
        )
}

async fn upstream() -> TestUpstream {
    TestUpstream::builder()
        .a(
            "forcesafesearch.google.com",
            Ipv4Addr::new(216, 239, 38, 120),
        )
        .a("restrict.youtube.com", Ipv4Addr::new(216, 239, 38, 120))
        .a(
            "restrictmoderate.youtube.com",
            Ipv4Addr::new(216, 239, 38, 119),
        )
        .a("strict.bing.com", Ipv4Addr::new(204, 79, 197, 220))
        .a("safe.duckduckgo.com", Ipv4Addr::new(52, 142, 124, 215))
        .a("www.google.com.vn", Ipv4Addr::new(142, 250, 1, 1))
        .a("www.youtube.com", Ipv4Addr::new(142, 250, 1, 2))
        .a("mask.icloud.com", Ipv4Addr::new(17, 0, 0, 1))
        .a("www.social.example", Ipv4Addr::new(192, 0, 2, 20))
        .cname("tracker.allowed.example", "cdn.bet.example")
        .a("cdn.bet.example", Ipv4Addr::new(192, 0, 2, 66))
        .cname("fine.allowed.example", "cdn.fine.example")
        .a("cdn.fine.example", Ipv4Addr::new(192, 0, 2, 67))
        .start()
        .await
}

fn cname_target(message: &Message) -> Option<String> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(c) => Some(c.0.to_ascii()),
        _ => None,
    })
}

#[tokio::test]
async fn safe_search_per_band_is_a_cname_plus_addresses() {
    let server = TestServer::start(&config(), Some(upstream().await)).await;
    for (name, target, ip) in [
        (
            "www.google.com.vn.",
            "forcesafesearch.google.com.",
            "216.239.38.120",
        ),
        (
            "www.google.com.",
            "forcesafesearch.google.com.",
            "216.239.38.120",
        ),
        ("www.bing.com.", "strict.bing.com.", "204.79.197.220"),
        ("duckduckgo.com.", "safe.duckduckgo.com.", "52.142.124.215"),
        (
            "www.youtube.com.",
            "restrict.youtube.com.",
            "216.239.38.120",
        ),
    ] {
        let response = server.query_from("127.0.0.2", name, RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(cname_target(&response).as_deref(), Some(target), "{name}");
        assert_eq!(
            response.answers[0].name.to_ascii(),
            name,
            "CNAME owner is the asked name"
        );
        assert_eq!(a_records(&response), vec![ip], "{name}");
    }
    // teen: YouTube moderate, no search-engine rewrite.
    let teen_yt = server
        .query_from("127.0.0.3", "www.youtube.com.", RecordType::A)
        .await;
    assert_eq!(
        cname_target(&teen_yt).as_deref(),
        Some("restrictmoderate.youtube.com.")
    );
    let teen_google = server
        .query_from("127.0.0.3", "www.google.com.vn.", RecordType::A)
        .await;
    assert_eq!(cname_target(&teen_google), None);
    assert_eq!(a_records(&teen_google), vec!["142.250.1.1"]);
    // staff: nothing rewritten; mail.google.com-style names never are.
    let staff = server
        .query_from("127.0.0.4", "www.youtube.com.", RecordType::A)
        .await;
    assert_eq!(a_records(&staff), vec!["142.250.1.2"]);
}

#[tokio::test]
async fn canary_private_relay_and_ddr_keep_devices_on_this_resolver() {
    let server = TestServer::start(&config(), Some(upstream().await)).await;
    let canary = server
        .query_from("127.0.0.2", "use-application-dns.net.", RecordType::A)
        .await;
    assert_eq!(canary.metadata.response_code, ResponseCode::NXDomain);
    for name in ["mask.icloud.com.", "mask-h2.icloud.com."] {
        let relay = server.query_from("127.0.0.2", name, RecordType::A).await;
        assert_eq!(
            relay.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
    }
    let ddr = server
        .query_from("127.0.0.2", "_dns.resolver.arpa.", RecordType::SVCB)
        .await;
    assert_eq!(ddr.metadata.response_code, ResponseCode::NoError);
    assert!(ddr.answers.is_empty(), "NODATA");
    assert!(matches!(
        ddr.authorities.first().map(|r| &r.data),
        Some(RData::SOA(_))
    ));
    // Staff turned bypass prevention off: Private Relay resolves.
    let staff = server
        .query_from("127.0.0.4", "mask.icloud.com.", RecordType::A)
        .await;
    assert_eq!(a_records(&staff), vec!["17.0.0.1"]);
}

#[tokio::test]
async fn cname_into_a_blocked_domain_is_blocked_naming_the_target() {
    let server = TestServer::start(&config(), Some(upstream().await)).await;
    let cloaked = server
        .query_from("127.0.0.2", "tracker.allowed.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&cloaked), vec!["10.99.0.1"]);
    let (code, text) = extended_error(&cloaked).expect("EDE");
    assert_eq!(code, 15);
    assert!(
        text.contains("cdn.bet.example") && text.contains("gambling"),
        "{text}"
    );
    let fine = server
        .query_from("127.0.0.2", "fine.allowed.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&fine), vec!["192.0.2.67"], "harmless chains pass");
    let staff = server
        .query_from("127.0.0.4", "tracker.allowed.example.", RecordType::A)
        .await;
    assert_eq!(
        a_records(&staff),
        vec!["192.0.2.66"],
        "staff does not block gambling"
    );
}

#[tokio::test]
async fn schedules_follow_windows_days_and_holidays_with_a_fixed_clock() {
    let clock = Arc::new(ManualClock::new(
        "2026-11-24T07:59:00+07:00".parse().unwrap(),
    ));
    let server =
        TestServer::start_with_clock(&config(), Some(upstream().await), clock.clone()).await;
    let social = |server: &TestServer| {
        let addr = server.addr;
        async move {
            a_records(&query_udp(addr, "127.0.0.3", "www.social.example.", RecordType::A).await)
        }
    };
    let sinkhole = vec!["10.99.0.1".to_string()];
    let open = vec!["192.0.2.20".to_string()];
    for (when, expected, why) in [
        ("2026-11-24T06:59:00+07:00", &open, "Tuesday before school"),
        (
            "2026-11-24T07:00:00+07:00",
            &sinkhole,
            "first minute of the morning window",
        ),
        (
            "2026-11-24T11:29:00+07:00",
            &sinkhole,
            "last minute of the morning",
        ),
        ("2026-11-24T11:30:00+07:00", &open, "lunch"),
        ("2026-11-24T13:30:00+07:00", &sinkhole, "afternoon"),
        ("2026-11-24T17:00:00+07:00", &open, "after school"),
        ("2026-11-28T09:00:00+07:00", &sinkhole, "Saturday"),
        ("2026-11-29T09:00:00+07:00", &open, "Sunday"),
        ("2026-12-31T09:00:00+07:00", &open, "holiday"),
        (
            "2027-01-04T09:00:00+07:00",
            &sinkhole,
            "Monday after the holiday",
        ),
    ] {
        clock.set(when.parse().unwrap());
        assert_eq!(&social(&server).await, expected, "{why} ({when})");
    }
    // Another band without the schedule is unaffected; young blocks social always.
    clock.set("2026-11-24T20:00:00+07:00".parse().unwrap());
    assert_eq!(
        a_records(
            &server
                .query_from("127.0.0.2", "www.social.example.", RecordType::A)
                .await
        ),
        sinkhole
    );
}

#[tokio::test]
async fn a_service_preset_works_as_a_category() {
    let preset = format!(
        "{}/blocklists/presets/tiktok.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = base_config("").replace("lists/social.txt", &preset);
    let server = TestServer::start(&config, None).await;
    for name in ["www.tiktok.com.", "v16m.tiktokcdn.com.", "api.tiktokv.com."] {
        assert_eq!(
            a_records(&server.query_from("127.0.0.2", name, RecordType::A).await),
            vec!["10.99.0.1"],
            "{name}"
        );
    }
}
