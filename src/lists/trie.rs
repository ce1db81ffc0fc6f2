//! PLACEHOLDER
#![allow(clippy::type_complexity)]
use super::{CategoryId, CategoryMask, RuleAction, RuleRef};
use std::collections::HashMap;

#[derive(Default)]
pub struct TrieBuilder {
    map: HashMap<String, (u32, u32, Vec<(CategoryId, RuleAction, RuleRef)>)>,
}
impl TrieBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(_n: usize) -> Self {
        Self::default()
    }
    pub fn insert(
        &mut self,
        domain: &str,
        category: CategoryId,
        action: RuleAction,
        rule: RuleRef,
    ) {
        let e = self.map.entry(domain.to_string()).or_default();
        let bit = 1u32 << category;
        match action {
            RuleAction::Block => e.0 |= bit,
            RuleAction::Allow => e.1 |= bit,
        }
        if !e.2.iter().any(|(c, a, _)| *c == category && *a == action) {
            e.2.push((category, action, rule));
        }
    }
    pub fn build(self) -> DomainTrie {
        DomainTrie { map: self.map }
    }
}
#[derive(Default)]
pub struct DomainTrie {
    map: HashMap<String, (u32, u32, Vec<(CategoryId, RuleAction, RuleRef)>)>,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrieMatch {
    pub action: RuleAction,
    pub category: CategoryId,
    pub depth: u8,
}
impl DomainTrie {
    pub fn empty() -> Self {
        Self::default()
    }
    pub fn decide(&self, name: &str, mask: CategoryMask) -> Option<TrieMatch> {
        let name = name.trim_end_matches('.');
        let labels: Vec<&str> = name.split('.').collect();
        for start in 0..labels.len() {
            let suffix = labels[start..].join(".");
            if let Some((b, a, _)) = self.map.get(&suffix) {
                let depth = (labels.len() - start) as u8;
                if a & mask != 0 {
                    return Some(TrieMatch {
                        action: RuleAction::Allow,
                        category: (a & mask).trailing_zeros() as u8,
                        depth,
                    });
                }
                if b & mask != 0 {
                    return Some(TrieMatch {
                        action: RuleAction::Block,
                        category: (b & mask).trailing_zeros() as u8,
                        depth,
                    });
                }
            }
        }
        None
    }
    pub fn rule(&self, _m: &TrieMatch) -> Option<RuleRef> {
        None
    }
    pub fn domain_count(&self) -> usize {
        self.map.len()
    }
    pub fn heap_bytes(&self) -> usize {
        0
    }
}
