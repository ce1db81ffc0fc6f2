//! Filtering end to end: blocked, allowed, subdomains, exceptions, bands,
//! outside clients, block modes, the DoH canary.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use std::net::Ipv4Addr;

async fn upstream() -> TestUpstream {
    TestUpstream::builder()
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .a("www.social.example", Ipv4Addr::new(192, 0, 2, 20))
        .a("bet.example", Ipv4Addr::new(192, 0, 2, 30))
        .a("ok.bet.example", Ipv4Addr::new(192, 0, 2, 31))
        .start()
        .await
}

#[tokio::test]
async fn blocked_name_gets_sinkhole_a_and_aaaa_with_extended_error() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let a = server.query("bet.example.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&a), vec!["10.99.0.1"]);
    assert_eq!(a.answers[0].ttl, 120, "blocked TTL comes from blocking.ttl");
    let (code, text) = extended_error(&a).expect("EDE present");
    assert_eq!(code, 15, "EDE 15 = Blocked");
    assert!(text.contains("gambling"), "EDE names the category: {text}");

    let aaaa = server.query("bet.example.", RecordType::AAAA).await;
    assert_eq!(a_records(&aaaa), vec!["fd99::1"]);
    assert_eq!(
        server.upstream.as_ref().unwrap().queries(),
        0,
        "blocked names never go upstream"
    );
    assert_eq!(server.counters().blocked, 2);
}

#[tokio::test]
async fn other_types_of_blocked_names_are_nodata_with_soa() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    for rtype in [RecordType::HTTPS, RecordType::TXT, RecordType::MX] {
        let response = server.query("casino.example.", rtype).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.answers.is_empty(), "{rtype}: no answers");
        assert!(
            matches!(
                response.authorities.first().map(|r| &r.data),
                Some(RData::SOA(_))
            ),
            "{rtype}: SOA in authority so the client caches the NODATA"
        );
    }
}

#[tokio::test]
async fn allowed_name_is_forwarded_to_the_upstream() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let response = server.query("allowed.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&response), vec!["192.0.2.10"]);
    assert!(response.metadata.recursion_available);
    let nx = server.query("nowhere.example.", RecordType::A).await;
    assert_eq!(
        nx.metadata.response_code,
        ResponseCode::NXDomain,
        "upstream NXDOMAIN passes through"
    );
    assert!(server.upstream.as_ref().unwrap().queries() >= 2);
}

#[tokio::test]
async fn subdomains_of_a_listed_name_are_blocked_but_not_lookalikes() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let deep = server.query("a.b.c.casino.example.", RecordType::A).await;
    assert_eq!(a_records(&deep), vec!["10.99.0.1"]);
    let mixed_case = server.query("WWW.Casino.Example.", RecordType::A).await;
    assert_eq!(a_records(&mixed_case), vec!["10.99.0.1"]);
    let lookalike = server.query("notcasino.example.", RecordType::A).await;
    assert_eq!(
        lookalike.metadata.response_code,
        ResponseCode::NXDomain,
        "forwarded, not blocked"
    );
}

#[tokio::test]
async fn allow_entry_beats_the_list_and_deny_entry_blocks() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    // bet.example is listed, ok.bet.example is on band young's allow list.
    let allowed = server.query("ok.bet.example.", RecordType::A).await;
    assert_eq!(a_records(&allowed), vec!["192.0.2.31"]);
    let still_blocked = server.query("bet.example.", RecordType::A).await;
    assert_eq!(a_records(&still_blocked), vec!["10.99.0.1"]);
    let denied = server.query("x.deny.example.", RecordType::A).await;
    assert_eq!(a_records(&denied), vec!["10.99.0.1"]);
    let (_, text) = extended_error(&denied).unwrap();
    assert!(text.contains("deny"), "{text}");
}

#[tokio::test]
async fn bands_of_one_school_answer_differently() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let young = server
        .query_from("127.0.0.2", "www.social.example.", RecordType::A)
        .await;
    let teen = server
        .query_from("127.0.0.3", "www.social.example.", RecordType::A)
        .await;
    let staff = server
        .query_from("127.0.0.4", "bet.example.", RecordType::A)
        .await;
    let unknown = server
        .query_from("127.0.0.77", "www.social.example.", RecordType::A)
        .await;
    assert_eq!(a_records(&young), vec!["10.99.0.1"], "young blocks social");
    assert_eq!(a_records(&teen), vec!["192.0.2.20"], "teen allows social");
    assert_eq!(
        a_records(&staff),
        vec!["192.0.2.30"],
        "staff blocks nothing"
    );
    assert_eq!(
        a_records(&unknown),
        vec!["10.99.0.1"],
        "unknown clients inside the school get the strictest band"
    );
}

