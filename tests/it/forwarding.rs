//! edudns's own forwarder (src/dns/forward.rs) with several upstreams and
//! both transports: failover from a silent or closed server, the failed
//! server asked last afterwards, `protocol = "tcp"`, and replies refused as
//! forgeries counted.

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

async fn answering() -> TestUpstream {
    let mut builder = TestUpstream::builder();
    for i in 0..8 {
        builder = builder.a(&format!("n{i}.example"), Ipv4Addr::new(192, 0, 2, 10 + i));
    }
    builder.start().await
}

/// A black-holed first server: the first question waits for its share of
/// the deadline (half of `timeout_ms` with two servers), then the second
/// answers; afterwards the silent one is asked last, so the next questions
/// are answered at once and it hears no more of them.
#[tokio::test]
async fn a_silent_first_upstream_fails_over_and_is_then_asked_last() {
    let silent = answering().await;
    silent.set_silent(true);
    let good = answering().await;
    let server =
        TestServer::start_with_upstream_addrs(&base_config(""), vec![silent.addr, good.addr]).await;
    let first = server.query("n0.example.", RecordType::A).await;
    assert_eq!(
        a_records(&first),
        vec!["192.0.2.10"],
        "answered by the second"
    );
    assert_eq!(silent.queries(), 1, "the first server was asked first");
    for i in 1..8u8 {
        let started = Instant::now();
        let answer = server.query(&format!("n{i}.example."), RecordType::A).await;
        assert_eq!(a_records(&answer), vec![format!("192.0.2.{}", 10 + i)]);
        // Not waiting for the silent server again (its share would be 750 ms).
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "n{i}: {:?}: the failed server was asked first again",
            started.elapsed()
        );
    }
    assert_eq!(silent.queries(), 1, "the failed server is asked last");
    assert_eq!(good.queries(), 8);
}

/// A first server where nothing listens: the ICMP port-unreachable ends the
/// attempt at once (no waiting for the deadline share), the second answers.
/// With only the closed server, SERVFAIL comes at once too.
#[tokio::test]
async fn a_closed_upstream_port_is_skipped_without_waiting() {
    let closed = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let good = answering().await;
    let server =
        TestServer::start_with_upstream_addrs(&base_config(""), vec![closed, good.addr]).await;
    let started = Instant::now();
    let answer = server.query("n1.example.", RecordType::A).await;
    assert_eq!(a_records(&answer), vec!["192.0.2.11"]);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}: waited for the closed port's share of the deadline",
        started.elapsed()
    );
    drop(server);

    let server = TestServer::start_with_upstream_addrs(&base_config(""), vec![closed]).await;
    let started = Instant::now();
    let answer = server.query("n2.example.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}: SERVFAIL only after the deadline",
        started.elapsed()
    );
}

/// `protocol = "tcp"`: every question goes over TCP; the default asks over
/// UDP (TCP only for truncated or suspicious replies).
#[tokio::test]
async fn protocol_tcp_sends_every_question_over_tcp() {
    let upstream = answering().await;
    let config =
        base_config("").replace("timeout_ms = 1500", "timeout_ms = 1500\nprotocol = \"tcp\"");
    assert!(config.contains("protocol = \"tcp\""));
    let server = TestServer::start(&config, Some(upstream)).await;
    for i in 0..4u8 {
        let answer = server.query(&format!("n{i}.example."), RecordType::A).await;
        assert_eq!(a_records(&answer), vec![format!("192.0.2.{}", 10 + i)]);
    }
    let upstream = server.upstream.as_ref().unwrap();
    assert_eq!(upstream.queries(), 4);
    assert_eq!(upstream.tcp_queries(), 4, "all over TCP");
    drop(server);

    let server = TestServer::start(&base_config(""), Some(answering().await)).await;
    for i in 0..4u8 {
        let _ = server.query(&format!("n{i}.example."), RecordType::A).await;
    }
    let upstream = server.upstream.as_ref().unwrap();
    assert_eq!(upstream.queries(), 4);
    assert_eq!(upstream.tcp_queries(), 0, "UDP by default");
}
