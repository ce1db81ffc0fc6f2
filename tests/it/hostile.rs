//! Hostile and malformed packets, and EDNS compliance the way the DNS Flag
//! Day / ISC checks probe it with `dig`.

use crate::harness::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::process::Command;
use std::time::Duration;

fn header(id: u16, flags: u16, qd: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [id, flags, qd, 0, 0, 0] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

async fn ask(server: &TestServer, bytes: &[u8]) -> Option<Message> {
    raw_udp(server.addr, "127.0.0.2", bytes, Duration::from_millis(400))
        .await
        .map(|b| Message::from_vec(&b).expect("answers parse"))
}

#[tokio::test]
async fn malformed_questions_get_the_right_rcode_or_nothing() {
    let server = TestServer::start(&base_config(""), None).await;
    // A compression pointer to itself (a loop) in the question name.
    let mut looped = header(1, 0x0100, 1);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    // A forward pointer past the end.
    let mut forward = header(2, 0x0100, 1);
    forward.extend_from_slice(&[0xc0, 200, 0, 1, 0, 1]);
    // A 64-byte label.
    let mut long_label = header(3, 0x0100, 1);
    long_label.push(64);
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    // A name over 255 bytes (five labels of 63).
    let mut long_name = header(4, 0x0100, 1);
    for _ in 0..5 {
        long_name.push(63);
        long_name.extend_from_slice(&[b'b'; 63]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    for (what, packet) in [
        ("pointer loop", looped),
        ("forward pointer", forward),
        ("label > 63", long_label),
        ("name > 255", long_name),
    ] {
        let answer = ask(&server, &packet)
            .await
            .unwrap_or_else(|| panic!("{what}: an answer"));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::FormErr,
            "{what}"
        );
    }
    // No question, two questions: FORMERR.
    let empty = header(5, 0x0100, 0);
    assert_eq!(
        ask(&server, &empty).await.unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    let mut two = query_message(6, "bet.example.", RecordType::A, false);
    two.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii("x.example.").unwrap(),
        RecordType::A,
    ));
    assert_eq!(
        ask(&server, &two.to_vec().unwrap())
            .await
            .unwrap()
            .metadata
            .response_code,
        ResponseCode::FormErr
    );
    // An unknown opcode (STATUS = 2): NOTIMP.
    let mut status = query_message(7, "bet.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    status[2] = (status[2] & 0x87) | (2 << 3);
    assert_eq!(
        ask(&server, &status).await.unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
    // A truncated header: nothing.
    assert!(ask(&server, &header(8, 0x0100, 1)[..7]).await.is_none());
    // Still serving.
    assert_eq!(
        a_records(&server.query("bet.example.", RecordType::A).await),
        vec!["10.99.0.1"]
    );
}

#[tokio::test]
async fn two_servers_pointed_at_each_other_do_not_loop_on_responses() {
    let a = TestServer::start(&base_config(""), None).await;
    let b = TestServer::start(&base_config(""), None).await;
    // A response (QR=1) sent to A "from" B's port: A must not answer it, so
    // nothing can bounce between them.
    let socket = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut response = query_message(9, "bet.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    response[2] |= 0x80;
    socket.send_to(&response, a.addr).await.unwrap();
    socket.send_to(&response, b.addr).await.unwrap();
    let mut buffer = [0u8; 512];
    let got = tokio::time::timeout(Duration::from_millis(400), socket.recv_from(&mut buffer)).await;
    assert!(got.is_err(), "no answer to a response");
    assert_eq!(
        a.counters().dropped_response + b.counters().dropped_response,
        2
    );
}

fn dig(server: &TestServer, args: &[&str]) -> String {
    let output = Command::new("dig")
        .args([
            &format!("@{}", server.addr.ip()),
            "-p",
            &server.addr.port().to_string(),
            "-b",
            "127.0.0.2",
            "+tries=1",
            "+time=3",
        ])
        .args(args)
        .output()
        .expect("dig is installed (.ci/run installs bind9-dnsutils)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_compliance_as_dig_checks_it() {
    let server = TestServer::start(&base_config(""), None).await;
    let plain = dig(&server, &["+noedns", "bet.example"]);
    assert!(
        plain.contains("status: NOERROR") && !plain.contains("OPT PSEUDOSECTION"),
        "{plain}"
    );
    let edns = dig(&server, &["+edns=0", "bet.example"]);
    assert!(
        edns.contains("status: NOERROR") && edns.contains("EDNS: version: 0"),
        "{edns}"
    );
    let v1 = dig(&server, &["+edns=1", "+noednsnegotiation", "bet.example"]);
    assert!(
        v1.contains("status: BADVERS") && v1.contains("EDNS: version: 0"),
        "{v1}"
    );
    let unknown_option = dig(&server, &["+ednsopt=100:abcd", "bet.example"]);
    assert!(
        unknown_option.contains("status: NOERROR") && !unknown_option.contains("OPT=100"),
        "unknown options are not echoed: {unknown_option}"
    );
    let unknown_flag = dig(&server, &["+ednsflags=0x80", "bet.example"]);
    assert!(
        unknown_flag.contains("status: NOERROR") && !unknown_flag.contains("MBZ"),
        "unknown flags are not echoed: {unknown_flag}"
    );
    let dnssec = dig(&server, &["+dnssec", "bet.example"]);
    assert!(dnssec.contains("flags: do;"), "DO bit echoed: {dnssec}");
}

#[tokio::test]
async fn a_flooding_client_is_limited_and_others_are_not() {
    let config = base_config("").replace(
        "[[band]]\nid = \"teen\"\nblock = [\"gambling\"]",
        "[[band]]\nid = \"teen\"\nblock = [\"gambling\"]\nmax_qps_per_client = 20",
    );
    let server = TestServer::start(&config, None).await;
    // 127.0.0.3 (teen) floods 400 queries as fast as it can.
    let socket = tokio::net::UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let query = query_message(1, "bet.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    for _ in 0..400 {
        socket.send_to(&query, server.addr).await.unwrap();
    }
    let mut answered = 0;
    let mut buffer = [0u8; 512];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buffer)).await
    {
        answered += 1;
    }
    assert!(
        (15..=40).contains(&answered),
        "about one second's worth answered, got {answered}"
    );
    assert!(server.counters().rate_limited >= 350);
    // Other clients (the school's unknown band, and young): full service.
    for src in ["127.0.0.5", "127.0.0.2"] {
        for _ in 0..30 {
            assert_eq!(
                a_records(&query_udp(server.addr, src, "bet.example.", RecordType::A).await),
                vec!["10.99.0.1"]
            );
        }
    }
    // The flooder recovers once its bucket refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = query_udp(server.addr, "127.0.0.3", "bet.example.", RecordType::A).await;
    assert_eq!(a_records(&answer), vec!["10.99.0.1"]);
}

#[tokio::test]
async fn with_every_upstream_unreachable_it_starts_and_blocks_within_two_seconds() {
    let started = std::time::Instant::now();
    // Upstream 127.0.0.1:1: nothing listens.
    let server = TestServer::start(&base_config(""), None).await;
    let blocked = server.query("bet.example.", RecordType::A).await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn serve_stale_when_the_upstream_goes_silent() {
    use crate::upstream::TestUpstream;
    use std::net::Ipv4Addr;
    let upstream = TestUpstream::builder()
        .ttl(1)
        .a("cached.example", Ipv4Addr::new(192, 0, 2, 5))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    assert_eq!(
        a_records(&server.query("cached.example.", RecordType::A).await),
        vec!["192.0.2.5"]
    );
    let upstream = server.upstream.as_ref().unwrap();
    upstream.set_silent(true);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the TTL of 1 s has run out
    let started = std::time::Instant::now();
    let stale = server.query("cached.example.", RecordType::A).await;
    let took = started.elapsed();
    assert_eq!(a_records(&stale), vec!["192.0.2.5"], "served stale");
    assert_eq!(stale.answers[0].ttl, 30, "stale answers carry TTL 30");
    assert!(
        took < Duration::from_millis(2200),
        "within the 1.8 s client-response timer: {took:?}"
    );
    // Uncached names: SERVFAIL within 2 s; the failure is then remembered.
    let started = std::time::Instant::now();
    let fail = server.query("uncached.example.", RecordType::A).await;
    assert_eq!(fail.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(2));
    let asked = upstream.queries();
    let again = server.query("uncached.example.", RecordType::A).await;
    assert_eq!(again.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        upstream.queries(),
        asked,
        "a failure is cached briefly, not asked again at once"
    );
    // Blocked names stay blocked.
    assert_eq!(
        a_records(&server.query("bet.example.", RecordType::A).await),
        vec!["10.99.0.1"]
    );
    // The upstream returns: fresh answers again.
    upstream.set_silent(false);
    let mut fresh = false;
    for _ in 0..40 {
        let answer = server.query("cached.example.", RecordType::A).await;
        if answer.answers.first().is_some_and(|r| r.ttl <= 1) {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(fresh, "recovered after the upstream came back");
}

#[tokio::test]
async fn a_rogue_upstream_cannot_poison_other_names_and_ports_and_ids_are_random() {
    use crate::upstream::TestUpstream;
    use std::net::Ipv4Addr;
    // The upstream answers attacker.example, and slips in an A record for victim.example.
    let upstream = TestUpstream::builder()
        .a("attacker.example", Ipv4Addr::new(198, 51, 100, 1))
        .a("victim.example", Ipv4Addr::new(192, 0, 2, 80))
        .rogue_a("victim.example", Ipv4Addr::new(198, 51, 100, 66))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    let _ = server.query("attacker.example.", RecordType::A).await;
    let victim = server.query("victim.example.", RecordType::A).await;
    assert_eq!(
        a_records(&victim),
        vec!["192.0.2.80"],
        "the extra record in attacker's answer never poisons victim.example"
    );
    assert_eq!(
        server.upstream.as_ref().unwrap().queries(),
        2,
        "victim.example was asked upstream itself"
    );

    // Source ports and message ids of upstream queries vary.
    for i in 0..20 {
        let _ = server.query(&format!("n{i}.example."), RecordType::A).await;
    }
    let seen = server.upstream.as_ref().unwrap().seen();
    let ports: std::collections::HashSet<u16> = seen.iter().map(|s| s.0).collect();
    let ids: std::collections::HashSet<u16> = seen.iter().map(|s| s.1).collect();
    assert!(
        ports.len() >= seen.len() / 2,
        "random source ports: {} distinct of {}",
        ports.len(),
        seen.len()
    );
    assert!(
        ids.len() >= seen.len() - 1,
        "random ids: {} distinct of {}",
        ids.len(),
        seen.len()
    );
}
