//! The matcher: a hash trie over reversed labels in one flat table.
//!
//! `com → example → ads`: each node is a slot of one open-addressing table
//! keyed by (parent node, label). Labels are interned once in a byte arena;
//! a slot holds only the parent's index, the label's offset and an index
//! into a small table of distinct (block mask, allow mask) pairs — one bit
//! per category. A lookup walks from the TLD down, one probe per label, and
//! the deepest node carrying a rule for a category of interest decides.
//! Nothing is allocated on lookup.
//!
//! Provenance (which list and line listed a node) is a sorted side table,
//! read only when a verdict is explained.

use super::{CategoryId, CategoryMask, RuleAction, RuleRef};
use std::collections::HashMap;

const ROOT: u32 = u32::MAX;
const EMPTY: u32 = u32::MAX;

/// One node of the final table (12 bytes).
#[derive(Clone, Copy)]
struct Slot {
    parent: u32,
    /// Offset of the label in the arena (`[len][bytes]`); `EMPTY` = free slot.
    label: u32,
    /// Index into `DomainTrie::masks`; 0 = no rule at this node.
    masks: u32,
}

/// Provenance of one (node, category, action), packed to 11 bytes.
#[derive(Clone, Copy)]
#[repr(C, packed)]
struct Provenance {
    node: u32,
    /// category << 1 | allow
    key: u8,
    list: u16,
    line: u32,
}

/// The result of a walk: which rule decided, at which depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrieMatch {
    pub action: RuleAction,
    pub category: CategoryId,
    /// Labels of the query name that the matched entry covers (its suffix).
    pub depth: u8,
    node: u32,
}

/// The immutable matcher, shared read-only by every worker.
pub struct DomainTrie {
    slots: Vec<Slot>,
    arena: Vec<u8>,
    masks: Vec<(CategoryMask, CategoryMask)>,
    provenance: Vec<Provenance>,
    domains: usize,
}

/// Fast multiplicative hash of (parent, label) (FxHash-style, 8 bytes a step).
#[inline]
fn hash(parent: u32, label: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (u64::from(parent) ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(K);
    let mut chunks = label.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail) ^ (label.len() as u64) << 59).wrapping_mul(K);
    h ^ (h >> 29)
}

/// Maps a hash onto `0..len` without a power-of-two table (Lemire's
/// multiply-shift), so the table can be sized to a 75 % load exactly.
#[inline]
fn home(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

impl DomainTrie {
    /// A trie with no entries.
    pub fn empty() -> Self {
        TrieBuilder::new().build()
    }

    #[inline]
    fn label(&self, offset: u32) -> &[u8] {
        let start = offset as usize;
        let len = usize::from(self.arena[start]);
        &self.arena[start + 1..start + 1 + len]
    }

    #[inline]
    fn child(&self, parent: u32, label: &[u8]) -> Option<u32> {
        let mut index = home(hash(parent, label), self.slots.len());
        loop {
            let slot = &self.slots[index];
            if slot.label == EMPTY {
                return None;
            }
            if slot.parent == parent && self.label(slot.label) == label {
                return Some(index as u32);
            }
            index += 1;
            if index == self.slots.len() {
                index = 0;
            }
        }
    }

    /// The decision for `name` (lowercase; trailing dot allowed) among the
    /// categories in `mask`: the deepest node on the path with a rule for
    /// one of them decides, and at that node an allow beats a block.
    pub fn decide(&self, name: &str, mask: CategoryMask) -> Option<TrieMatch> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return None;
        }
        self.decide_labels(name.as_bytes().rsplit(|&b| b == b'.'), mask)
    }

    /// Like [`DomainTrie::decide`], over labels given from the TLD end.
    pub fn decide_labels<'a>(
        &self,
        labels_from_tld: impl Iterator<Item = &'a [u8]>,
        mask: CategoryMask,
    ) -> Option<TrieMatch> {
        let mut parent = ROOT;
        let mut found = None;
        for (depth, label) in labels_from_tld.enumerate() {
            let Some(node) = self.child(parent, label) else {
                break;
            };
            let (block, allow) = self.masks[self.slots[node as usize].masks as usize];
            let depth = u8::try_from(depth + 1).unwrap_or(u8::MAX);
            if allow & mask != 0 {
                found = Some(TrieMatch {
                    action: RuleAction::Allow,
                    category: (allow & mask).trailing_zeros() as CategoryId,
                    depth,
                    node,
                });
            } else if block & mask != 0 {
                found = Some(TrieMatch {
                    action: RuleAction::Block,
                    category: (block & mask).trailing_zeros() as CategoryId,
                    depth,
                    node,
                });
            }
            parent = node;
        }
        found
    }

    /// Which list and line gave the rule that decided `found`.
    pub fn rule(&self, found: &TrieMatch) -> Option<RuleRef> {
        let key = found.category << 1 | u8::from(found.action == RuleAction::Allow);
        let at = self
            .provenance
            .binary_search_by(|p| {
                let (node, k) = (p.node, p.key);
                (node, k).cmp(&(found.node, key))
            })
            .ok()?;
        let p = self.provenance[at];
        Some(RuleRef {
            list: p.list,
            line: p.line,
        })
    }

    /// Distinct domains that carry a rule.
    pub fn domain_count(&self) -> usize {
        self.domains
    }

    /// Bytes of heap this trie owns.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.arena.capacity()
            + self.masks.capacity() * size_of::<(CategoryMask, CategoryMask)>()
            + self.provenance.capacity() * size_of::<Provenance>()
    }
}

/// A node while building (ids are creation order; parents come first).
struct BuildNode {
    parent: u32,
    label: u32,
    block: CategoryMask,
    allow: CategoryMask,
}

