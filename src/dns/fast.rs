//! The UDP fast path: the common query answered straight from wire bytes.
//!
//! A query that is plain — one question of class IN, no answer or
//! authority records, at most one OPT record of EDNS version 0, a name of
//! letters, digits, `-` and `_` — is parsed in place (no `Message`, no
//! allocation), judged by the same [`Snapshot::evaluate`] as every query,
//! and when the verdict is a block or an allowed name whose answer is in
//! the wire cache, answered by writing bytes: the question copied from the
//! request (its case kept), a compression pointer to it, the record data.
//! Everything else — and any doubt — falls back to the general pipeline in
//! `handler.rs`, which the integration tests also run alone
//! (`server.fast_path = false`) so both paths keep one behaviour.
//!
//! The wire cache holds encoded answers of allowed names as the general
//! path produced them for a fresh upstream answer without CNAMEs (a CNAME
//! target may be blocked for one band and not another); on a hit the id,
//! RD flag and question are patched in and every TTL is counted down.

use super::answer::{EDE_BLOCKED, EDE_OPTION, MAX_UDP_EDNS, MAX_UDP_PLAIN};
use super::counters::bump;
use super::handler::Handler;
use crate::config::BlockMode;
use crate::counting::{CategorySlot, Outcome};
use crate::lists::trie::Probe;
use crate::policy::Verdict;
use crate::snapshot::Snapshot;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest answer the fast path writes.
pub const MAX_ANSWER: usize = MAX_UDP_EDNS as usize;

/// What [`answer`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fast {
    /// `out[..n]` is the answer.
    Reply(usize),
    /// Send nothing (rate limited).
    Drop,
    /// Not for the fast path: use [`Handler::decide`].
    Fallback,
}

/// A query parsed in place.
struct Question<'a> {
    id: [u8; 2],
    /// RD bit as in the request.
    rd: bool,
    /// The question section as sent (name, type, class).
    question: &'a [u8],
    /// Lowercase wire-format name (length-prefixed labels, ending in 0).
    wire_name: [u8; 256],
    wire_len: usize,
    /// Lowercase dotted name without the trailing dot.
    dotted: [u8; 256],
    dotted_len: usize,
    qtype: u16,
    /// `None` without EDNS, else the DO bit.
    edns_do: Option<bool>,
    /// Largest answer the client takes over UDP.
    limit: usize,
}

impl Question<'_> {
    fn name(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' are ever written.
        std::str::from_utf8(&self.dotted[..self.dotted_len]).unwrap_or("")
    }
}

