//! Wire-level behaviour: TCP, broken packets, truncation, load shedding,
//! upstream failure, coalescing and caching.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[tokio::test]
async fn tcp_answers_blocked_and_forwarded_names() {
    let upstream = TestUpstream::builder()
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    // TCP from 127.0.0.1: inside the school, unknown band = strictest (young).
    let blocked = query_tcp(
        server.addr,
        &query_message(1, "bet.example.", RecordType::A, true),
    )
    .await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);
    let allowed = query_tcp(
        server.addr,
        &query_message(2, "allowed.example.", RecordType::A, false),
    )
    .await;
    assert_eq!(a_records(&allowed), vec!["192.0.2.10"]);
    assert_eq!(allowed.metadata.id, 2);
}

#[tokio::test]
async fn short_packets_and_responses_get_no_answer_and_garbage_gets_formerr() {
    let server = TestServer::start(&base_config(""), None).await;
    let wait = Duration::from_millis(300);
    for short in [
        &b""[..],
        &b"\x12"[..],
        &b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"[..],
    ] {
        assert!(
            raw_udp(server.addr, "127.0.0.2", short, wait)
                .await
                .is_none(),
            "{short:?}"
        );
    }
    let mut response_packet = query_message(9, "bet.example.", RecordType::A, false)
        .to_vec()
        .unwrap();
    response_packet[2] |= 0x80; // QR=1
    assert!(
        raw_udp(server.addr, "127.0.0.2", &response_packet, wait)
            .await
            .is_none()
    );

    // A header that claims one question followed by junk.
    let garbage = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xfe\xfd";
    let answer = raw_udp(server.addr, "127.0.0.2", garbage, wait)
        .await
        .expect("FORMERR answer");
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.id, 0xabcd);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);

    // Random bytes of every length: the server survives and still answers.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..300 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = raw_udp(server.addr, "127.0.0.2", &bytes, Duration::from_millis(5)).await;
    }
    let still = server.query("bet.example.", RecordType::A).await;
    assert_eq!(a_records(&still), vec!["10.99.0.1"]);
    let counters = server.counters();
    assert!(
        counters.dropped_short >= 3 && counters.dropped_response >= 1 && counters.malformed >= 1
    );
}

#[tokio::test]
async fn oversize_udp_answers_are_truncated_and_complete_over_tcp() {
    let upstream = TestUpstream::builder()
        .big_txt("big.example", 12)
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    for (edns, limit) in [(false, 512), (true, 1232)] {
        let query = query_message(3, "big.example.", RecordType::TXT, edns)
            .to_vec()
            .unwrap();
        let bytes = raw_udp(server.addr, "127.0.0.2", &query, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(
            bytes.len() <= limit,
            "{} bytes over the {limit} limit",
            bytes.len()
        );
        let answer = Message::from_vec(&bytes).unwrap();
        assert!(answer.metadata.truncation, "TC set (edns={edns})");
    }
    let full = query_tcp(
        server.addr,
        &query_message(4, "big.example.", RecordType::TXT, true),
    )
    .await;
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 12);
    assert!(server.counters().truncated >= 2);
}

#[tokio::test]
async fn upstream_failure_is_a_prompt_servfail() {
    // Upstream 127.0.0.1:1: nothing listens there.
    let server = TestServer::start(&base_config(""), None).await;
    let started = Instant::now();
    let response = server.query("allowed.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(server.counters().upstream_errors >= 1, "counted");
}

#[tokio::test]
async fn slow_upstream_times_out_to_servfail() {
    let upstream = TestUpstream::builder()
        .a("slow.example", Ipv4Addr::new(192, 0, 2, 1))
        .delay(Duration::from_secs(10))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    let started = Instant::now();
    let response = server.query("slow.example.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by upstream.timeout_ms"
    );
}

#[tokio::test]
async fn identical_questions_in_flight_share_one_upstream_query_and_then_the_cache() {
    let upstream = TestUpstream::builder()
        .a("popular.example", Ipv4Addr::new(192, 0, 2, 7))
        .delay(Duration::from_millis(300))
        .start()
        .await;
    let server = TestServer::start(&base_config(""), Some(upstream)).await;
    let addr = server.addr;
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            let src = format!("127.0.0.{}", 10 + i);
            query_udp(addr, &src, "popular.example.", RecordType::A).await
        }));
    }
    for task in tasks {
        assert_eq!(a_records(&task.await.unwrap()), vec!["192.0.2.7"]);
    }
    let upstream = server.upstream.as_ref().unwrap();
    assert_eq!(
        upstream.queries(),
        1,
        "20 identical questions, one upstream query"
    );
    let cached = server.query("popular.example.", RecordType::A).await;
    assert_eq!(a_records(&cached), vec!["192.0.2.7"]);
    assert_eq!(upstream.queries(), 1, "answered from the cache");
    assert!(cached.answers[0].ttl <= 300);
}

#[tokio::test]
async fn in_flight_cap_sheds_excess_queries_and_keeps_serving() {
    let upstream = TestUpstream::builder()
        .a("slow.example", Ipv4Addr::new(192, 0, 2, 1))
        .delay(Duration::from_millis(700))
        .start()
        .await;
    let config = base_config("").replace("max_in_flight = 64", "max_in_flight = 4");
    let server = TestServer::start(&config, Some(upstream)).await;
    // 50 different names (no coalescing): only 4 may wait on the upstream.
    let socket = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for i in 0..50u16 {
        let query = query_message(i, &format!("n{i}.slow.example."), RecordType::A, false);
        socket
            .send_to(&query.to_vec().unwrap(), server.addr)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shed = server.counters().shed_in_flight;
    assert!(shed >= 40, "expected most of 50 shed, got {shed}");
    // Blocked names need no upstream slot: answered at once even now.
    let blocked = server.query("bet.example.", RecordType::A).await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);
    // Once the slow ones finish, forwarding works again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = server.query("slow.example.", RecordType::A).await;
    assert_eq!(a_records(&after), vec!["192.0.2.1"]);
}

#[tokio::test]
async fn tcp_connections_are_capped_and_idle_ones_closed() {
    use tokio::io::AsyncReadExt;
    let config = base_config("").replace(
        "max_in_flight = 64",
        "max_in_flight = 64\ntcp_max_connections = 2\ntcp_idle_timeout_secs = 1",
    );
    let server = TestServer::start(&config, None).await;
    let mut idle_a = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let _idle_b = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "third connection closed at once"
    );
    assert_eq!(server.counters().shed_tcp_connections, 1);
    // The idle ones are closed by the server after the idle timeout.
    let closed = tokio::time::timeout(Duration::from_secs(3), idle_a.read(&mut buffer)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection closed"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let fresh = query_tcp(
        server.addr,
        &query_message(5, "bet.example.", RecordType::A, false),
    )
    .await;
    assert_eq!(a_records(&fresh), vec!["10.99.0.1"], "slots are free again");
}
