//! Spoofed upstream replies: a raw-UDP upstream on loopback that answers
//! every question first with forged replies carrying a poison address, then,
//! a little later, with the genuine reply. edudns must serve the genuine
//! address and never cache the poison.
//!
//! The forgeries: a wrong transaction id; the right id with another question
//! name; the right id and name with another question type; the right id and
//! question sent from another source port; the right id, port and question
//! with the letter case of the name flipped (0x20: edudns asks with random
//! case, so only a reply echoing it is genuine; edudns then asks again over
//! TCP, which this upstream also answers, genuinely).

use crate::harness::*;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

const POISON_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
const POISON_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 0x66);

/// The genuine address of `name`: 192.0.2.<n> for `v<n>.example`, else 192.0.2.200.
fn genuine_v4(name: &str) -> Ipv4Addr {
    let n = name
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|n| n.parse::<u8>().ok())
        .unwrap_or(200);
    Ipv4Addr::new(192, 0, 2, n)
}

fn genuine_v6(name: &str) -> Ipv6Addr {
    let v4 = genuine_v4(name).octets();
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(v4[3]))
}

/// A reply to `request` with `question` and one record of `name`.
fn reply(id: u16, question: Query, address: RData) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Response, hickory_proto::op::OpCode::Query);
    message.metadata.recursion_desired = true;
    message.metadata.recursion_available = true;
    message.metadata.response_code = ResponseCode::NoError;
    let owner = question.name.clone();
    message.add_query(question);
    message.add_answer(Record::from_rdata(owner, 300, address));
    message.to_vec().unwrap()
}

fn address(rtype: RecordType, v4: Ipv4Addr, v6: Ipv6Addr) -> RData {
    if rtype == RecordType::AAAA {
        RData::AAAA(AAAA(v6))
    } else {
        RData::A(A(v4))
    }
}

/// `name` with the case of every ASCII letter flipped.
fn flipped_case(name: &Name) -> Name {
    let flipped: String = name
        .to_ascii()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    Name::from_ascii(flipped).unwrap()
}

/// Answers DNS over TCP on `listener`, genuinely, counting the questions.
fn serve_tcp_genuinely(listener: tokio::net::TcpListener, count: Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut length = [0u8; 2];
                while stream.read_exact(&mut length).await.is_ok() {
                    let mut buffer = vec![0u8; usize::from(u16::from_be_bytes(length))];
                    if stream.read_exact(&mut buffer).await.is_err() {
                        return;
                    }
                    let Ok(request) = Message::from_vec(&buffer) else {
                        return;
                    };
                    let Some(question) = request.queries.first().cloned() else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let asked = question.name.to_ascii().to_ascii_lowercase();
                    let rtype = question.query_type;
                    let genuine = address(rtype, genuine_v4(&asked), genuine_v6(&asked));
                    let packet = reply(request.metadata.id, question, genuine);
                    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&packet);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// The spoofing upstream: (address, UDP questions, forgeries sent, TCP
/// questions). With `flip_case`, a fifth forgery: the right id, port and
/// question with the name's letter case flipped.
async fn start_spoofing_upstream(
    flip_case: bool,
) -> (
    SocketAddr,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    // UDP and TCP on one port (another test may hold the TCP side of the
    // UDP port we got: try again then).
    let (socket, tcp) = loop {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(socket.local_addr().unwrap()).await {
            break (Arc::new(socket), tcp);
        }
    };
    let tcp_questions = Arc::new(AtomicUsize::new(0));
    serve_tcp_genuinely(tcp, tcp_questions.clone());
    // Another port on the same address, for replies from the wrong port.
    let other_port = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let questions = Arc::new(AtomicUsize::new(0));
    let forgeries = Arc::new(AtomicUsize::new(0));
    let (q, f) = (questions.clone(), forgeries.clone());
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((len, src)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let Some(question) = request.queries.first().cloned() else {
                continue;
            };
            q.fetch_add(1, Ordering::SeqCst);
            let (socket, other_port, f) = (socket.clone(), other_port.clone(), f.clone());
            tokio::spawn(async move {
                let id = request.metadata.id;
                let rtype = question.query_type;
                let poison = address(rtype, POISON_V4, POISON_V6);
                let asked = question.name.to_ascii().to_ascii_lowercase();
                let other_name = if asked.starts_with("bank.") {
                    "bank2.example."
                } else {
                    "bank.example."
                };
                let mut other_question = question.clone();
                other_question.name = Name::from_ascii(other_name).unwrap();
                let mut other_type = question.clone();
                other_type.query_type = if rtype == RecordType::AAAA {
                    RecordType::A
                } else {
                    RecordType::AAAA
                };
                let other_type_poison = address(other_type.query_type, POISON_V4, POISON_V6);
                let mut other_case = question.clone();
                other_case.name = flipped_case(&question.name);
                let mut forged = vec![
                    reply(id ^ 0x5a5a, question.clone(), poison.clone()),
                    reply(id, other_question, poison.clone()),
                    reply(id, other_type, other_type_poison),
                ];
                if flip_case {
                    forged.push(reply(id, other_case, poison.clone()));
                }
                for packet in &forged {
                    socket.send_to(packet, src).await.unwrap();
                    f.fetch_add(1, Ordering::SeqCst);
                }
                other_port
                    .send_to(&reply(id, question.clone(), poison), src)
                    .await
                    .unwrap();
                f.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await;
                let genuine = address(rtype, genuine_v4(&asked), genuine_v6(&asked));
                let _ = socket.send_to(&reply(id, question, genuine), src).await;
            });
        }
    });
    (addr, questions, forgeries, tcp_questions)
}

