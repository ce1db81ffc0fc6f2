//! The loopback parts of the efficacy benchmark: an
//! upstream that answers every name, and a pipelined DNS client that asks
//! edudns many names from one band's source address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The address the upstream gives every A query: never the sinkhole.
pub const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A UDP upstream that answers every A query with [`UPSTREAM_ANSWER`] and
/// every other type with an empty NOERROR.
pub async fn start_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = socket.local_addr().expect("upstream address");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(reply) = upstream_reply(&buf[..len]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    addr
}

fn upstream_reply(query: &[u8]) -> Option<Vec<u8>> {
    let end = question_end(query)?;
    let qtype = u16::from_be_bytes([query[end - 4], query[end - 3]]);
    let mut out = query[..end].to_vec();
    out[2] = 0x81 | (query[2] & 0x01); // QR, RD copied
    out[3] = 0x80; // RA, NOERROR
    out[6..12].copy_from_slice(&[0, u8::from(qtype == 1), 0, 0, 0, 0]);
    if qtype == 1 {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        out.extend_from_slice(&UPSTREAM_ANSWER.octets());
    }
    Some(out)
}

/// Offset just past the (single) question of a message.
fn question_end(message: &[u8]) -> Option<usize> {
    if message.len() < 12 || u16::from_be_bytes([message[4], message[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = *message.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    (at + 4 <= message.len()).then_some(at + 4)
}

/// A query for `name` (already lowercase ASCII), type A, RD set.
pub fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 18);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, 0, 1, 0, 1]);
    out
}

/// What edudns answered for one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An A record with the sinkhole address.
    Blocked,
    /// Any other NOERROR answer (forwarded, rewritten, empty).
    Allowed,
    /// NXDOMAIN, REFUSED, SERVFAIL … (the response code).
    Rcode(u8),
    /// No answer after every retry.
    NoAnswer,
}

fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1 + len;
    }
}

fn verdict_of(response: &[u8], sinkhole: Ipv4Addr) -> Option<Verdict> {
    let rcode = response.get(3)? & 0x0f;
    if rcode != 0 {
        return Some(Verdict::Rcode(rcode));
    }
    let answers = u16::from_be_bytes([response[6], response[7]]);
    let mut at = question_end(response)?;
    for _ in 0..answers {
        at = skip_name(response, at)?;
        let rtype = u16::from_be_bytes([*response.get(at)?, *response.get(at + 1)?]);
        let len = u16::from_be_bytes([*response.get(at + 8)?, *response.get(at + 9)?]) as usize;
        let data = response.get(at + 10..at + 10 + len)?;
        if rtype == 1 && len == 4 && data == sinkhole.octets() {
            return Some(Verdict::Blocked);
        }
        at += 10 + len;
    }
    Some(Verdict::Allowed)
}

/// A question in flight: name index, sent at, tries, the message as sent.
type Slot = (usize, Instant, u8, Vec<u8>);

/// Asks `server` for the A record of every name, from `source` (the band's
/// address), with up to `window` queries outstanding; a query with no
/// answer after 2 s is sent again, five times at most.
pub async fn ask_all(
    server: SocketAddr,
    source: IpAddr,
    names: &[String],
    sinkhole: Ipv4Addr,
) -> Vec<Verdict> {
    const WINDOW: usize = 256;
    const TIMEOUT: Duration = Duration::from_secs(2);
    const TRIES: u8 = 5;
    // A large receive buffer: the server answers a window of blocked names
    // faster than one task reads them on a busy two-core machine.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .expect("client socket");
    let _ = socket.set_recv_buffer_size(8 << 20);
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind the client on the band's address");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = UdpSocket::from_std(socket.into()).expect("tokio socket");
    socket.connect(server).await.expect("connect");
    let mut out = vec![Verdict::NoAnswer; names.len()];
    // slot id → (name index, sent at, tries, the question as sent)
    let mut slots: Vec<Option<Slot>> = vec![None; WINDOW];
    let mut next = 0;
    let mut open = 0;
    let mut buf = vec![0u8; 4096];
    let mut round: u16 = 0;
    while next < names.len() || open > 0 {
        for (slot, entry) in slots.iter_mut().enumerate() {
            if entry.is_none() && next < names.len() {
                round = round.wrapping_add(1);
                // High bits change per use, so a late answer to an earlier
                // use of the slot is not taken for this one.
                let id = ((round & 0xff) << 8) | slot as u16;
                let query = encode_query(id, &names[next]);
                let _ = socket.send(&query).await;
                *entry = Some((next, Instant::now(), 1, query));
                next += 1;
                open += 1;
            }
        }
        match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await {
            Ok(Ok(len)) if len >= 12 => {
                let response = &buf[..len];
                let id = u16::from_be_bytes([response[0], response[1]]);
                let slot = (id & 0xff) as usize;
                if let Some((index, _, _, query)) = &slots[slot] {
                    let same = query[..2] == response[..2]
                        && question_end(query).is_some_and(|end| {
                            response.len() >= end
                                && response[12..end].eq_ignore_ascii_case(&query[12..end])
                        });
                    if same && let Some(verdict) = verdict_of(response, sinkhole) {
                        out[*index] = verdict;
                        slots[slot] = None;
                        open -= 1;
                    }
                }
            }
            _ => {}
        }
        let now = Instant::now();
        for entry in slots.iter_mut() {
            if let Some((_, sent, tries, query)) = entry
                && now.duration_since(*sent) > TIMEOUT
            {
                if *tries >= TRIES {
                    *entry = None;
                    open -= 1;
                } else {
                    *tries += 1;
                    *sent = now;
                    let _ = socket.send(query).await;
                }
            }
        }
    }
    out
}

/// One query, for polling until the server serves.
pub async fn ask_one(
    server: SocketAddr,
    source: IpAddr,
    name: &str,
    sinkhole: Ipv4Addr,
) -> Option<Verdict> {
    let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await.ok()?;
    socket.connect(server).await.ok()?;
    socket.send(&encode_query(0x4242, name)).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    verdict_of(&buf[..len], sinkhole)
}

/// `GET http://addr/path` → body, for the management listener.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()?
}

/// The value of one series of a Prometheus text exposition (0 when absent).
pub fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// Checks the upstream's reply and the verdict reading on one message; the
/// benchmark runs it first (a bench without the test harness runs no
/// `#[test]`).
pub fn self_check() {
    {
        let query = encode_query(7, "example.com");
        let reply = upstream_reply(&query).unwrap();
        assert_eq!(
            verdict_of(&reply, UPSTREAM_ANSWER),
            Some(Verdict::Blocked),
            "the reply's A is UPSTREAM_ANSWER"
        );
        assert_eq!(
            verdict_of(&reply, Ipv4Addr::new(10, 0, 0, 1)),
            Some(Verdict::Allowed)
        );
    }
}
