//! Building answers: blocked names, errors, RFC 8482 ANY, and the final
//! encoding with the UDP size limit (TC set when the answer does not fit).

use crate::config::{BlockMode, BlockingConfig};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, HINFO, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Largest UDP answer we send to an EDNS client (the DNS Flag Day 2020 value).
pub const MAX_UDP_EDNS: u16 = 1232;
/// Largest UDP answer without EDNS (RFC 1035).
pub const MAX_UDP_PLAIN: u16 = 512;
/// EDNS option code of Extended DNS Errors (RFC 8914).
pub const EDE_OPTION: u16 = 15;
/// EDE info-code "Other": the text says why (a lookup the flood guard or
/// the client's share refused, docs/reliability.md).
pub const EDE_OTHER: u16 = 0;
/// EDE info-code "Blocked".
pub const EDE_BLOCKED: u16 = 15;

/// A response skeleton for `request`: same id, opcode, question and RD; RA set.
pub fn response_to(request: &Message, code: ResponseCode) -> Message {
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.op_code = request.metadata.op_code;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    response.metadata.response_code = code;
    response.add_queries(request.queries.iter().cloned());
    if let Some(edns) = &request.edns {
        response.set_edns(our_edns(edns));
    }
    response
}

/// Header-only error answer from the first 12 bytes, for packets too broken
/// to parse: FORMERR with the client's id and opcode.
pub fn format_error(packet: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 12];
    header[..2].copy_from_slice(&packet[..2]);
    // QR=1, keep opcode and RD; RA=1; RCODE=FORMERR(1).
    header[2] = 0x80 | (packet[2] & 0x79);
    header[3] = 0x80 | 0x01;
    header.to_vec()
}

fn our_edns(request: &Edns) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_EDNS);
    edns.set_dnssec_ok(request.flags().dnssec_ok);
    edns
}

/// Adds an Extended DNS Error (RFC 8914) when the client speaks EDNS.
pub fn add_extended_error(response: &mut Message, info_code: u16, text: &str) {
    if let Some(edns) = response.edns.as_mut() {
        let mut data = info_code.to_be_bytes().to_vec();
        data.extend_from_slice(text.as_bytes());
        edns.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION, data));
    }
}

/// The SOA put in the authority section of synthesized negative answers so
/// clients cache them (RFC 2308) and do not retry elsewhere.
fn synthetic_soa(owner: &Name, ttl: u32, serial: u32) -> Record {
    let mname = Name::from_ascii("edudns.invalid.").expect("static name");
    let rname = Name::from_ascii("hostmaster.edudns.invalid.").expect("static name");
    let soa = SOA::new(mname, rname, serial, 3600, 600, 86400, ttl);
    Record::from_rdata(owner.clone(), ttl, RData::SOA(soa))
}

/// How a blocked question is answered, before encoding.
pub struct BlockedAnswer<'a> {
    pub blocking: &'a BlockingConfig,
    /// Forces NXDOMAIN whatever the mode (the DoH canary, Private Relay).
    pub nxdomain: bool,
    /// Forces NODATA whatever the type (DDR discovery).
    pub nodata: bool,
    /// Zone owner for the SOA (the listed domain), or the query name.
    pub soa_owner: Option<Name>,
    pub serial: u32,
    /// Text of the Extended DNS Error, e.g. "edudns: category gambling".
    pub reason: String,
}

/// A → sinkhole/null address, AAAA likewise, everything else NODATA with an
/// SOA; NXDOMAIN mode (and the canary) answer NXDOMAIN with an SOA.
pub fn blocked(request: &Message, query: &Query, how: &BlockedAnswer<'_>) -> Message {
    let ttl = how.blocking.ttl;
    let nxdomain = how.nxdomain || how.blocking.mode == BlockMode::NxDomain;
    let code = if nxdomain {
        ResponseCode::NXDomain
    } else {
        ResponseCode::NoError
    };
    let mut response = response_to(request, code);
    let address = if nxdomain || how.nodata {
        None
    } else {
        match (query.query_type, how.blocking.mode) {
            (RecordType::A, BlockMode::Sinkhole) => {
                how.blocking.sinkhole_ipv4.map(|ip| RData::A(A(ip)))
            }
            (RecordType::AAAA, BlockMode::Sinkhole) => {
                how.blocking.sinkhole_ipv6.map(|ip| RData::AAAA(AAAA(ip)))
            }
            (RecordType::A, BlockMode::Null) => Some(RData::A(A(Ipv4Addr::UNSPECIFIED))),
            (RecordType::AAAA, BlockMode::Null) => Some(RData::AAAA(AAAA(Ipv6Addr::UNSPECIFIED))),
            _ => None,
        }
    };
    match address {
        Some(rdata) => {
            response.add_answer(Record::from_rdata(query.name.clone(), ttl, rdata));
        }
        None => {
            let owner = how.soa_owner.clone().unwrap_or_else(|| query.name.clone());
            response.add_authority(synthetic_soa(&owner, ttl, how.serial));
        }
    }
    add_extended_error(&mut response, EDE_BLOCKED, &how.reason);
    response
}

