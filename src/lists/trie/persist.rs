//! A [`DomainTrie`] written to and read back from bytes, so a restart does
//! not parse a million list lines again (`snapshot::cache`).
//!
//! The layout is the trie's own arrays, little-endian, each preceded by
//! its length: no pointer fixing, one pass each way. Reading checks every
//! length against the bytes left (a damaged file cannot make it allocate
//! wildly) and the invariants a lookup relies on (a free slot to end every
//! probe run, mask indexes in range, provenance buckets in order); the
//! caller's checksum covers the rest.

use super::{DomainTrie, FREE, Provenance, Slot};
use std::io::{self, Read, Write};

/// Bumped whenever the layout or the meaning of a field changes.
pub const FORMAT_VERSION: u32 = 1;

/// A damaged or foreign compiled-lists file (`snapshot::cache` says the same).
pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compiled lists: {what}"),
    )
}

/// Writes `count` then the items, each encoded into `size` bytes.
fn write_items<T>(
    w: &mut impl Write,
    items: &[T],
    size: usize,
    encode: impl Fn(&T, &mut Vec<u8>),
) -> io::Result<()> {
    w.write_all(&(items.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(64 * 1024);
    for chunk in items.chunks((64 * 1024) / size) {
        buffer.clear();
        for item in chunk {
            encode(item, &mut buffer);
        }
        w.write_all(&buffer)?;
    }
    Ok(())
}

/// Reads what [`write_items`] wrote; `budget` is the bytes left in the file.
fn read_items<T>(
    r: &mut impl Read,
    budget: &mut u64,
    size: usize,
    decode: impl Fn(&[u8]) -> T,
) -> io::Result<Vec<T>> {
    let count = read_u64(r, budget)?;
    let bytes = count
        .checked_mul(size as u64)
        .filter(|b| *b <= *budget)
        .ok_or_else(|| invalid("an array longer than the file"))?;
    *budget -= bytes;
    let count = count as usize;
    let mut items = Vec::with_capacity(count);
    super::advise_huge_pages(&items);
    let per_chunk = (64 * 1024) / size;
    let mut buffer = vec![0u8; per_chunk * size];
    let mut left = count;
    while left > 0 {
        let n = left.min(per_chunk);
        r.read_exact(&mut buffer[..n * size])?;
        items.extend(buffer[..n * size].chunks_exact(size).map(&decode));
        left -= n;
    }
    Ok(items)
}

fn read_u64(r: &mut impl Read, budget: &mut u64) -> io::Result<u64> {
    if *budget < 8 {
        return Err(invalid("truncated"));
    }
    *budget -= 8;
    let mut bytes = [0u8; 8];
    r.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl DomainTrie {
    /// Writes the trie (see the module notes for the layout).
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        for value in [self.index_mask, self.len_shift, self.tag_shift] {
            w.write_all(&value.to_le_bytes())?;
        }
        w.write_all(&(self.domains as u64).to_le_bytes())?;
        write_items(w, &self.slots, 12, |s, out| {
            out.extend_from_slice(&s.parent.to_le_bytes());
            out.extend_from_slice(&s.label.to_le_bytes());
            out.extend_from_slice(&s.payload.to_le_bytes());
        })?;
        write_items(w, &self.arena, 1, |b, out| out.push(*b))?;
        write_items(w, &self.masks, 8, |(block, allow), out| {
            out.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&allow.to_le_bytes());
        })?;
        write_items(w, &self.provenance, 9, |p, out| {
            let (node_low, key, list, line) = (p.node_low, p.key, p.list, p.line);
            out.extend_from_slice(&node_low.to_le_bytes());
            out.push(key);
            out.extend_from_slice(&list.to_le_bytes());
            out.extend_from_slice(&line.to_le_bytes());
        })?;
        write_items(w, &self.buckets, 4, |b, out| {
            out.extend_from_slice(&b.to_le_bytes())
        })
    }

    /// Reads a trie [`DomainTrie::write_to`] wrote, from at most `budget`
    /// bytes of `r`.
    pub fn read_from(r: &mut impl Read, mut budget: u64) -> io::Result<DomainTrie> {
        let budget = &mut budget;
        if *budget < 12 {
            return Err(invalid("truncated"));
        }
        *budget -= 12;
        let mut header = [0u8; 12];
        r.read_exact(&mut header)?;
        let (index_mask, len_shift, tag_shift) =
            (u32_at(&header, 0), u32_at(&header, 4), u32_at(&header, 8));
        let domains = read_u64(r, budget)? as usize;
        let slots = read_items(r, budget, 12, |b| Slot {
            parent: u32_at(b, 0),
            label: u32_at(b, 4),
            payload: u32_at(b, 8),
        })?;
        let arena = read_items(r, budget, 1, |b| b[0])?;
        let masks = read_items(r, budget, 8, |b| (u32_at(b, 0), u32_at(b, 4)))?;
        let provenance = read_items(r, budget, 9, |b| Provenance {
            node_low: u16::from_le_bytes([b[0], b[1]]),
            key: b[2],
            list: u16::from_le_bytes([b[3], b[4]]),
            line: u32_at(b, 5),
        })?;
        let buckets = read_items(r, budget, 4, |b| u32_at(b, 0))?;
        // What a lookup relies on: probe runs end at a free slot, mask
        // indexes point into the mask table, buckets slice the provenance.
        if masks.is_empty() || len_shift >= 32 || tag_shift > 32 {
            return Err(invalid("bad header"));
        }
        if !slots.iter().any(|s| s.label == FREE) {
            return Err(invalid("no free slot"));
        }
        if slots
            .iter()
            .any(|s| s.label != FREE && (s.payload & index_mask) as usize >= masks.len())
        {
            return Err(invalid("a mask index out of range"));
        }
        if buckets.windows(2).any(|w| w[0] > w[1])
            || buckets
                .last()
                .is_some_and(|&b| b as usize > provenance.len())
        {
            return Err(invalid("provenance buckets out of order"));
        }
        Ok(DomainTrie {
            slots,
            arena,
            masks,
            provenance,
            buckets,
            index_mask,
            len_shift,
            tag_shift,
            domains,
        })
    }
}
