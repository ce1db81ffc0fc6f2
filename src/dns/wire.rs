//! DNS messages in wire format for the fast path: a plain query parsed in
//! place ([`parse`] → [`Question`], no `Message`, no allocation) and the
//! header and OPT record of an answer written straight into a buffer.
//!
//! Uses: `dns::answer` (size limits, EDE codes). Used by: `dns::fast`,
//! `dns::cache`.

use super::answer::{EDE_BLOCKED, EDE_OPTION, MAX_UDP_EDNS, MAX_UDP_PLAIN};

/// A query parsed in place.
pub(super) struct Question<'a> {
    pub(super) id: [u8; 2],
    /// RD bit as in the request.
    pub(super) rd: bool,
    /// The question section as sent (name, type, class).
    pub(super) question: &'a [u8],
    /// Lowercase wire-format name (length-prefixed labels, ending in 0).
    pub(super) wire_name: [u8; 256],
    pub(super) wire_len: usize,
    /// Lowercase dotted name without the trailing dot.
    pub(super) dotted: [u8; 256],
    pub(super) dotted_len: usize,
    pub(super) qtype: u16,
    /// `None` without EDNS, else the DO bit.
    pub(super) edns_do: Option<bool>,
    /// Largest answer the client takes over UDP.
    pub(super) limit: usize,
}

impl Question<'_> {
    pub(super) fn name(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' are ever written.
        std::str::from_utf8(&self.dotted[..self.dotted_len]).unwrap_or("")
    }
}

pub(super) fn parse(packet: &[u8]) -> Option<Question<'_>> {
    if packet.len() < 17 {
        return None;
    }
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    // QR=0, opcode 0, no AA/TC, CD=0, Z=0, RCODE=0; RD may be either.
    if flags & !0x0100 != 0 {
        return None;
    }
    let counts = &packet[4..12];
    if counts[..2] != [0, 1] || counts[2..6] != [0, 0, 0, 0] || counts[6] != 0 || counts[7] > 1 {
        return None;
    }
    let mut q = Question {
        id: [packet[0], packet[1]],
        rd: flags & 0x0100 != 0,
        question: &[],
        wire_name: [0; 256],
        wire_len: 0,
        dotted: [0; 256],
        dotted_len: 0,
        qtype: 0,
        edns_do: None,
        limit: usize::from(MAX_UDP_PLAIN),
    };
    let mut at = 12;
    loop {
        let len = usize::from(*packet.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 || q.wire_len + len + 2 > 255 {
            return None;
        }
        let label = packet.get(at + 1..at + 1 + len)?;
        q.wire_name[q.wire_len] = len as u8;
        if q.dotted_len > 0 {
            q.dotted[q.dotted_len] = b'.';
            q.dotted_len += 1;
        }
        for (i, &b) in label.iter().enumerate() {
            let b = b.to_ascii_lowercase();
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
                return None;
            }
            q.wire_name[q.wire_len + 1 + i] = b;
            q.dotted[q.dotted_len + i] = b;
        }
        q.wire_len += 1 + len;
        q.dotted_len += len;
        at += 1 + len;
    }
    if q.wire_len == 0 {
        return None;
    }
    q.wire_name[q.wire_len] = 0;
    q.wire_len += 1;
    let fixed = packet.get(at + 1..at + 5)?;
    q.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    // Class IN only; ANY (RFC 8482), AXFR/IXFR and meta types go the long way.
    if fixed[2..4] != [0, 1] || matches!(q.qtype, 0 | 251..=255) {
        return None;
    }
    q.question = &packet[12..at + 5];
    let rest = &packet[at + 5..];
    if counts[7] == 1 {
        // OPT: root owner, type 41, payload, ext-rcode 0, version 0, flags, rdlen, options.
        if rest.len() < 11 || rest[0] != 0 || rest[1..3] != [0, 41] {
            return None;
        }
        let payload = u16::from_be_bytes([rest[3], rest[4]]);
        if rest[5] != 0 || rest[6] != 0 {
            return None;
        }
        let rdlen = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
        if rest.len() != 11 + rdlen || !plain_options(&rest[11..]) {
            return None;
        }
        q.edns_do = Some(rest[7] & 0x80 != 0);
        q.limit = usize::from(payload.clamp(MAX_UDP_PLAIN, MAX_UDP_EDNS));
    } else if !rest.is_empty() {
        return None;
    }
    Some(q)
}

/// Whether the OPT record's options are well-formed (code, length, data,
/// exactly to the end) and none is one whose content the general path
/// parses and could reject (NSID, DAU/DHU/N3U, Client Subnet): any doubt
/// goes the long way. Found by the `request` fuzz target (an option running
/// past the record: FORMERR from the general path, an answer from this one).
pub(super) fn plain_options(mut options: &[u8]) -> bool {
    while !options.is_empty() {
        let Some(header) = options.get(..4) else {
            return false;
        };
        let code = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if options.len() < 4 + len || matches!(code, 3 | 5..=8) {
            return false;
        }
        options = &options[4 + len..];
    }
    true
}