/// Collects entries, then compiles them into a [`DomainTrie`].
#[derive(Default)]
pub struct TrieBuilder {
    nodes: Vec<BuildNode>,
    arena: Vec<u8>,
    /// (parent, label hash) → node; label bytes are compared on a hit.
    children: HashMap<(u32, u64), u32>,
    /// The astronomically rare case of two labels with one hash under one parent.
    collisions: HashMap<(u32, Vec<u8>), u32>,
    /// label hash → arena offset, to store each distinct label once.
    labels: HashMap<u64, u32>,
    provenance: Vec<Provenance>,
}

impl TrieBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pre-sizes for about `domains` entries.
    pub fn with_capacity(domains: usize) -> Self {
        TrieBuilder {
            nodes: Vec::with_capacity(domains + domains / 4),
            arena: Vec::with_capacity(domains * 8),
            children: HashMap::with_capacity(domains + domains / 4),
            collisions: HashMap::new(),
            labels: HashMap::with_capacity(domains),
            provenance: Vec::with_capacity(domains),
        }
    }

    fn arena_label(&self, offset: u32) -> &[u8] {
        let start = offset as usize;
        &self.arena[start + 1..start + 1 + usize::from(self.arena[start])]
    }

    fn intern(&mut self, label: &[u8], label_hash: u64) -> u32 {
        if let Some(&offset) = self.labels.get(&label_hash)
            && self.arena_label(offset) == label
        {
            return offset;
        }
        let offset = self.arena.len() as u32;
        self.arena.push(label.len() as u8);
        self.arena.extend_from_slice(label);
        self.labels.entry(label_hash).or_insert(offset);
        offset
    }

    fn child(&mut self, parent: u32, label: &[u8]) -> u32 {
        let key = (parent, hash(parent, label));
        if let Some(&node) = self.children.get(&key) {
            if self.arena_label(self.nodes[node as usize].label) == label {
                return node;
            }
            if let Some(&node) = self.collisions.get(&(parent, label.to_vec())) {
                return node;
            }
            let node = self.push(parent, label);
            self.collisions.insert((parent, label.to_vec()), node);
            return node;
        }
        let node = self.push(parent, label);
        self.children.insert(key, node);
        node
    }

    fn push(&mut self, parent: u32, label: &[u8]) -> u32 {
        let offset = self.intern(label, hash(0, label));
        self.nodes.push(BuildNode {
            parent,
            label: offset,
            block: 0,
            allow: 0,
        });
        (self.nodes.len() - 1) as u32
    }

    /// Adds a rule for a normalised domain (lowercase, no trailing dot).
    /// The first `RuleRef` for each (domain, category, action) is kept.
    pub fn insert(
        &mut self,
        domain: &str,
        category: CategoryId,
        action: RuleAction,
        rule: RuleRef,
    ) {
        debug_assert!(usize::from(category) < super::MAX_CATEGORIES);
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() || domain.split('.').any(|l| l.is_empty() || l.len() > 63) {
            return;
        }
        let mut node = ROOT;
        for label in domain.as_bytes().rsplit(|&b| b == b'.') {
            node = self.child(node, label);
        }
        let bit = 1 << category;
        let entry = &mut self.nodes[node as usize];
        let masks = match action {
            RuleAction::Block => &mut entry.block,
            RuleAction::Allow => &mut entry.allow,
        };
        if *masks & bit == 0 {
            *masks |= bit;
            self.provenance.push(Provenance {
                node,
                key: category << 1 | u8::from(action == RuleAction::Allow),
                list: rule.list,
                line: rule.line,
            });
        }
    }

    /// Compiles the flat table.
    pub fn build(self) -> DomainTrie {
        // At most 75 % full: short probe chains, 16 bytes per node.
        let capacity = (self.nodes.len() * 4 / 3).max(16);
        let mut slots = vec![
            Slot {
                parent: 0,
                label: EMPTY,
                masks: 0
            };
            capacity
        ];
        let mut mask_table: Vec<(CategoryMask, CategoryMask)> = vec![(0, 0)];
        let mut mask_index: HashMap<(CategoryMask, CategoryMask), u32> =
            HashMap::from([((0, 0), 0)]);
        let mut slot_of = Vec::with_capacity(self.nodes.len());
        let mut domains = 0;
        for node in &self.nodes {
            let parent = if node.parent == ROOT {
                ROOT
            } else {
                slot_of[node.parent as usize]
            };
            let label = self.arena_label(node.label);
            let mut index = home(hash(parent, label), capacity);
            while slots[index].label != EMPTY {
                index = if index + 1 == capacity { 0 } else { index + 1 };
            }
            let masks = *mask_index
                .entry((node.block, node.allow))
                .or_insert_with(|| {
                    mask_table.push((node.block, node.allow));
                    (mask_table.len() - 1) as u32
                });
            if masks != 0 {
                domains += 1;
            }
            slots[index] = Slot {
                parent,
                label: node.label,
                masks,
            };
            slot_of.push(index as u32);
        }
        let mut provenance: Vec<Provenance> = self
            .provenance
            .into_iter()
            .map(|p| Provenance {
                node: slot_of[p.node as usize],
                ..p
            })
            .collect();
        provenance.sort_unstable_by_key(|p| {
            let (node, key) = (p.node, p.key);
            (node, key)
        });
        provenance.shrink_to_fit();
        let mut arena = self.arena;
        arena.shrink_to_fit();
        mask_table.shrink_to_fit();
        DomainTrie {
            slots,
            arena,
            masks: mask_table,
            provenance,
            domains,
        }
    }
}

#[cfg(test)]
mod tests;
