//! Entry points for the `cargo fuzz` targets in `fuzz/`: the request
//! pipeline, upstream answers through the cache, the list parsers and the
//! configuration parser, each run without any network or file.
//!
//! Not part of the supported API. Each function panics when an invariant
//! the rest of the service relies on does not hold, so the fuzzer reports it.

use crate::config::{self, ListRoot};
use crate::dns::answer;
use crate::dns::handler::Step;
use crate::dns::reply::{UpstreamAnswer, servable};
use crate::dns::upstream::Lookup;
use crate::dns::{Handler, Transport, Upstream};
use crate::lists::RuleAction;
use crate::lists::formats::{self, ListFormat};
use crate::policy::clock::ManualClock;
use crate::stats::Stats;
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::RData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A small school: one band blocking everything it can (deny, allow,
/// schedule, safe search, bypass prevention), one blocking nothing. The
/// lists are the curated ones compiled into the binary. `{MODE}` is the
/// blocking mode. The upstream is never contacted: the fuzz entry points
/// stop before [`Handler::finish`].
const CONFIG: &str = r#"
[server]
dns_listen = ["127.0.0.1:0"]
management_listen = "127.0.0.1:0"

[upstream]
servers = ["127.0.0.1:1"]

[blocking]
mode = "{MODE}"
sinkhole_ipv4 = "10.99.0.1"
sinkhole_ipv6 = "fd99::1"
ttl = 60

[[category]]
id = "gambling"
lists = ["../blocklists/curated/gambling.txt"]

[[category]]
id = "social"
lists = ["../blocklists/curated/social.txt"]

[[category]]
id = "doh-bypass"
lists = [{ path = "../blocklists/curated/doh-bypass.txt", format = "plain" }]

[[band]]
id = "young"
block = ["gambling", "doh-bypass"]
deny = ["deny.example"]
allow = ["ok.bet.example"]
safe_search = true
youtube = "strict"

[[band.schedule]]
category = "social"
days = ["mon-fri"]
windows = ["07:00-11:30"]

[[band]]
id = "staff"
block = []

[[school]]
id = "s1"
networks = ["127.0.0.0/24", "::1/128"]
unknown_band = "young"

[school.bands]
staff = ["127.0.0.4/32"]
"#;

/// Source addresses a fuzz input picks from: the unknown band, staff, IPv6
/// and an address outside every school.
const SOURCES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
];

/// One handler per blocking mode, built once per fuzzing process.
fn handlers() -> &'static [Handler; 3] {
    static HANDLERS: OnceLock<[Handler; 3]> = OnceLock::new();
    HANDLERS.get_or_init(|| ["sinkhole", "null", "nxdomain"].map(handler_for))
}

fn handler_for(mode: &str) -> Handler {
    let text = CONFIG.replace("{MODE}", mode);
    let config = config::validate::parse(&text, Path::new("fuzz.toml"), ListRoot::Embedded)
        .expect("the fuzz configuration is valid");
    let upstream = Upstream::new(&config.upstream).expect("upstream settings");
    let snapshot = crate::snapshot::build(config, 1).expect("the embedded lists load");
    // A Monday at 09:00 in Asia/Ho_Chi_Minh: inside the schedule window.
    let monday = jiff::Timestamp::from_second(1_767_578_400).expect("valid time");
    Handler::new(
        Arc::new(ArcSwap::from_pointee(snapshot)),
        upstream,
        Arc::new(ManualClock::new(monday)),
        Arc::new(Stats::new()),
    )
}

/// Splits the two control bytes off a fuzz input.
fn controls(data: &[u8]) -> Option<(u8, u8, &[u8])> {
    match data {
        [a, b, rest @ ..] => Some((*a, *b, rest)),
        _ => None,
    }
}

/// Checks an answer edudns would send for `packet`.
fn check_reply(packet: &[u8], reply: &[u8], limit: usize) {
    assert!(reply.len() >= 12, "answer shorter than a header");
    assert!(
        reply.len() <= limit,
        "{} bytes over the {limit} limit",
        reply.len()
    );
    assert_eq!(
        reply[..2],
        packet[..2],
        "answer id differs from the query id"
    );
    assert!(reply[2] & 0x80 != 0, "answer without QR");
    if reply.len() > 12 {
        // Anything longer than a bare FORMERR header must parse back.
        Message::from_vec(reply).unwrap_or_else(|e| panic!("our answer does not parse: {e}"));
    }
}

/// The limit the listener applies for `packet` (FORMERR headers fit any).
fn limit_for(packet: &[u8], transport: Transport) -> usize {
    match (transport, Message::from_vec(packet)) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Ok(request)) => answer::udp_limit(&request),
        (Transport::Udp, Err(_)) => usize::from(answer::MAX_UDP_PLAIN),
    }
}