fn parse(packet: &[u8]) -> Option<Question<'_>> {
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
fn plain_options(mut options: &[u8]) -> bool {
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
fn header(out: &mut [u8], q: &Question<'_>, rcode: u8, answers: u16, authorities: u16) -> usize {
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
fn opt(out: &mut [u8], at: usize, dnssec_ok: bool, reason: Option<(&str, &str)>) -> usize {
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
fn label_count(name: &str) -> usize {
    name.bytes().filter(|&b| b == b'.').count() + 1
}

/// Offset (from the start of the message) of the question name's suffix
/// that is `suffix_labels` labels long, for a compression pointer.
fn suffix_offset(q: &Question<'_>, suffix_labels: usize) -> Option<usize> {
    let total = label_count(q.name());
    let skip = total.checked_sub(suffix_labels)?;
    let mut at = 0;
    for _ in 0..skip {
        at += 1 + usize::from(q.question[at]);
    }
    Some(12 + at)
}

/// [`super::handler::BlockReason`] with its text in two pieces, so the
/// common "edudns: category ID" needs no allocation.
struct Why<'a> {
    soa_domain: Option<&'a str>,
    prefix: &'static str,
    text: std::borrow::Cow<'a, str>,
    nxdomain: bool,
    nodata: bool,
}

impl<'a> super::handler::BlockReason<'a> {
    fn with_category(self, id: &'a str) -> Why<'a> {
        Why {
            soa_domain: self.soa_domain,
            prefix: "edudns: category ",
            text: std::borrow::Cow::Borrowed(id),
            nxdomain: self.nxdomain,
            nodata: self.nodata,
        }
    }

    fn whole(self) -> Why<'a> {
        Why {
            soa_domain: self.soa_domain,
            prefix: "",
            text: std::borrow::Cow::Owned(self.reason),
            nxdomain: self.nxdomain,
            nodata: self.nodata,
        }
    }
}

/// The blocked answer, as `answer::blocked` builds it, written directly.
fn blocked(
    out: &mut [u8],
    snapshot: &Snapshot,
    q: &Question<'_>,
    category: Option<usize>,
    rule: &crate::policy::Rule,
) -> Option<usize> {
    // The common case (a category list) without building the reason text.
    let how = match (rule, category) {
        (crate::policy::Rule::List { domain, .. }, Some(c)) => super::handler::BlockReason {
            soa_domain: Some(domain.as_str()),
            reason: String::new(),
            nxdomain: false,
            nodata: false,
        }
        .with_category(&snapshot.config.categories[c].id),
        _ => super::handler::block_reason(snapshot, category, rule).whole(),
    };
    let blocking = &snapshot.config.blocking;
    let ttl = blocking.ttl.to_be_bytes();
    let nxdomain = how.nxdomain || blocking.mode == BlockMode::NxDomain;
    let mut address = [0u8; 16];
    let rdata_len = if nxdomain || how.nodata {
        None
    } else {
        match (q.qtype, blocking.mode) {
            (1, BlockMode::Sinkhole) => blocking.sinkhole_ipv4.map(|ip| {
                address[..4].copy_from_slice(&ip.octets());
                4
            }),
            (28, BlockMode::Sinkhole) => blocking.sinkhole_ipv6.map(|ip| {
                address.copy_from_slice(&ip.octets());
                16
            }),
            (1, BlockMode::Null) => Some(4),
            (28, BlockMode::Null) => Some(16),
            _ => None,
        }
    };
    let rdata = rdata_len.map(|n| &address[..n]);
    let rcode = if nxdomain { 3 } else { 0 };
    let (answers, authorities) = if rdata.is_some() { (1, 0) } else { (0, 1) };
    let mut at = header(out, q, rcode, answers, authorities);
    match rdata {
        Some(rdata) => {
            out[at..at + 2].copy_from_slice(&0xC00Cu16.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&q.qtype.to_be_bytes());
            out[at + 4..at + 6].copy_from_slice(&1u16.to_be_bytes());
            out[at + 6..at + 10].copy_from_slice(&ttl);
            out[at + 10..at + 12].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
            out[at + 12..at + 12 + rdata.len()].copy_from_slice(rdata);
            at += 12 + rdata.len();
        }
        None => {
            // SOA owned by the listed domain (a suffix of the question) or the name itself.
            let labels = how.soa_domain.map_or(usize::MAX, label_count);
            let owner = if labels == usize::MAX {
                12
            } else {
                suffix_offset(q, labels)?
            };
            out[at..at + 2].copy_from_slice(&(0xC000u16 | owner as u16).to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&6u16.to_be_bytes());
            out[at + 4..at + 6].copy_from_slice(&1u16.to_be_bytes());
            out[at + 6..at + 10].copy_from_slice(&ttl);
            let rdata_at = at + 12;
            let mut r = rdata_at;
            // MNAME edudns.invalid.
            for label in ["edudns", "invalid"] {
                out[r] = label.len() as u8;
                out[r + 1..r + 1 + label.len()].copy_from_slice(label.as_bytes());
                r += 1 + label.len();
            }
            out[r] = 0;
            r += 1;
            // RNAME hostmaster.edudns.invalid. (pointer to the MNAME).
            out[r] = 10;
            out[r + 1..r + 11].copy_from_slice(b"hostmaster");
            out[r + 11..r + 13].copy_from_slice(&(0xC000u16 | rdata_at as u16).to_be_bytes());
            r += 13;
            let serial = snapshot.generation as u32;
            for value in [serial, 3600, 600, 86400, blocking.ttl] {
                out[r..r + 4].copy_from_slice(&value.to_be_bytes());
                r += 4;
            }
            out[at + 10..at + 12].copy_from_slice(&((r - rdata_at) as u16).to_be_bytes());
            at = r;
        }
    }
    if let Some(dnssec_ok) = q.edns_do {
        at = opt(out, at, dnssec_ok, Some((how.prefix, &how.text)));
    }
    Some(at)
}

/// A cached encoded answer.
pub struct WireEntry {
    bytes: Box<[u8]>,
    stored: Instant,
    /// Smallest TTL in it: the entry's life.
    min_ttl: u32,
    /// Offsets of every TTL field.
    ttl_offsets: Box<[u16]>,
    /// Where the question ends (answers start) in `bytes`.
    question_end: u16,
}

/// Key: lowercase wire name, then qtype, then 0 (no EDNS) / 1 / 2 (DO).
pub type WireCache = quick_cache::sync::Cache<Box<[u8]>, Arc<WireEntry>>;

fn key_of(wire_name: &[u8], qtype: u16, edns_do: Option<bool>, buffer: &mut [u8; 260]) -> usize {
    let n = wire_name.len();
    buffer[..n].copy_from_slice(wire_name);
    buffer[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
    buffer[n + 2] = match edns_do {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    n + 3
}

/// Walks an encoded answer and finds its TTL fields. `None` when it is not
/// something the fast path should replay (truncated, odd, or holding a CNAME).
fn ttl_fields(bytes: &[u8]) -> Option<(Vec<u16>, u32, usize)> {
    fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
        loop {
            let len = *bytes.get(at)?;
            match len {
                0 => return Some(at + 1),
                l if l & 0xC0 == 0xC0 => return Some(at + 2),
                l if l < 64 => at += 1 + usize::from(l),
                _ => return None,
            }
        }
    }
    if bytes.len() < 12 || bytes[2] & 0x02 != 0 {
        return None;
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    if count(4) != 1 {
        return None;
    }
    let mut at = skip_name(bytes, 12)? + 4;
    let question_end = at;
    let mut offsets = Vec::new();
    let mut min_ttl = u32::MAX;
    for _ in 0..count(6) + count(8) + count(10) {
        at = skip_name(bytes, at)?;
        let rtype = u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]);
        let rdlen = usize::from(u16::from_be_bytes([
            *bytes.get(at + 8)?,
            *bytes.get(at + 9)?,
        ]));
        if rtype == 5 {
            return None;
        }
        if rtype != 41 {
            let ttl = u32::from_be_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?);
            min_ttl = min_ttl.min(ttl);
            offsets.push(u16::try_from(at + 4).ok()?);
        }
        at += 10 + rdlen;
    }
    if at != bytes.len() || offsets.is_empty() || min_ttl == 0 {
        return None;
    }
    Some((offsets, min_ttl, question_end))
}

/// Remembers an answer the general path sent for a plain allowed query.
pub fn remember(cache: &WireCache, request: &[u8], reply: &[u8]) {
    let Some(q) = parse(request) else { return };
    let Some((offsets, min_ttl, question_end)) = ttl_fields(reply) else {
        return;
    };
    if question_end != 12 + q.question.len() {
        return;
    }
    let mut key = [0u8; 260];
    let n = key_of(&q.wire_name[..q.wire_len], q.qtype, q.edns_do, &mut key);
    cache.insert(
        key[..n].into(),
        Arc::new(WireEntry {
            bytes: reply.into(),
            stored: Instant::now(),
            min_ttl,
            ttl_offsets: offsets.into_iter().collect(),
            question_end: question_end as u16,
        }),
    );
}

fn replay(out: &mut [u8], q: &Question<'_>, entry: &WireEntry) -> Option<usize> {
    let age = entry.stored.elapsed().as_secs();
    if age >= u64::from(entry.min_ttl) || entry.bytes.len() > q.limit {
        return None;
    }
    let n = entry.bytes.len();
    out[..n].copy_from_slice(&entry.bytes);
    out[0..2].copy_from_slice(&q.id);
    out[2] = (out[2] & !0x01) | u8::from(q.rd);
    // The question as asked (0x20 case randomisation is answered in kind).
    let question_end = usize::from(entry.question_end);
    if question_end != 12 + q.question.len() {
        return None;
    }
    out[12..question_end].copy_from_slice(q.question);
    if age > 0 {
        for &offset in entry.ttl_offsets.iter() {
            let at = usize::from(offset);
            let ttl = u32::from_be_bytes(out[at..at + 4].try_into().ok()?);
            out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age as u32).to_be_bytes());
        }
    }
    Some(n)
}