#[tokio::test]
async fn forged_upstream_replies_are_ignored_and_never_cached() {
    let (upstream, questions, forgeries, _) = start_spoofing_upstream(false).await;
    let server = TestServer::start_with_upstream_addr(&base_config(""), upstream).await;
    let names: Vec<String> = (1..=6).map(|n| format!("v{n}.example")).collect();

    for name in &names {
        let answer = server.query(name, RecordType::A).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            a_records(&answer),
            vec![genuine_v4(name).to_string()],
            "{name}: not the genuine address"
        );
    }
    let asked = questions.load(Ordering::SeqCst);
    assert_eq!(asked, names.len(), "one upstream question per name");
    assert_eq!(
        forgeries.load(Ordering::SeqCst),
        4 * names.len(),
        "every question drew four forgeries before the genuine reply"
    );

    // The three forgeries that reach edudns's socket per question (the
    // kernel drops the one from another port) are counted as refused.
    let (_, _, metrics) =
        crate::harness::http_get(server.running.management_addr, "/metrics").await;
    let rejected: u64 = metrics
        .lines()
        .find(|l| l.starts_with("edudns_packets_total{event=\"upstream_reply_rejected\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rejected-reply count in {metrics}"));
    assert!(
        rejected >= 3 * names.len() as u64,
        "{rejected} replies refused, expected at least {}",
        3 * names.len()
    );

    // Asked again: answered from the cache (no new upstream question), and
    // what the cache holds is the genuine answer.
    for name in &names {
        let answer = server.query_from("127.0.0.3", name, RecordType::A).await;
        assert_eq!(a_records(&answer), vec![genuine_v4(name).to_string()]);
    }
    assert_eq!(
        questions.load(Ordering::SeqCst),
        asked,
        "second round not from the cache"
    );

    // The names and types the forgeries were about were never cached from
    // them: asking them goes upstream and gets the genuine answer.
    let bank = server.query("bank.example", RecordType::A).await;
    assert_eq!(
        a_records(&bank),
        vec![genuine_v4("bank.example").to_string()]
    );
    let v6 = server.query(&names[0], RecordType::AAAA).await;
    assert_eq!(a_records(&v6), vec![genuine_v6(&names[0]).to_string()]);
    assert_eq!(questions.load(Ordering::SeqCst), asked + 2);

    for (name, rtype) in names.iter().map(|n| (n.as_str(), RecordType::A)).chain([
        ("bank.example", RecordType::A),
        (&names[0], RecordType::AAAA),
    ]) {
        let answer = server.query_from("127.0.0.4", name, rtype).await;
        let served = a_records(&answer);
        assert!(
            !served.contains(&POISON_V4.to_string()) && !served.contains(&POISON_V6.to_string()),
            "{name} {rtype}: poison served: {served:?}"
        );
    }
}