/// What a fuzz input makes the upstream say for the forwarded question.
fn synthetic_upstream(choice: u8, query: &Query) -> UpstreamAnswer {
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, Record};
    let cname_to = |target: &str| {
        let target = Name::from_ascii(target).expect("static name");
        UpstreamAnswer::Records {
            answers: vec![
                Record::from_rdata(query.name.clone(), 30, RData::CNAME(CNAME(target.clone()))),
                Record::from_rdata(target, 30, RData::A(A(Ipv4Addr::new(192, 0, 2, 7)))),
            ],
            authorities: Vec::new(),
        }
    };
    match choice % 5 {
        0 => UpstreamAnswer::Records {
            answers: vec![Record::from_rdata(
                query.name.to_lowercase(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 8))),
            )],
            authorities: Vec::new(),
        },
        // CNAME cloaking: an allowed name aliasing a listed one.
        1 => cname_to("casino.example."),
        2 => cname_to("cdn.example.net."),
        3 => UpstreamAnswer::Negative {
            code: ResponseCode::NXDomain,
            authorities: Vec::new(),
        },
        _ => UpstreamAnswer::Failed {
            reason: "fuzz".to_string(),
        },
    }
}

/// Target `request`: wire bytes from a client → decide (sanity, parse,
/// classify, policy, blocked/refused/error answers) → for forwarded names
/// a synthetic upstream answer → compose (CNAME cloaking, safe search) →
/// encode with the transport's size limit. Checks every answer fits, keeps
/// the id, has QR set and parses back.
pub fn request(data: &[u8]) {
    let Some((a, b, packet)) = controls(data) else {
        return;
    };
    let handler = &handlers()[usize::from(a % 3)];
    let src = SocketAddr::new(SOURCES[usize::from((a >> 2) % 4)], 5353);
    let transport = if a & 0x10 != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let limit = limit_for(packet, transport);
    // The UDP fast path first, as the listener does; when it answers, the
    // general path must say the same (differential check).
    let mut fast_reply = None;
    if transport == Transport::Udp {
        // The listener's cache hints for a batch, then the answer.
        let snapshot = handler.snapshot.load();
        if let Some(probe) = crate::dns::fast::prefetch(&snapshot, packet) {
            snapshot.lists.prefetch_label(probe);
        }
        let mut out = vec![0u8; crate::dns::fast::MAX_ANSWER];
        if let crate::dns::fast::Fast::Reply(n) =
            crate::dns::fast::answer(handler, packet, src, &mut out)
        {
            check_reply(packet, &out[..n], limit);
            fast_reply = Some(out[..n].to_vec());
        }
    }
    match handler.decide(packet, src, transport) {
        Step::Reply(None) => {}
        Step::Reply(Some(reply)) => {
            check_reply(packet, &reply, limit);
            if let Some(fast) = &fast_reply {
                same_answer(fast, &reply);
            }
        }
        Step::Forward(job) => {
            let query = job.question().clone();
            let said = synthetic_upstream(b, &query);
            let response = handler.compose(&job, &query, &said);
            if let Some(reply) = handler.encode(&response, limit) {
                check_reply(packet, &reply, limit);
                // Later inputs may then be answered from the wire cache.
                handler.remember(&job, &said, &response, Some(&reply));
            }
        }
    }
}

/// The fast path and the general path agree on the rcode and the records.
fn same_answer(fast: &[u8], general: &[u8]) {
    let (Ok(f), Ok(g)) = (Message::from_vec(fast), Message::from_vec(general)) else {
        panic!("both answers parse");
    };
    assert_eq!(f.metadata.response_code, g.metadata.response_code, "rcode");
    assert_eq!(f.answers.len(), g.answers.len(), "answer count");
    assert_eq!(f.authorities.len(), g.authorities.len(), "authority count");
    assert_eq!(f.edns.is_some(), g.edns.is_some(), "EDNS");
    for (x, y) in f.answers.iter().zip(&g.answers) {
        assert_eq!(x.data, y.data, "answer data");
    }
}

/// How an upstream response is classified, by the forwarder's own
/// [`crate::dns::reply::classify`]; a chain left unresolved (which the
/// forwarder would follow with another question) is served as it stands.
fn classify_upstream(response: &Message, question: &Query) -> UpstreamAnswer {
    let mut chain = Vec::new();
    match crate::dns::reply::classify(response, &question.name, question.query_type, &mut chain) {
        crate::dns::reply::Classified::Answer(answer) => answer,
        crate::dns::reply::Classified::Chase(_) => UpstreamAnswer::Records {
            answers: servable(&chain),
            authorities: Vec::new(),
        },
    }
}

