//! The matcher: a hash trie over reversed labels, in one flat table.
//!
//! `com → example → ads`: every node is a slot of one open-addressing table
//! keyed by (parent node, label), where a node's id is its slot index. A slot
//! is 12 bytes and holds no pointer and no string:
//!
//! ```text
//! parent: u32   slot index of the parent node (u32::MAX for a TLD)
//! label:  u32   offset of the label in the byte arena (each distinct label once)
//! payload: u32  [ hash tag | label length (6 bits) | mask index ]
//! ```
//!
//! The mask index points into a small table of the distinct
//! (block mask, allow mask) pairs (a few hundred for a million domains; index
//! 0 = no rule), so one walk answers every category at once. The tag (hash
//! bits not used to place the slot) and the length let a probe reject
//! another key without touching the arena, so the label bytes are compared
//! about once per label of the query, on the hit. Lookups walk from the TLD
//! down, one probe run per label, and allocate nothing.
//!
//! Provenance (which list and line gave a rule) is only read to explain a
//! verdict: one sorted array of packed 9-byte records
//! (low 16 bits of the node, category and action, list, line), cut into
//! buckets by the high bits of the node, searched by binary search.
//!
//! Limits: at most [`MAX_NODES`] nodes (about 60 million domains); the arena
//! (distinct labels) at most 4 GiB. Past them, [`TrieBuilder::insert`]
//! ignores further domains rather than fail.

mod builder;
mod hash;
mod persist;
#[cfg(test)]
mod tests;

pub use builder::TrieBuilder;
pub use persist::FORMAT_VERSION;
pub(crate) use persist::invalid;

use super::name::MAX_LABEL_LEN;
use super::{CategoryId, CategoryMask, RuleAction, RuleRef};
use hash::{hash, home, read4, read8};
use std::fmt;

/// Parent id of the TLD nodes.
const ROOT: u32 = u32::MAX;
/// `label` of a free slot.
const FREE: u32 = u32::MAX;
/// Bits of the label length in a payload (labels are 1..=63 bytes).
const LEN_BITS: u32 = 6;
/// Provenance buckets hold the nodes that share `node >> BUCKET_SHIFT`.
const BUCKET_SHIFT: u32 = 16;
/// Most nodes a trie can hold: the mask index (≤ node count) and the length
/// must leave room in a 32-bit payload.
pub const MAX_NODES: usize = (1 << (32 - LEN_BITS)) - 1;

/// One node (12 bytes).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Slot {
    parent: u32,
    label: u32,
    payload: u32,
}

impl Slot {
    const FREE: Slot = Slot {
        parent: 0,
        label: FREE,
        payload: 0,
    };
}

/// Provenance of one (node, category, action), packed to 9 bytes.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
struct Provenance {
    node_low: u16,
    /// `category << 1 | allow`.
    key: u8,
    list: u16,
    line: u32,
}

fn provenance_key(category: CategoryId, action: RuleAction) -> u8 {
    (category << 1) | u8::from(action == RuleAction::Allow)
}

/// The rule that decided a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrieMatch {
    pub action: RuleAction,
    /// For a block, the lowest category of (node's block mask & mask); for
    /// an allow, of the allow mask.
    pub category: CategoryId,
    /// Labels of the query name that the matched entry covers (its suffix):
    /// `ads.example.com` matched by `example.com` has depth 2.
    pub depth: u8,
    /// Slot of the deciding node, for [`DomainTrie::rule`].
    node: u32,
}

/// The immutable matcher, shared read-only by every worker (`Send + Sync`).
pub struct DomainTrie {
    slots: Vec<Slot>,
    /// Distinct labels, back to back (lengths live in the slots).
    arena: Vec<u8>,
    /// Distinct (block, allow) mask pairs; index 0 is (0, 0).
    masks: Vec<(CategoryMask, CategoryMask)>,
    /// Sorted by (node, key) within each bucket.
    provenance: Vec<Provenance>,
    /// `provenance[buckets[b]..buckets[b + 1]]` holds bucket `b`.
    buckets: Vec<u32>,
    /// Low payload bits holding the mask index.
    index_mask: u32,
    /// Shift of the length in the payload.
    len_shift: u32,
    /// Shift of the tag in the payload (32 = no tag bits left).
    tag_shift: u32,
    domains: usize,
}

impl DomainTrie {
    /// A trie with no entries.
    pub fn empty() -> Self {
        TrieBuilder::new().build()
    }

    /// The payload bits a key must match: its length and its tag.
    #[inline(always)]
    fn key_bits(&self, hash: u64, len: usize) -> u32 {
        let tag = (hash as u32).checked_shl(self.tag_shift).unwrap_or(0);
        tag | ((len as u32) << self.len_shift)
    }

