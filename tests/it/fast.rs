//! The UDP fast path and the general pipeline give the same answers: the
//! same queries go to a server with `server.fast_path = true` and one with
//! it off, and the answers are compared field by field. (`.ci/run` also
//! runs the whole suite with `EDUDNS_TEST_FAST_PATH=0`.)

use crate::harness::{TestServer, base_config, query_message, raw_udp};
use crate::upstream::TestUpstream;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::net::Ipv4Addr;
use std::time::Duration;

async fn upstream() -> TestUpstream {
    TestUpstream::builder()
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .aaaa("allowed.example", "2001:db8::10".parse().unwrap())
        .cname("www.cdn.example", "edge.cdn.example")
        .a("edge.cdn.example", Ipv4Addr::new(192, 0, 2, 11))
        .start()
        .await
}

/// What must be equal between the two paths.
fn summary(bytes: &[u8]) -> String {
    let m = Message::from_vec(bytes).expect("a parseable answer");
    let records = |rs: &[hickory_proto::rr::Record]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
            .collect()
    };
    let edns = m.edns.as_ref().map(|e| {
        let mut options: Vec<String> = e
            .options()
            .as_ref()
            .iter()
            .map(|(code, o)| format!("{code:?}={o:?}"))
            .collect();
        options.sort();
        format!(
            "payload={} do={} options={options:?}",
            e.max_payload(),
            e.flags().dnssec_ok
        )
    });
    format!(
        "id={} qr={:?} op={:?} aa={} tc={} rd={} ra={} rcode={:?} q={:?} an={:?} ns={:?} ar={} edns={edns:?}",
        m.metadata.id,
        m.metadata.message_type,
        m.metadata.op_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        m.metadata.recursion_desired,
        m.metadata.recursion_available,
        m.metadata.response_code,
        m.queries.iter().map(|q| q.to_string()).collect::<Vec<_>>(),
        records(&m.answers),
        // Owner names compare without case, as in DNS (the fast path points
        // into the question as asked; the general path writes the listed domain).
        records(&m.authorities)
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        m.additionals.len(),
    )
}

fn ttls(bytes: &[u8]) -> Vec<u32> {
    let m = Message::from_vec(bytes).unwrap();
    m.answers
        .iter()
        .chain(&m.authorities)
        .map(|r| r.ttl)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_answers_exactly_as_the_general_path() {
    if crate::harness::fast_path_override().is_some() {
        // This test sets `fast_path` itself; the env override would void it.
        return;
    }
    for mode in ["sinkhole", "null", "nxdomain"] {
        let config = |fast: bool| {
            base_config("")
                .replace(
                    "max_in_flight = 64",
                    &format!("max_in_flight = 64\nfast_path = {fast}"),
                )
                .replace("[blocking]", &format!("[blocking]\nmode = \"{mode}\""))
        };
        let fast = TestServer::start(&config(true), Some(upstream().await)).await;
        let general = TestServer::start(&config(false), Some(upstream().await)).await;
        let mut cases: Vec<(String, RecordType, bool, bool, &str)> = Vec::new();
        for (name, source) in [
            ("bet.example", "127.0.0.2"),
            ("WWW.Casino.Example", "127.0.0.3"),
            ("deny.example", "127.0.0.2"),
            ("a.b.social.example", "127.0.0.2"),
            ("use-application-dns.net", "127.0.0.4"),
            ("_dns.resolver.arpa", "127.0.0.2"),
            ("mask.icloud.com", "127.0.0.2"),
            ("allowed.example", "127.0.0.2"),
            ("Allowed.EXAMPLE", "127.0.0.3"),
            ("www.cdn.example", "127.0.0.2"),
            ("nothing.example", "127.0.0.2"),
            ("ok.bet.example", "127.0.0.2"),
        ] {
            for rtype in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
                RecordType::HTTPS,
            ] {
                for (edns, dnssec_ok) in [(false, false), (true, false), (true, true)] {
                    cases.push((name.to_string(), rtype, edns, dnssec_ok, source));
                }
            }
        }
        // Every case twice: the second time allowed names come from the caches.
        for round in 0..2 {
            for (i, (name, rtype, edns, dnssec_ok, source)) in cases.iter().enumerate() {
                let mut message = query_message(i as u16 + 1, &format!("{name}."), *rtype, *edns);
                if *dnssec_ok && let Some(e) = message.edns.as_mut() {
                    e.set_dnssec_ok(true);
                }
                let bytes = message.to_vec().unwrap();
                let wait = Duration::from_secs(3);
                let a = raw_udp(fast.addr, source, &bytes, wait)
                    .await
                    .expect("fast path answer");
                let b = raw_udp(general.addr, source, &bytes, wait)
                    .await
                    .expect("general path answer");
                assert_eq!(
                    summary(&a),
                    summary(&b),
                    "mode {mode}, round {round}: {name} {rtype} edns={edns} do={dnssec_ok}"
                );
                let (ta, tb) = (ttls(&a), ttls(&b));
                assert_eq!(ta.len(), tb.len());
                for (x, y) in ta.iter().zip(&tb) {
                    assert!(x.abs_diff(*y) <= 1, "{name} {rtype}: TTLs {ta:?} vs {tb:?}");
                }
            }
        }
        let counted = fast.counters().fast_path;
        assert!(
            counted > cases.len() as u64,
            "mode {mode}: the fast path answered {counted}"
        );
        assert_eq!(general.counters().fast_path, 0);
        // Same statistics either way.
        let (f, g) = (fast.counters(), general.counters());
        assert_eq!(
            (f.answered, f.blocked, f.allowed),
            (g.answered, g.blocked, g.allowed),
            "mode {mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_replayed_counts_its_ttl_down_and_keeps_the_question_case() {
    if crate::harness::fast_path_override().is_some() {
        // This test sets `fast_path` itself; the env override would void it.
        return;
    }
    let upstream = TestUpstream::builder()
        .ttl(30)
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .start()
        .await;
    let server = TestServer::start(
        &base_config("").replace("max_in_flight = 64", "max_in_flight = 64\nfast_path = true"),
        Some(upstream),
    )
    .await;
    let ask = |name: &'static str, id: u16| async move {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = id.is_multiple_of(2);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        raw_udp(
            server.addr,
            "127.0.0.2",
            &message.to_vec().unwrap(),
            Duration::from_secs(3),
        )
        .await
        .unwrap()
    };
    let first = ask("allowed.example.", 10).await;
    let before = server.counters().fast_path;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let replayed = ask("ALLOWED.example.", 11).await;
    assert_eq!(
        server.counters().fast_path,
        before + 1,
        "answered from wire bytes"
    );
    let m = Message::from_vec(&replayed).unwrap();
    assert_eq!(m.metadata.id, 11);
    assert!(!m.metadata.recursion_desired, "RD as asked");
    assert_eq!(m.queries[0].name().to_ascii(), "ALLOWED.example.");
    assert_eq!(m.answers[0].name.to_ascii(), "ALLOWED.example.");
    let ttl0 = Message::from_vec(&first).unwrap().answers[0].ttl;
    let ttl1 = m.answers[0].ttl;
    assert!(
        ttl1 + 2 <= ttl0 && ttl1 + 3 >= ttl0,
        "TTL counted down: {ttl0} then {ttl1}"
    );
}