/// Target `upstream_answer`: the bytes of an upstream response → parse →
/// classify → store in the cache → read back after a fuzz-chosen age
/// (fresh, TTLs counted down, stale, dropped) → answer a client's query
/// for the same question (CNAME cloaking, name as asked) → encode. Checks
/// TTLs only ever go down, stale answers carry TTL 30, and the client's
/// answer fits and parses.
pub fn upstream_answer(data: &[u8]) {
    let Some((a, b, bytes)) = controls(data) else {
        return;
    };
    let Ok(response) = Message::from_vec(bytes) else {
        return;
    };
    let Some(question) = response.queries.first() else {
        return;
    };
    let handler = &handlers()[usize::from(a % 3)];
    let upstream = handler.upstream.load_full();
    let said = Arc::new(classify_upstream(&response, question));
    let key = (question.name.to_lowercase(), question.query_type);
    let stored = Instant::now();
    upstream.store(key.clone(), &said);
    // Ages from 0 s to ~9 hours, and some past the one-day stale window.
    let age = Duration::from_secs(u64::from(b) * u64::from(b) + u64::from(a >> 7) * 90_000);
    let max_ttl = |answer: &UpstreamAnswer| match answer {
        UpstreamAnswer::Records {
            answers,
            authorities,
        } => answers.iter().chain(authorities).map(|r| r.ttl).max(),
        UpstreamAnswer::Negative { authorities, .. } => authorities.iter().map(|r| r.ttl).max(),
        UpstreamAnswer::Failed { .. } => None,
    };
    let cached = match upstream.cached_at(&key, stored + age) {
        Lookup::Fresh(answer) => {
            assert!(
                max_ttl(&answer) <= max_ttl(&said),
                "a cached TTL grew with age"
            );
            Some(answer)
        }
        Lookup::Stale(answer) => {
            assert!(
                max_ttl(&answer).is_none_or(|ttl| ttl == 30),
                "stale answer without TTL 30"
            );
            Some(answer)
        }
        Lookup::Miss => None,
    };
    // Keep the cache from growing with the corpus.
    upstream.forget(&key);
    let Some(cached) = cached else { return };
    // The client's question: the same name and type, as a student asks it.
    let mut request = Message::new(response.metadata.id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = true;
    request.add_query(question.clone());
    let Ok(packet) = request.to_vec() else { return };
    let limit = limit_for(&packet, Transport::Udp);
    let src = SocketAddr::new(SOURCES[usize::from((a >> 2) % 3)], 5353);
    if let Step::Forward(job) = handler.decide(&packet, src, Transport::Udp) {
        let query = job.question().clone();
        let reply = handler.compose(&job, &query, &cached);
        if let Some(reply) = handler.encode(&reply, limit) {
            check_reply(&packet, &reply, limit);
        }
    }
}

/// Target `list_formats`: one list in the format the first byte picks
/// (or detected). Checks every entry is a normalised name (lowercase ASCII,
/// no trailing dot, labels of 1–63 characters, at most 253 in all) and the
/// summary counts what was streamed.
pub fn list_formats(data: &[u8]) {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let format = [
        ListFormat::Auto,
        ListFormat::Plain,
        ListFormat::Hosts,
        ListFormat::Adblock,
        ListFormat::Dnsmasq,
        ListFormat::Rpz,
    ][usize::from(choice % 6)];
    let (mut entries, mut allows) = (0usize, 0usize);
    let lines = text.lines().count();
    let summary = formats::parse(text, format, &mut |entry| {
        entries += 1;
        if entry.action == RuleAction::Allow {
            allows += 1;
        }
        let domain = entry.domain;
        assert!(!domain.is_empty() && domain.len() <= 253, "{domain:?}");
        assert!(!domain.ends_with('.'), "{domain:?}");
        assert!(
            domain
                .split('.')
                .all(|label| (1..=63).contains(&label.len())),
            "{domain:?}"
        );
        assert!(
            domain
                .bytes()
                .all(|c| c.is_ascii() && !c.is_ascii_uppercase() && c > b' '),
            "{domain:?}"
        );
        assert!(entry.line >= 1 && entry.line as usize <= lines.max(1));
    });
    assert_ne!(summary.format, ListFormat::Auto);
    assert_eq!(summary.entries, entries);
    assert_eq!(summary.allow_entries, allows);
    assert!(summary.first_skipped.len() <= formats::MAX_SKIPPED_KEPT);
    assert!(summary.first_skipped.len() <= summary.skipped);
}

/// Target `config`: a configuration file → parse and validate (the
/// `check-config` path), lists from the embedded set. Checks every issue
/// names a line inside the file.
///
/// An input holding the line `#---policy` is split there into a node's own
/// file and a central policy (`[central]`), validated as one: issues in the
/// policy must name the policy (line 0, its line in the key).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match text.split_once("\n#---policy\n") {
        Some((local, policy)) => config::central::parse_with_policy(
            Path::new("fuzz.toml"),
            local,
            policy,
            Path::new("policy.toml"),
            ListRoot::Embedded,
        ),
        None => config::validate::parse(text, Path::new("fuzz.toml"), ListRoot::Embedded),
    };
    match parsed {
        Ok(config) => {
            assert!(!config.bands.is_empty());
        }
        Err(config::ConfigError::Invalid { issues, .. }) => {
            assert!(!issues.is_empty(), "an invalid config with no issue");
            let lines = text.lines().count().max(1);
            for issue in issues {
                assert!(
                    issue.line <= lines + 1,
                    "issue on line {} of {lines}",
                    issue.line
                );
            }
        }
        Err(_) => {}
    }
}