/// RFC 8482: answer ANY with one synthesized HINFO instead of everything.
pub fn any_minimal(request: &Message, query: &Query) -> Message {
    let mut response = response_to(request, ResponseCode::NoError);
    let hinfo = HINFO::new("RFC8482".to_string(), String::new());
    response.add_answer(Record::from_rdata(
        query.name.clone(),
        3789,
        RData::HINFO(hinfo),
    ));
    response
}

/// Encodes `response`; when it is larger than `limit` bytes, sends the header
/// and question only with TC set, so the client retries over TCP. When even
/// that does not fit (an error answer echoing many long questions), the
/// questions go too, then EDNS: the header alone always fits.
pub fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = response.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    let mut truncated = Message::new(
        response.metadata.id,
        MessageType::Response,
        response.metadata.op_code,
    );
    truncated.metadata = response.metadata;
    truncated.metadata.truncation = true;
    truncated.add_queries(response.queries.iter().cloned());
    if let Some(edns) = &response.edns {
        truncated.set_edns(edns.clone());
    }
    let bytes = truncated.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    truncated.queries.clear();
    let bytes = truncated.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    truncated.edns = None;
    truncated.to_vec().ok()
}

/// Largest answer for a UDP client: its EDNS size capped at 1232, or 512.
pub fn udp_limit(request: &Message) -> usize {
    match &request.edns {
        Some(edns) => usize::from(edns.max_payload().clamp(MAX_UDP_PLAIN, MAX_UDP_EDNS)),
        None => usize::from(MAX_UDP_PLAIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `request` fuzz target: a STATUS query with seven long
    /// questions got a 538-byte NOTIMP answer over UDP without EDNS, whose
    /// "truncated" form still carried every question.
    #[test]
    fn an_error_answer_echoing_many_long_questions_fits_the_udp_limit() {
        let mut request = Message::new(0x0c11, MessageType::Query, OpCode::Status);
        for i in 0..7 {
            let name = format!("{a}.{a}.{i}.example.", a = "a".repeat(60));
            request.add_query(Query::query(
                Name::from_ascii(&name).unwrap(),
                RecordType::A,
            ));
        }
        let response = response_to(&request, ResponseCode::NotImp);
        assert!(
            response.to_vec().unwrap().len() > 512,
            "the case is over the limit"
        );
        let bytes = encode(&response, usize::from(MAX_UDP_PLAIN)).unwrap();
        assert!(
            bytes.len() <= usize::from(MAX_UDP_PLAIN),
            "{} bytes",
            bytes.len()
        );
        let answer = Message::from_vec(&bytes).unwrap();
        assert_eq!(answer.metadata.id, 0x0c11);
        assert!(answer.metadata.truncation);
        assert_eq!(answer.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(answer.metadata.op_code, OpCode::Status);
    }

    #[test]
    fn a_big_answer_is_truncated_to_its_question() {
        let mut request = Message::new(7, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii("big.example.").unwrap();
        request.add_query(Query::query(name.clone(), RecordType::A));
        let mut response = response_to(&request, ResponseCode::NoError);
        for i in 0..100u8 {
            response.add_answer(Record::from_rdata(
                name.clone(),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
            ));
        }
        let bytes = encode(&response, usize::from(MAX_UDP_PLAIN)).unwrap();
        let answer = Message::from_vec(&bytes).unwrap();
        assert!(answer.metadata.truncation);
        assert_eq!(answer.queries.len(), 1, "the question stays when it fits");
        assert!(answer.answers.is_empty());
    }
}