/// Writes a response header and the question; returns the length so far.
pub(super) fn header(
    out: &mut [u8],
    q: &Question<'_>,
    rcode: u8,
    answers: u16,
    authorities: u16,
) -> usize {
    out[0..2].copy_from_slice(&q.id);
    // QR=1, opcode 0, RD as asked; RA=1.
    out[2] = 0x80 | u8::from(q.rd);
    out[3] = 0x80 | rcode;
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&authorities.to_be_bytes());
    out[10..12].copy_from_slice(&u16::from(q.edns_do.is_some()).to_be_bytes());
    out[12..12 + q.question.len()].copy_from_slice(q.question);
    12 + q.question.len()
}

/// The OPT record of our answers (payload 1232, DO echoed), with an
/// Extended DNS Error when `reason` is given.
pub(super) fn opt(
    out: &mut [u8],
    at: usize,
    dnssec_ok: bool,
    reason: Option<(&str, &str)>,
) -> usize {
    let option_len = reason.map_or(0, |(a, b)| 4 + 2 + a.len() + b.len());
    out[at] = 0;
    out[at + 1..at + 3].copy_from_slice(&41u16.to_be_bytes());
    out[at + 3..at + 5].copy_from_slice(&MAX_UDP_EDNS.to_be_bytes());
    out[at + 5] = 0;
    out[at + 6] = 0;
    out[at + 7] = if dnssec_ok { 0x80 } else { 0 };
    out[at + 8] = 0;
    out[at + 9..at + 11].copy_from_slice(&(option_len as u16).to_be_bytes());
    let mut end = at + 11;
    if let Some((first, second)) = reason {
        let len = first.len() + second.len();
        out[end..end + 2].copy_from_slice(&EDE_OPTION.to_be_bytes());
        out[end + 2..end + 4].copy_from_slice(&((2 + len) as u16).to_be_bytes());
        out[end + 4..end + 6].copy_from_slice(&EDE_BLOCKED.to_be_bytes());
        out[end + 6..end + 6 + first.len()].copy_from_slice(first.as_bytes());
        out[end + 6 + first.len()..end + 6 + len].copy_from_slice(second.as_bytes());
        end += 6 + len;
    }
    end
}

/// Labels of a dotted name (bytes, not a `str` searcher: per blocked query).
pub(super) fn label_count(name: &str) -> usize {
    name.bytes().filter(|&b| b == b'.').count() + 1
}

/// Offset (from the start of the message) of the question name's suffix
/// that is `suffix_labels` labels long, for a compression pointer.
pub(super) fn suffix_offset(q: &Question<'_>, suffix_labels: usize) -> Option<usize> {
    let total = label_count(q.name());
    let skip = total.checked_sub(suffix_labels)?;
    let mut at = 0;
    for _ in 0..skip {
        at += 1 + usize::from(q.question[at]);
    }
    Some(12 + at)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A query for `name` (type `qtype`), with an OPT record when `edns`.
    pub(in crate::dns) fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        for label in name.split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        if edns {
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        }
        p
    }

    #[test]
    fn plain_queries_parse_and_odd_ones_do_not() {
        let packet = query("WWW.Example.COM", 1, true);
        let q = parse(&packet).unwrap();
        assert_eq!(q.name(), "www.example.com");
        assert_eq!(q.edns_do, Some(true));
        assert_eq!(q.limit, 1232);
        assert!(q.rd);
        assert!(parse(&query("a b.example", 1, false)).is_none(), "odd byte");
        assert!(parse(&query("example.com", 255, false)).is_none(), "ANY");
        let mut two = query("example.com", 1, false);
        two[5] = 2;
        assert!(parse(&two).is_none(), "qdcount 2");
        let mut response = query("example.com", 1, false);
        response[2] |= 0x80;
        assert!(parse(&response).is_none(), "QR=1");
        let mut version1 = query("example.com", 1, true);
        let len = version1.len();
        version1[len - 5] = 1;
        assert!(parse(&version1).is_none(), "EDNS version 1 goes to BADVERS");
        let mut trailing = query("example.com", 1, false);
        trailing.push(0);
        assert!(parse(&trailing).is_none(), "trailing bytes");
        let mut pointer = query("example.com", 1, false);
        pointer[12] = 0xC0;
        assert!(parse(&pointer).is_none(), "compressed question");
    }

    #[test]
    fn edns_options_must_be_well_formed_and_harmless() {
        let with_options = |options: &[u8]| {
            let mut packet = query("example.com", 1, true);
            let len = packet.len();
            packet[len - 2..].copy_from_slice(&(options.len() as u16).to_be_bytes());
            packet.extend_from_slice(options);
            packet
        };
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(parse(&with_options(&cookie)).is_some(), "a client cookie");
        assert!(
            parse(&with_options(&[0, 12, 0, 0])).is_some(),
            "empty padding"
        );
        assert!(
            parse(&with_options(&[0x21])).is_none(),
            "one byte: no option header"
        );
        assert!(
            parse(&with_options(&[0, 1, 0, 0, 0x29, 4, 0xd0, 0])).is_none(),
            "runs past the record"
        );
        assert!(
            parse(&with_options(&[0, 8, 0, 0])).is_none(),
            "client subnet: the long way"
        );
        assert!(
            parse(&with_options(&[0, 3, 0, 0])).is_none(),
            "NSID: the long way"
        );
    }
}