    /// The child of `parent` labelled `label`: its slot index and payload.
    #[inline]
    fn child(&self, parent: u32, label: &[u8]) -> Option<(u32, u32)> {
        let at = self.find_slot(
            parent,
            hash(parent, label),
            label.len(),
            usize::MAX,
            |slot| {
                self.label_bytes(slot.label, label.len())
                    .is_some_and(|stored| same_bytes(stored, label))
            },
        )?;
        Some((at as u32, self.slots[at].payload))
    }

    /// The slot in the probe run of `hash` whose parent, label length and
    /// hash tag match and that `accept`s, among the first `limit` slots of
    /// the run; a free slot ends the run. The tag and the length let a
    /// probe pass other keys without touching the arena.
    #[inline(always)]
    fn find_slot(
        &self,
        parent: u32,
        hash: u64,
        len: usize,
        limit: usize,
        accept: impl Fn(&Slot) -> bool,
    ) -> Option<usize> {
        let want = self.key_bits(hash, len);
        let key_mask = !self.index_mask;
        let size = self.slots.len();
        let mut at = home(hash, size);
        for _ in 0..limit {
            let slot = &self.slots[at];
            if slot.label == FREE {
                return None;
            }
            if slot.payload & key_mask == want && slot.parent == parent && accept(slot) {
                return Some(at);
            }
            at += 1;
            if at == size {
                at = 0;
            }
        }
        None
    }

    #[inline(always)]
    fn label_bytes(&self, offset: u32, len: usize) -> Option<&[u8]> {
        let start = offset as usize;
        self.arena.get(start..start + len)
    }

    /// First of two cache hints for a name ending in `second.tld` (lowercase
    /// labels): starts fetching the slot its walk probes first below the
    /// TLD, for most names the first table read that misses the cache, and
    /// returns what [`DomainTrie::prefetch_label`] needs to hint the second
    /// miss. The UDP loop gives both hints for every query of a received
    /// batch before answering any, so the misses overlap instead of
    /// following one another. `None` when the TLD is not in the trie.
    #[inline]
    pub fn prefetch_slot(&self, tld: &[u8], second: &[u8]) -> Option<Probe> {
        if tld.len() > MAX_LABEL_LEN || second.len() > MAX_LABEL_LEN || self.slots.is_empty() {
            return None;
        }
        let (parent, _) = self.child(ROOT, tld)?;
        let hash = hash(parent, second);
        let at = home(hash, self.slots.len());
        prefetch_span(self.slots[at..].as_ptr().cast(), size_of::<Slot>());
        Some(Probe {
            parent,
            hash,
            len: second.len() as u8,
        })
    }

    /// Second hint, once the slot of [`DomainTrie::prefetch_slot`] has had
    /// time to arrive: finds the slot whose parent, length and hash tag
    /// match (without comparing the label) and starts fetching its label
    /// bytes, which the walk compares next.
    #[inline]
    pub fn prefetch_label(&self, probe: Probe) {
        let len = usize::from(probe.len);
        // Probe runs are short at 75 % load; a hint need not follow a long one.
        if let Some(at) = self.find_slot(probe.parent, probe.hash, len, 8, |_| true)
            && let Some(bytes) = self.label_bytes(self.slots[at].label, len)
        {
            prefetch_span(bytes.as_ptr(), len);
        }
    }

