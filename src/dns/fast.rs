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
//! Allowed names are answered from the wire cache (`dns::cache`). The wire
//! format itself (parsing, header, OPT) is in `dns::wire`.
//!
//! Uses: `dns::wire`, `dns::cache`, `dns::handler` (the handler, block
//! reasons and counting), `snapshot`, `stats`. Used by: `dns::server`.

use super::answer::MAX_UDP_EDNS;
use super::cache::replay_into;
use super::counters::bump;
use super::handler::Handler;
use super::wire::{Question, header, label_count, opt, parse, suffix_offset};
use crate::config::BlockMode;
use crate::counting::{CategorySlot, Outcome};
use crate::lists::trie::Probe;
use crate::policy::Verdict;
use crate::snapshot::Snapshot;
use std::net::SocketAddr;
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
            let Some(n) = replay_into(&handler.wire, &q, out) else {
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
    use crate::dns::wire::tests::query;

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
}