/// Starts fetching the blocklist table slot that answering `packet` will
/// read first ([`crate::lists::trie::DomainTrie::prefetch_slot`]), from
/// its last two labels. Cheap and silent: anything unusual is left alone.
pub fn prefetch(snapshot: &Snapshot, packet: &[u8]) -> Option<Probe> {
    // (start, len) of the last two labels seen, most recent last.
    let mut last = [(0usize, 0usize); 2];
    let mut at = 12;
    loop {
        let &len = packet.get(at)?;
        let len = usize::from(len);
        if len == 0 {
            break;
        }
        if len > 63 || at + 1 + len > packet.len() {
            return None;
        }
        last = [last[1], (at + 1, len)];
        at += 1 + len;
    }
    let [(second_at, second_len), (tld_at, tld_len)] = last;
    if second_len == 0 {
        return None;
    }
    // A label of the packet, lowercased into a buffer of its own.
    // (An inlined loop: `copy_from_slice` of a run-time length is a call.)
    let lower = |at: usize, len: usize| {
        let mut label = [0u8; 63];
        for (out, &b) in label.iter_mut().zip(&packet[at..at + len]) {
            *out = b.to_ascii_lowercase();
        }
        label
    };
    let (tld, second) = (lower(tld_at, tld_len), lower(second_at, second_len));
    snapshot
        .lists
        .prefetch_slot(&tld[..tld_len], &second[..second_len])
}