    /// The decision for `name` among the categories in `mask`.
    ///
    /// `name` is an ASCII DNS name in lowercase (the caller folds case); a
    /// trailing dot is allowed. One walk from the TLD down: among the nodes
    /// on the path that carry a rule for a category in `mask`, the deepest
    /// decides (most specific wins), and at that node an allow for any
    /// category in `mask` beats a block.
    pub fn decide(&self, name: &str, mask: CategoryMask) -> Option<TrieMatch> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return None;
        }
        self.decide_labels(name.as_bytes().rsplit(|&b| b == b'.'), mask)
    }

    /// [`DomainTrie::decide`] over labels given from the TLD end, as raw
    /// lowercase bytes (for a zero-copy path over a wire-format name).
    pub fn decide_labels<'a>(
        &self,
        labels_from_tld: impl Iterator<Item = &'a [u8]>,
        mask: CategoryMask,
    ) -> Option<TrieMatch> {
        if mask == 0 {
            return None;
        }
        let mut parent = ROOT;
        // (node, depth, mask index) of the deepest node with a rule in `mask`.
        let mut deepest = None;
        for (at, label) in labels_from_tld.enumerate() {
            // No node has an empty or over-long label (and a longer length
            // would not fit the payload's length bits).
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                break;
            }
            let Some((node, payload)) = self.child(parent, label) else {
                break;
            };
            let index = payload & self.index_mask;
            if index != 0 {
                let (block, allow) = self.masks[index as usize];
                if (block | allow) & mask != 0 {
                    deepest = Some((node, at + 1, index));
                }
            }
            parent = node;
        }
        let (node, depth, index) = deepest?;
        let (block, allow) = self.masks[index as usize];
        let (action, bits) = if allow & mask != 0 {
            (RuleAction::Allow, allow & mask)
        } else {
            (RuleAction::Block, block & mask)
        };
        Some(TrieMatch {
            action,
            category: bits.trailing_zeros() as CategoryId,
            depth: u8::try_from(depth).unwrap_or(u8::MAX),
            node,
        })
    }

    /// The list and line of the first rule inserted for the deciding node,
    /// category and action of `found` (a match made by this trie).
    pub fn rule(&self, found: &TrieMatch) -> Option<RuleRef> {
        let bucket = (found.node >> BUCKET_SHIFT) as usize;
        let start = *self.buckets.get(bucket)? as usize;
        let end = *self.buckets.get(bucket + 1)? as usize;
        let entries = self.provenance.get(start..end)?;
        let wanted = (
            found.node as u16,
            provenance_key(found.category, found.action),
        );
        let at = entries
            .binary_search_by(|p| {
                let (node_low, key) = (p.node_low, p.key);
                (node_low, key).cmp(&wanted)
            })
            .ok()?;
        let record = entries[at];
        Some(RuleRef {
            list: record.list,
            line: record.line,
        })
    }

    /// Distinct domains that carry any rule.
    pub fn domain_count(&self) -> usize {
        self.domains
    }

    /// Bytes of heap this trie owns (from the capacities of its buffers).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.arena.capacity()
            + self.masks.capacity() * size_of::<(CategoryMask, CategoryMask)>()
            + self.provenance.capacity() * size_of::<Provenance>()
            + self.buckets.capacity() * size_of::<u32>()
    }
}

/// What [`DomainTrie::prefetch_slot`] found for [`DomainTrie::prefetch_label`].
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    parent: u32,
    hash: u64,
    len: u8,
}

/// Cache hints for the `len` bytes from `start` (a slot or a label, which
/// may straddle two cache lines).
#[inline(always)]
fn prefetch_span(start: *const u8, len: usize) {
    prefetch(start);
    prefetch(start.wrapping_add(len.saturating_sub(1)));
}

/// Asks the kernel to back the (still untouched) allocation of `vec` with
/// transparent huge pages, where it spans at least one 2 MiB page. Every
/// lookup reads the slot table and the arena at random: with 4 KiB pages
/// that is a TLB miss (and, in a virtual machine, a two-level page walk)
/// on top of the cache miss. Call it right after `Vec::with_capacity`,
/// before the memory is written, so the first touch faults huge pages in;
/// a hint only (`MADV_HUGEPAGE` works where THP is `always` or `madvise`),
/// errors ignored.
fn advise_huge_pages<T>(vec: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = vec.as_ptr() as usize;
        let end = start + vec.capacity() * size_of::<T>();
        let first = start.next_multiple_of(HUGE);
        let last = end - end % HUGE;
        if last > first {
            // SAFETY: the range lies inside `vec`'s own allocation, and
            // MADV_HUGEPAGE changes how it is backed, never its contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = vec;
}

/// A `Vec` of `len` copies of `value` in memory advised for huge pages.
fn huge_vec<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut vec = Vec::with_capacity(len);
    advise_huge_pages(&vec);
    vec.resize(len, value);
    vec
}

/// A cache hint for the line holding `address`; never reads or faults.
#[inline(always)]
fn prefetch(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch only hints
    // the cache: it does not dereference the address and cannot fault.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Equality of two labels, compared as (overlapping) 4- and 8-byte words:
/// labels are short, and inlined loads beat a call to `memcmp` here.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len >= 8 {
        let mut at = 0;
        while at + 8 < len {
            if read8(a, at) != read8(b, at) {
                return false;
            }
            at += 8;
        }
        read8(a, len - 8) == read8(b, len - 8)
    } else if len >= 4 {
        read4(a, 0) == read4(b, 0) && read4(a, len - 4) == read4(b, len - 4)
    } else {
        a == b
    }
}

impl Default for DomainTrie {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for DomainTrie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainTrie")
            .field("domains", &self.domains)
            .field("slots", &self.slots.len())
            .field("arena_bytes", &self.arena.len())
            .field("mask_pairs", &self.masks.len())
            .field("rules", &self.provenance.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}
