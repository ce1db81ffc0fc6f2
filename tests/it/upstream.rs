//! A real DNS server on loopback to forward to: hickory-server's `Server`
//! with a programmable handler (records per name, optional delay), counting
//! the questions it receives.

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<Record>>,
    /// Records a rogue upstream slips into every answer.
    rogue: Vec<Record>,
    delay: Option<Duration>,
    ttl: Option<u32>,
    /// Every name under one of these suffixes has this A record.
    wildcards: Vec<(String, Ipv4Addr)>,
}

/// Builder for the upstream's data.
#[derive(Default)]
pub struct UpstreamBuilder {
    zone: Zone,
}

fn name(text: &str) -> Name {
    Name::from_ascii(format!("{}.", text.trim_end_matches('.'))).unwrap()
}

impl UpstreamBuilder {
    fn add(mut self, owner: &str, rtype: RecordType, rdata: RData) -> Self {
        let record = Record::from_rdata(name(owner), self.zone.ttl.unwrap_or(300), rdata);
        self.zone
            .records
            .entry((owner.to_ascii_lowercase(), rtype))
            .or_default()
            .push(record);
        self
    }

    pub fn a(self, owner: &str, ip: Ipv4Addr) -> Self {
        self.add(owner, RecordType::A, RData::A(A(ip)))
    }

    pub fn aaaa(self, owner: &str, ip: Ipv6Addr) -> Self {
        self.add(owner, RecordType::AAAA, RData::AAAA(AAAA(ip)))
    }

    pub fn cname(self, owner: &str, target: &str) -> Self {
        self.add(owner, RecordType::A, RData::CNAME(CNAME(name(target))))
    }

    /// `count` TXT records of 200 bytes: an answer far over 512 / 1232 bytes.
    pub fn big_txt(mut self, owner: &str, count: usize) -> Self {
        for i in 0..count {
            let text = format!("{i:03}{}", "x".repeat(197));
            self = self.add(owner, RecordType::TXT, RData::TXT(TXT::new(vec![text])));
        }
        self
    }

    /// Acts as a rogue upstream: adds this record (for another name) to
    /// every answer.
    pub fn rogue_a(mut self, owner: &str, ip: Ipv4Addr) -> Self {
        self.zone
            .rogue
            .push(Record::from_rdata(name(owner), 300, RData::A(A(ip))));
        self
    }

    /// TTL of the records added after this call.
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.zone.ttl = Some(seconds);
        self
    }

    /// Every name under `suffix` (not the suffix itself) answers this A
    /// record: a domain with many real subdomains, such as a CDN.
    pub fn wildcard_a(mut self, suffix: &str, ip: Ipv4Addr) -> Self {
        self.zone
            .wildcards
            .push((format!(".{}", suffix.to_ascii_lowercase()), ip));
        self
    }

    /// Every answer waits this long.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.zone.delay = Some(delay);
        self
    }

    pub async fn start(self) -> TestUpstream {
        let queries = Arc::new(AtomicUsize::new(0));
        let silent = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let names = Arc::new(Mutex::new(Vec::new()));
        let concurrent = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tcp_questions = Arc::new(AtomicUsize::new(0));
        let handler = ZoneHandler {
            zone: Arc::new(self.zone),
            queries: queries.clone(),
            silent: silent.clone(),
            seen: seen.clone(),
            names: names.clone(),
            concurrent,
            peak: peak.clone(),
            tcp: tcp_questions.clone(),
        };
        // The same port for UDP and TCP; another test may hold the TCP port
        // of the UDP port we got, so try again then.
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, addr, tcp);
            }
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        TestUpstream {
            addr,
            queries,
            silent,
            seen,
            names,
            peak,
            tcp: tcp_questions,
            _server: server,
        }
    }
}

/// The running upstream; stops when dropped.
pub struct TestUpstream {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    silent: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(u16, u16)>>>,
    /// The name of every question received, lowercase.
    names: Arc<Mutex<Vec<String>>>,
    /// The most questions handled at once.
    peak: Arc<AtomicUsize>,
    tcp: Arc<AtomicUsize>,
    _server: Server<ZoneHandler>,
}

impl TestUpstream {
    pub fn builder() -> UpstreamBuilder {
        UpstreamBuilder::default()
    }

    /// Black-holes the upstream: questions are received and never answered.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// (source port, message id) of every question received.
    pub fn seen(&self) -> Vec<(u16, u16)> {
        self.seen.lock().unwrap().clone()
    }

    /// Questions received for `suffix` or a name under it.
    pub fn questions_under(&self, suffix: &str) -> usize {
        let under = format!(".{suffix}");
        self.names
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == suffix || n.ends_with(&under))
            .count()
    }

    /// Questions that came over TCP.
    pub fn tcp_queries(&self) -> usize {
        self.tcp.load(Ordering::SeqCst)
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// The most questions this upstream was handling at once.
    pub fn peak_concurrent(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Counts a question as being handled until dropped (answered or cancelled).
struct Handling<'a>(&'a AtomicUsize);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ZoneHandler {
    zone: Arc<Zone>,
    queries: Arc<AtomicUsize>,
    silent: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(u16, u16)>>>,
    names: Arc<Mutex<Vec<String>>>,
    concurrent: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    tcp: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if request.protocol() == hickory_server::net::xfer::Protocol::Tcp {
            self.tcp.fetch_add(1, Ordering::SeqCst);
        }
        let now = self.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
        let _handling = Handling(&self.concurrent);
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap()
            .push((request.src().port(), request.metadata.id));
        if self.silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if let Some(delay) = self.zone.delay {
            tokio::time::sleep(delay).await;
        }
        let query = &request.queries.queries()[0];
        let owner = query
            .name()
            .to_string()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.names.lock().unwrap().push(owner.clone());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = true;
        let mut answers: Vec<Record> = self
            .zone
            .records
            .get(&(owner.clone(), query.query_type()))
            .cloned()
            .unwrap_or_default();
        let wildcard = self
            .zone
            .wildcards
            .iter()
            .find(|(suffix, _)| owner.ends_with(suffix.as_str()));
        if let Some((_, ip)) = wildcard
            && answers.is_empty()
            && query.query_type() == RecordType::A
        {
            answers.push(Record::from_rdata(name(&owner), 300, RData::A(A(*ip))));
        }
        if !answers.is_empty() {
            let asked = name(&owner);
            answers.extend(self.zone.rogue.iter().filter(|r| r.name != asked).cloned());
        }
        let known_name = wildcard.is_some() || self.zone.records.keys().any(|(n, _)| *n == owner);
        let soa = vec![Record::from_rdata(
            name("test"),
            60,
            RData::SOA(SOA::new(
                name("ns.test"),
                name("admin.test"),
                1,
                60,
                60,
                60,
                60,
            )),
        )];
        metadata.response_code = if answers.is_empty() && !known_name {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        let negative: &[Record] = if answers.is_empty() { &soa } else { &[] };
        let builder = MessageResponseBuilder::from_message_request(request);
        let response = builder.build(
            metadata,
            answers.iter(),
            negative.iter(),
            [].iter(),
            [].iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header {
                metadata: Metadata::response_from_request(&request.metadata),
                counts: HeaderCounts::default(),
            }),
        }
    }
}
