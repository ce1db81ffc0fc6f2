//! The wire cache: encoded answers of allowed names as the general path
//! sent them for a fresh upstream answer without CNAMEs (a CNAME target may
//! be blocked for one band and not another), replayed by the fast path with
//! the id, RD flag and question patched in and every TTL counted down.
//!
//! Uses: `dns::wire` (the parsed question). Used by: `dns::handler`
//! (remembers answers, owns the cache), `dns::fast` (replays them).

use super::wire::{Question, parse};
use std::sync::Arc;
use std::time::Instant;

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

/// Writes the cached answer to `q` into `out` when one is fresh; its length.
pub(super) fn replay_into(cache: &WireCache, q: &Question<'_>, out: &mut [u8]) -> Option<usize> {
    let mut key = [0u8; 260];
    let k = key_of(&q.wire_name[..q.wire_len], q.qtype, q.edns_do, &mut key);
    let entry = cache.get(&key[..k])?;
    replay(out, q, &entry)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::tests::query;

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
