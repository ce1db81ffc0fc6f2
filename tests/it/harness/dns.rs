//! DNS clients for the tests: hickory's UDP client bound to any 127.x
//! source (to pretend to be another school or band), a TCP client, raw UDP
//! for broken packets, and reading the answers.

use hickory_net::client::ClientHandle;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// hickory's UDP client, bound to `src` (any 127.x address works on Linux).
pub async fn query_udp(server: SocketAddr, src: &str, name: &str, rtype: RecordType) -> Message {
    let bind: SocketAddr = SocketAddr::new(src.parse().unwrap(), 0);
    let mut client = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_bind_addr(Some(bind))
        .with_timeout(Some(Duration::from_secs(5)))
        .exchange();
    let name = Name::from_ascii(name).unwrap();
    let response = client
        .query(name, DNSClass::IN, rtype)
        .await
        .unwrap_or_else(|e| panic!("no answer from edudns: {e}"));
    response.into_message()
}

/// Builds a query message (EDNS with a 1232-byte payload when `edns`).
pub fn query_message(id: u16, name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        message.set_edns(e);
    }
    message
}

/// Sends raw bytes over UDP from `src`; the answer, or `None` after `wait`.
pub async fn raw_udp(
    server: SocketAddr,
    src: &str,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((src.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await {
        Ok(Ok((len, _))) => Some(buffer[..len].to_vec()),
        _ => None,
    }
}

/// One query over TCP (length-prefixed), from 127.0.0.1.
pub async fn query_tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let bytes = message.to_vec().unwrap();
    stream.write_u16(bytes.len() as u16).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let len = tokio::time::timeout(Duration::from_secs(5), stream.read_u16())
        .await
        .expect("TCP answer in time")
        .unwrap();
    let mut buffer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buffer).await.unwrap();
    Message::from_vec(&buffer).unwrap()
}

/// The IPv4 addresses in the answer section.
pub fn a_records(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The Extended DNS Error (code, text) of a response, if any.
pub fn extended_error(message: &Message) -> Option<(u16, String)> {
    let edns = message.edns.as_ref()?;
    edns.options().as_ref().iter().find_map(|(code, option)| {
        if u16::from(*code) != 15 {
            return None;
        }
        let data: Vec<u8> = Vec::try_from(option).ok()?;
        Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        ))
    })
}