#[tokio::test]
async fn clients_outside_every_school_are_refused_and_counted() {
    let config = base_config("").replace(
        r#"networks = ["127.0.0.0/24"]"#,
        r#"networks = ["127.0.0.0/28"]"#,
    );
    let server = TestServer::start(&config, Some(upstream().await)).await;
    let response = server
        .query_from("127.0.0.200", "allowed.example.", RecordType::A)
        .await;
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    assert!(response.answers.is_empty());
    assert_eq!(server.counters().refused_outside, 1);
    assert_eq!(
        server.upstream.as_ref().unwrap().queries(),
        0,
        "not an open resolver"
    );
}

#[tokio::test]
async fn outside_clients_can_be_dropped_instead() {
    let config = base_config("")
        .replace(
            r#"networks = ["127.0.0.0/24"]"#,
            r#"networks = ["127.0.0.0/28"]"#,
        )
        .replace(
            "max_in_flight = 64",
            "max_in_flight = 64\noutside_clients = \"drop\"",
        );
    let server = TestServer::start(&config, None).await;
    let query = query_message(7, "allowed.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    let answer = raw_udp(
        server.addr,
        "127.0.0.200",
        &query,
        std::time::Duration::from_millis(500),
    )
    .await;
    assert!(answer.is_none(), "dropped: no answer at all");
    assert_eq!(server.counters().refused_outside, 1);
}

#[tokio::test]
async fn nxdomain_and_null_modes() {
    let nx = base_config("").replace("[blocking]", "[blocking]\nmode = \"nxdomain\"");
    let server = TestServer::start(&nx, None).await;
    let response = server.query("bet.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(matches!(
        response.authorities.first().map(|r| &r.data),
        Some(RData::SOA(_))
    ));

    let null = base_config("").replace("[blocking]", "[blocking]\nmode = \"null\"");
    let server = TestServer::start(&null, None).await;
    assert_eq!(
        a_records(&server.query("bet.example.", RecordType::A).await),
        vec!["0.0.0.0"]
    );
    assert_eq!(
        a_records(&server.query("bet.example.", RecordType::AAAA).await),
        vec!["::"]
    );
}

#[tokio::test]
async fn doh_canary_is_nxdomain_for_every_client() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    for src in ["127.0.0.2", "127.0.0.4"] {
        let response = server
            .query_from(src, "use-application-dns.net.", RecordType::A)
            .await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NXDomain,
            "from {src}"
        );
    }
    let off = base_config("").replace("[blocking]", "[blocking]\nblock_doh_canary = false");
    let server = TestServer::start(&off, Some(upstream().await)).await;
    server
        .query("use-application-dns.net.", RecordType::A)
        .await;
    assert_eq!(
        server.upstream.as_ref().unwrap().queries(),
        1,
        "forwarded when switched off"
    );
}

#[tokio::test]
async fn any_is_answered_minimally() {
    let server = TestServer::start(&base_config(""), Some(upstream().await)).await;
    let response = server.query("allowed.example.", RecordType::ANY).await;
    assert_eq!(response.answers.len(), 1);
    assert!(matches!(&response.answers[0].data, RData::HINFO(h) if &*h.cpu == b"RFC8482"));
    assert_eq!(server.upstream.as_ref().unwrap().queries(), 0);
}

#[tokio::test]
async fn forwarded_aaaa_and_cname_chains_keep_every_record() {
    let upstream = TestUpstream::builder()
        .aaaa("v6.example", "2001:db8::10".parse().unwrap())
        .cname("alias.example", "target.example")
        .a("target.example", Ipv4Addr::new(192, 0, 2, 99))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    let v6 = server.query("v6.example.", RecordType::AAAA).await;
    assert_eq!(a_records(&v6), vec!["2001:db8::10"]);
    let alias = server.query("alias.example.", RecordType::A).await;
    assert!(
        alias
            .answers
            .iter()
            .any(|r| matches!(&r.data, RData::CNAME(c) if c.0.to_ascii() == "target.example.")),
        "CNAME passed through: {:?}",
        alias.answers
    );
    assert_eq!(a_records(&alias), vec!["192.0.2.99"]);
}

#[tokio::test]
async fn ipv6_listener_and_ipv6_client_networks() {
    let config = base_config("")
        .replace(
            r#"dns_listen = ["127.0.0.1:0"]"#,
            r#"dns_listen = ["[::1]:0", "127.0.0.1:0"]"#,
        )
        .replace(
            r#"staff = ["127.0.0.4/32"]"#,
            r#"staff = ["127.0.0.4/32", "::1/128"]"#,
        );
    let server = TestServer::start(&config, Some(upstream().await)).await;
    assert!(server.addr.is_ipv6(), "first listener is the IPv6 one");
    let staff = query_udp(server.addr, "::1", "bet.example.", RecordType::A).await;
    assert_eq!(
        a_records(&staff),
        vec!["192.0.2.30"],
        "::1 is in the staff band"
    );
    let v4 = server.running.dns_addrs()[1];
    let young = query_udp(v4, "127.0.0.2", "bet.example.", RecordType::A).await;
    assert_eq!(a_records(&young), vec!["10.99.0.1"]);
}
