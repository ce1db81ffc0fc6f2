//! Building a [`DomainTrie`]: entries are collected into a growable node
//! list with two open-addressing indexes (children by (parent, label) and
//! labels by bytes, so each distinct label is stored once), then compiled
//! into the flat, exactly sized table of the trie.

use super::hash::{hash, home};
use super::{
    BUCKET_SHIFT, DomainTrie, FREE, LEN_BITS, MAX_NODES, Provenance, ROOT, Slot, advise_huge_pages,
    huge_vec, provenance_key,
};
use crate::lists::name::{MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::lists::{CategoryId, CategoryMask, MAX_CATEGORIES, RuleAction, RuleRef};
use std::collections::HashMap;

/// The final table gets this many slots per node and one more: 75 % full.
const SLOTS_PER_NODE: (usize, usize) = (4, 3);
/// Parent value under which labels are hashed for interning.
const LABEL_SEED: u32 = u32::MAX - 1;

/// A node while building; ids are creation order, so parents come first.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    label: u32,
    label_len: u8,
    block: CategoryMask,
    allow: CategoryMask,
}

/// A rule's provenance before the nodes have their final slots.
#[derive(Clone, Copy)]
struct PendingRule {
    node: u32,
    line: u32,
    list: u16,
    key: u8,
}

/// Collects entries, then compiles them into a [`DomainTrie`].
#[derive(Default)]
pub struct TrieBuilder {
    nodes: Vec<Node>,
    /// Power-of-two table: 0 = free, else `hash as u32 << 32 | (node + 1)`.
    children: Vec<u64>,
    /// Power-of-two table: 0 = free, else `hash >> 38 << 38 | len << 32 | offset`.
    labels: Vec<u64>,
    label_count: usize,
    arena: Vec<u8>,
    rules: Vec<PendingRule>,
}