/// Fast-path answers given since the last [`Answered::observe`], by kind:
/// their time goes into the latency histograms once their batch is sent.
#[derive(Debug, Default)]
pub struct Answered {
    local: u32,
    cached: u32,
}

impl Answered {
    /// Records `spent` for every answer counted, and starts over.
    pub fn observe(&mut self, handler: &Handler, spent: Duration) {
        let seconds = spent.as_secs_f64();
        for _ in 0..self.local {
            handler.local_duration.observe(seconds);
        }
        for _ in 0..self.cached {
            handler.forwarded_duration.observe(seconds);
        }
        *self = Answered::default();
    }
}

/// Answers `packet` from wire bytes when it can; see the module docs.
pub fn answer(handler: &Handler, packet: &[u8], src: SocketAddr, out: &mut [u8]) -> Fast {
    let received = Instant::now();
    let mut answered = Answered::default();
    let fast = answer_at(
        handler,
        packet,
        src,
        out,
        (received, handler.clock.now()),
        &mut answered,
    );
    answered.observe(handler, received.elapsed());
    fast
}

/// [`answer`] for a packet received at `received` (monotonic, and wall
/// time for schedules), read once per batch by the UDP loop: clock reads
/// were a visible share of a blocked answer's CPU. Counts the answer into
/// `answered` instead of timing it.
pub fn answer_at(
    handler: &Handler,
    packet: &[u8],
    src: SocketAddr,
    out: &mut [u8],
    (received, now): (Instant, jiff::Timestamp),
    answered: &mut Answered,
) -> Fast {
    let Some(q) = parse(packet) else {
        return Fast::Fallback;
    };
    let snapshot = handler.snapshot.load();
    let Some(client) = snapshot.classify(src.ip()) else {
        return Fast::Fallback;
    };
    let qps = snapshot.config.bands[client.band].max_qps_per_client;
    if qps > 0 && !handler.limiter.allow(src.ip(), qps, received) {
        bump(&handler.counters.rate_limited);
        return Fast::Drop;
    }
    match snapshot.evaluate_for_answer(client, q.name(), now) {
        Verdict::Block { category, rule, .. } => {
            let Some(n) = blocked(out, &snapshot, &q, category, &rule) else {
                return Fast::Fallback;
            };
            if n > q.limit {
                return Fast::Fallback;
            }
            bump(&handler.counters.blocked);
            handler.count_block(&snapshot, client, category, &rule, src);
            bump(&handler.counters.answered);
            bump(&handler.counters.fast_path);
            answered.local += 1;
            Fast::Reply(n)
        }
        Verdict::Allow { .. } => {
            let mut key = [0u8; 260];
            let k = key_of(&q.wire_name[..q.wire_len], q.qtype, q.edns_do, &mut key);
            let Some(entry) = handler.wire.get(&key[..k]) else {
                return Fast::Fallback;
            };
            let Some(n) = replay(out, &q, &entry) else {
                return Fast::Fallback;
            };
            bump(&handler.counters.allowed);
            snapshot
                .counters
                .count(client, CategorySlot::None, Outcome::Allowed);
            snapshot.counters.cache_hit(client);
            bump(&handler.counters.answered);
            bump(&handler.counters.fast_path);
            answered.cached += 1;
            Fast::Reply(n)
        }
        Verdict::Rewrite { .. } => Fast::Fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
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
    fn prefetch_reads_the_last_two_labels_in_any_case_and_skips_odd_packets() {
        let config = crate::config::load_embedded().unwrap();
        let snapshot = crate::snapshot::build(config, 1).unwrap();
        let probe = |packet: &[u8]| prefetch(&snapshot, packet);
        let listed = probe(&query("www.PornHub.COM", 1, true)).expect("a hint for a .com name");
        let same = snapshot.lists.prefetch_slot(b"com", b"pornhub").unwrap();
        assert_eq!(format!("{listed:?}"), format!("{same:?}"));
        assert!(probe(&query("com", 1, false)).is_none(), "one label");
        assert!(
            probe(&query("example.invalidtld", 1, false)).is_none(),
            "TLD not listed"
        );
        let whole = query("www.pornhub.com", 1, false);
        assert!(probe(&whole[..20]).is_none(), "cut inside a label");
        assert!(probe(&whole[..11]).is_none(), "header only");
        let mut long = whole.clone();
        long[12] = 64;
        assert!(probe(&long).is_none(), "label length over 63");
        snapshot.lists.prefetch_label(listed);
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

    #[test]
    fn ttl_fields_are_found_and_cnames_refused() {
        // Header, question example.com A, one answer A 1.2.3.4 TTL 300 via pointer.
        let mut reply = query("example.com", 1, false);
        reply[2] = 0x81;
        reply[3] = 0x80;
        reply[7] = 1;
        let answer_at = reply.len();
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 1, 2, 3, 4]);
        let (offsets, min_ttl, question_end) = ttl_fields(&reply).unwrap();
        assert_eq!(offsets, vec![(answer_at + 6) as u16]);
        assert_eq!(min_ttl, 300);
        assert_eq!(question_end, answer_at);
        let mut cname = reply.clone();
        cname[answer_at + 3] = 5;
        assert!(ttl_fields(&cname).is_none());
        let mut truncated = reply.clone();
        truncated[2] |= 0x02;
        assert!(ttl_fields(&truncated).is_none());
    }
}
