//! What an upstream said: one reply classified into the answer our clients
//! get ([`UpstreamAnswer`]), CNAME chains followed only from the asked name
//! (at most [`MAX_CNAME_HOPS`]), and records without data dropped.
//!
//! Uses: hickory-proto only. Used by: `dns::forward` (classifies replies),
//! `dns::upstream` (caches answers), `dns::handler` (turns them into
//! messages).

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::time::SystemTime;

/// What the upstream said, in the shape our answers need.
#[derive(Debug, Clone)]
pub enum UpstreamAnswer {
    /// NOERROR with records (answers may be empty = NODATA with `authorities`).
    Records {
        answers: Vec<Record>,
        authorities: Vec<Record>,
    },
    /// NXDOMAIN / NODATA / REFUSED … with the SOA when one came back.
    Negative {
        code: ResponseCode,
        authorities: Vec<Record>,
    },
    /// Timeout, unreachable upstream, broken answer: SERVFAIL to the client.
    Failed { reason: String },
}

/// CNAMEs followed for one question.
pub const MAX_CNAME_HOPS: usize = 8;

/// What one upstream reply says about a question.
#[derive(Debug)]
pub enum Classified {
    /// The answer to give (records, negative with its SOA, or failure).
    Answer(UpstreamAnswer),
    /// The reply ends in a CNAME to this name, which it does not resolve:
    /// ask for it next (the chain so far is in `chain`).
    Chase(Name),
}

/// Classifies `message`, the reply to `(name, type)`: the records on the
/// chain from `name` are added to `chain` (earlier hops already in it);
/// records for other names are dropped. SERVFAIL, REFUSED and the other
/// error codes are failures.
pub fn classify(
    message: &Message,
    name: &Name,
    record_type: RecordType,
    chain: &mut Vec<Record>,
) -> Classified {
    let code = message.metadata.response_code;
    if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Classified::Answer(UpstreamAnswer::Failed {
            reason: format!("upstream answered {code}"),
        });
    }
    let (records, end, complete) = follow(&message.answers, name, record_type);
    let followed = !records.is_empty();
    chain.extend(records);
    if !complete && followed && code == ResponseCode::NoError {
        return Classified::Chase(end);
    }
    if !chain.is_empty() {
        return Classified::Answer(UpstreamAnswer::Records {
            answers: servable(chain),
            authorities: Vec::new(),
        });
    }
    let soa: Vec<Record> = message
        .authorities
        .iter()
        .filter(|r| matches!(r.data, RData::SOA(_)))
        .take(1)
        .cloned()
        .collect();
    Classified::Answer(UpstreamAnswer::Negative {
        code,
        authorities: servable(&soa),
    })
}

/// The records of `answers` on the chain from `start`: CNAMEs followed to
/// the records of `record_type`. Returns them, where the chain ends, and
/// whether it ended in records of the type asked.
fn follow(answers: &[Record], start: &Name, record_type: RecordType) -> (Vec<Record>, Name, bool) {
    let mut chain = Vec::new();
    let mut current = start.clone();
    for _ in 0..=MAX_CNAME_HOPS {
        let direct: Vec<Record> = answers
            .iter()
            .filter(|r| r.name == current && r.record_type() == record_type)
            .cloned()
            .collect();
        if !direct.is_empty() {
            chain.extend(direct);
            return (chain, current, true);
        }
        let Some(target) = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some((r, target.0.clone())),
            _ => None,
        }) else {
            break;
        };
        chain.push(target.0.clone());
        if chain.iter().any(|r| r.name == target.1) {
            // A CNAME loop: what came is what there is.
            return (chain, current, true);
        }
        current = target.1;
    }
    (chain, current, false)
}

/// The records of an upstream section that can be served: records without
/// data (the RFC 2136 update syntax, which hickory accepts in a response
/// whose opcode says UPDATE) are dropped, or clients would get an answer
/// they cannot parse. Found by the `upstream_answer` fuzz target.
pub(crate) fn servable(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .filter(|r| !matches!(r.data, hickory_proto::rr::RData::Update0(_)))
        .cloned()
        .collect()
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::net::Ipv4Addr;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn only_the_chain_from_the_asked_name_is_kept() {
        let a = |owner: &str, ip: [u8; 4]| {
            Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))))
        };
        let cname = |owner: &str, target: &str| {
            Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
        };
        let answers = vec![
            cname("www.example.", "edge.cdn."),
            a("victim.example.", [198, 51, 100, 66]),
            a("edge.cdn.", [192, 0, 2, 1]),
        ];
        let (chain, end, complete) = follow(&answers, &name("www.example."), RecordType::A);
        assert!(complete);
        assert_eq!(end, name("edge.cdn."));
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain.iter().all(|r| r.name != name("victim.example.")));
        let (chain, end, complete) = follow(&answers[..1], &name("www.example."), RecordType::A);
        assert!(!complete);
        assert_eq!((chain.len(), end), (1, name("edge.cdn.")));
        let looped = vec![
            cname("a.example.", "b.example."),
            cname("b.example.", "a.example."),
        ];
        let (chain, _, complete) = follow(&looped, &name("a.example."), RecordType::A);
        assert!(complete && chain.len() == 2);
    }
}