impl TrieBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder sized for about `domains` entries.
    pub fn with_capacity(domains: usize) -> Self {
        let nodes = domains.saturating_add(domains / 16);
        TrieBuilder {
            nodes: Vec::with_capacity(nodes),
            children: vec![0; table_size(nodes)],
            labels: vec![0; table_size(domains)],
            label_count: 0,
            arena: Vec::with_capacity(domains.saturating_mul(10)),
            rules: Vec::with_capacity(domains.saturating_add(domains / 2)),
        }
    }

    /// Adds a rule for `domain` and its subdomains. `domain` is normalised
    /// ([`crate::lists::name::normalize`]); one trailing dot is tolerated.
    ///
    /// Records one [`RuleRef`] per (domain, category, action): the first one
    /// inserted wins. A domain that is not a well-formed name (empty label,
    /// label over 63 bytes, name over 253), a category ≥ [`MAX_CATEGORIES`],
    /// or a trie past its size limits is ignored.
    pub fn insert(
        &mut self,
        domain: &str,
        category: CategoryId,
        action: RuleAction,
        rule: RuleRef,
    ) {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let well_formed = !domain.is_empty()
            && domain.len() <= MAX_NAME_LEN
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN);
        if !well_formed || usize::from(category) >= MAX_CATEGORIES {
            return;
        }
        let mut node = ROOT;
        for label in domain.as_bytes().rsplit(|&b| b == b'.') {
            match self.child(node, label) {
                Some(child) => node = child,
                None => return,
            }
        }
        let bit = 1 << category;
        let entry = &mut self.nodes[node as usize];
        let mask = match action {
            RuleAction::Block => &mut entry.block,
            RuleAction::Allow => &mut entry.allow,
        };
        if *mask & bit == 0 {
            *mask |= bit;
            self.rules.push(PendingRule {
                node,
                line: rule.line,
                list: rule.list,
                key: provenance_key(category, action),
            });
        }
    }

    /// The child of `parent` labelled `label`, created if new.
    fn child(&mut self, parent: u32, label: &[u8]) -> Option<u32> {
        if (self.nodes.len() + 1) * 4 > self.children.len() * 3 {
            self.children = regrow(&self.children, |entry| entry >> 32);
        }
        let h = hash(parent, label) as u32;
        let mask = self.children.len() - 1;
        let mut at = h as usize & mask;
        loop {
            let entry = self.children[at];
            if entry == 0 {
                break;
            }
            if (entry >> 32) as u32 == h {
                let id = (entry as u32).wrapping_sub(1);
                let node = self.nodes[id as usize];
                if node.parent == parent && self.label_bytes(node.label, node.label_len) == label {
                    return Some(id);
                }
            }
            at = (at + 1) & mask;
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        let label_offset = self.intern(label)?;
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            parent,
            label: label_offset,
            label_len: label.len() as u8,
            block: 0,
            allow: 0,
        });
        self.children[at] = (u64::from(h) << 32) | u64::from(id + 1);
        Some(id)
    }

    fn label_bytes(&self, offset: u32, len: u8) -> &[u8] {
        let start = offset as usize;
        self.arena
            .get(start..start + usize::from(len))
            .unwrap_or_default()
    }

    /// The arena offset of `label`, stored if new.
    fn intern(&mut self, label: &[u8]) -> Option<u32> {
        if (self.label_count + 1) * 4 > self.labels.len() * 3 {
            let arena = &self.arena;
            self.labels = regrow(&self.labels, |entry| {
                let (offset, len) = (entry as u32 as usize, (entry >> 32) as usize & 63);
                hash(LABEL_SEED, &arena[offset..offset + len])
            });
        }
        let h = hash(LABEL_SEED, label);
        let check = (h >> 38) << 38;
        let mask = self.labels.len() - 1;
        let mut at = h as usize & mask;
        loop {
            let entry = self.labels[at];
            if entry == 0 {
                break;
            }
            let len = ((entry >> 32) & 63) as u8;
            if entry >> 38 << 38 == check && usize::from(len) == label.len() {
                let offset = entry as u32;
                if self.label_bytes(offset, len) == label {
                    return Some(offset);
                }
            }
            at = (at + 1) & mask;
        }
        let offset = u32::try_from(self.arena.len()).ok()?;
        offset.checked_add(label.len() as u32)?;
        self.arena.extend_from_slice(label);
        self.labels[at] = check | ((label.len() as u64) << 32) | u64::from(offset);
        self.label_count += 1;
        Some(offset)
    }

    /// Compiles the flat table, the mask table and the provenance index.
    pub fn build(self) -> DomainTrie {
        // Distinct (block, allow) pairs, index 0 = no rule.
        let mut masks = vec![(0, 0)];
        let mut mask_ids: HashMap<(CategoryMask, CategoryMask), u32> = HashMap::new();
        mask_ids.insert((0, 0), 0);
        let node_masks: Vec<u32> = self
            .nodes
            .iter()
            .map(|n| {
                *mask_ids.entry((n.block, n.allow)).or_insert_with(|| {
                    masks.push((n.block, n.allow));
                    (masks.len() - 1) as u32
                })
            })
            .collect();
        let index_bits = u32::BITS - ((masks.len() - 1) as u32).leading_zeros();
        let len_shift = index_bits;
        let tag_shift = index_bits + LEN_BITS;

        let capacity = self.nodes.len() * SLOTS_PER_NODE.0 / SLOTS_PER_NODE.1 + 1;
        let mut slots = huge_vec(capacity, Slot::FREE);
        let mut slot_of = Vec::with_capacity(self.nodes.len());
        for (node, &mask_index) in self.nodes.iter().zip(&node_masks) {
            let parent = match node.parent {
                ROOT => ROOT,
                id => slot_of[id as usize],
            };
            let h = hash(parent, self.label_bytes(node.label, node.label_len));
            let mut at = home(h, capacity);
            while slots[at].label != FREE {
                at = if at + 1 == capacity { 0 } else { at + 1 };
            }
            let tag = (h as u32).checked_shl(tag_shift).unwrap_or(0);
            slots[at] = Slot {
                parent,
                label: node.label,
                payload: tag | (u32::from(node.label_len) << len_shift) | mask_index,
            };
            slot_of.push(at as u32);
        }

        let mut rules: Vec<(u32, u8, u16, u32)> = self
            .rules
            .iter()
            .map(|r| (slot_of[r.node as usize], r.key, r.list, r.line))
            .collect();
        drop(self.rules);
        rules.sort_unstable_by_key(|&(node, key, ..)| (node, key));
        let bucket_count = (capacity >> BUCKET_SHIFT) + 1;
        let mut buckets = vec![0u32; bucket_count + 1];
        for &(node, ..) in &rules {
            buckets[(node >> BUCKET_SHIFT) as usize + 1] += 1;
        }
        for b in 1..buckets.len() {
            buckets[b] += buckets[b - 1];
        }
        let provenance: Vec<Provenance> = rules
            .iter()
            .map(|&(node, key, list, line)| Provenance {
                node_low: node as u16,
                key,
                list,
                line,
            })
            .collect();

        let mut arena = Vec::with_capacity(self.arena.len());
        advise_huge_pages(&arena);
        arena.extend_from_slice(&self.arena);
        drop(self.arena);
        masks.shrink_to_fit();
        DomainTrie {
            domains: node_masks.iter().filter(|&&m| m != 0).count(),
            slots,
            arena,
            masks,
            provenance,
            buckets,
            index_mask: (1u32 << index_bits) - 1,
            len_shift,
            tag_shift,
        }
    }
}

/// Smallest power of two that keeps `entries` at most 75 % of a table.
fn table_size(entries: usize) -> usize {
    (entries.saturating_mul(4) / 3 + 1)
        .next_power_of_two()
        .max(16)
}

/// A table twice the size of `table` (at least 16) with the same entries,
/// placed by `hash_of(entry)`'s low bits.
fn regrow(table: &[u64], hash_of: impl Fn(u64) -> u64) -> Vec<u64> {
    let size = (table.len() * 2).max(16);
    let mask = size - 1;
    let mut grown = vec![0u64; size];
    for &entry in table.iter().filter(|&&e| e != 0) {
        let mut at = hash_of(entry) as usize & mask;
        while grown[at] != 0 {
            at = (at + 1) & mask;
        }
        grown[at] = entry;
    }
    grown
}