/// An upstream answering with opcode UPDATE and an A record without data
/// (RFC 2136 syntax, which hickory parses in such a message): the client
/// must still get an answer it can parse, never the empty record (found by
/// the `upstream_answer` fuzz target).
#[tokio::test]
async fn an_upstream_record_without_data_never_reaches_the_client() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let upstream = socket.local_addr().unwrap();
    let questions = Arc::new(AtomicUsize::new(0));
    let counted = questions.clone();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((len, src)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            // Header: same id, QR=1, opcode UPDATE (5), one question, two answers.
            let mut reply = request.metadata.id.to_be_bytes().to_vec();
            reply.extend_from_slice(&[0xa8, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
            // The question as asked (name, type, class), from the request.
            let question_end = 12 + buffer[12..len].iter().position(|&b| b == 0).unwrap() + 5;
            reply.extend_from_slice(&buffer[12..question_end]);
            // An A record with RDLENGTH 0, then a genuine one.
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 0]);
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 5]);
            let _ = socket.send_to(&reply, src).await;
        }
    });
    let server = TestServer::start_with_upstream_addr(&base_config(""), upstream).await;
    for round in 0..2 {
        // query_udp fails the test if the answer does not parse.
        let answer = server.query("empty.example", RecordType::A).await;
        assert!(
            answer
                .answers
                .iter()
                .all(|r| !matches!(r.data, RData::Update0(_))),
            "round {round}: {answer:?}"
        );
        let served = a_records(&answer);
        assert!(
            served.is_empty() || served == ["192.0.2.5"],
            "round {round}: {served:?}"
        );
    }
    assert!(questions.load(Ordering::SeqCst) >= 1);
}

/// 0x20: edudns asks with random letter case; a reply with the right id,
/// port and question but the case flipped is a forgery. It is never served
/// nor cached: edudns asks that question again over TCP, where the genuine
/// answer comes from. With
/// `upstream.case_randomization = false` the poison is accepted: the test
/// checks that too, so it would catch the setting being lost.
#[tokio::test]
async fn a_reply_with_the_wrong_letter_case_is_a_forgery() {
    let names: Vec<String> = (1..=6).map(|n| format!("v{n}.example")).collect();
    let (upstream, udp_questions, _, tcp_questions) = start_spoofing_upstream(true).await;
    let server = TestServer::start_with_upstream_addr(&base_config(""), upstream).await;
    for name in &names {
        for src in ["127.0.0.2", "127.0.0.3"] {
            let answer = server.query_from(src, name, RecordType::A).await;
            assert_eq!(
                a_records(&answer),
                vec![genuine_v4(name).to_string()],
                "{name} from {src}: poison or no answer"
            );
        }
    }
    let (udp, tcp) = (
        udp_questions.load(Ordering::SeqCst),
        tcp_questions.load(Ordering::SeqCst),
    );
    assert!(
        udp >= 1,
        "never asked over UDP: the forgeries were never sent"
    );
    assert_eq!(
        tcp,
        names.len(),
        "each name answered over TCP, once (then cached)"
    );
    drop(server);

    // The same upstream with 0x20 turned off: the flipped-case reply is
    // taken for the answer, which is what the setting prevents.
    let (upstream, _, _, _) = start_spoofing_upstream(true).await;
    let config = base_config("").replace(
        "timeout_ms = 1500",
        "timeout_ms = 1500\ncase_randomization = false",
    );
    let server = TestServer::start_with_upstream_addr(&config, upstream).await;
    let answer = server.query("v1.example", RecordType::A).await;
    assert_eq!(
        a_records(&answer),
        vec![POISON_V4.to_string()],
        "without 0x20 the flipped-case forgery should have been accepted"
    );
}
