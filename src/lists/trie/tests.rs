//! Matcher semantics, and agreement with a naive reference on real data.

use super::*;
use crate::lists::formats::{self, ListFormat};
use std::collections::{HashMap, HashSet};

fn rule(line: u32) -> RuleRef {
    RuleRef { list: 1, line }
}

fn trie(entries: &[(&str, CategoryId, RuleAction)]) -> DomainTrie {
    let mut builder = TrieBuilder::new();
    for (i, (domain, category, action)) in entries.iter().enumerate() {
        builder.insert(domain, *category, *action, rule(i as u32 + 1));
    }
    builder.build()
}

const ALL: CategoryMask = CategoryMask::MAX;

#[test]
fn exact_parent_and_deep_subdomain_match_but_not_siblings() {
    let t = trie(&[("example.com", 0, RuleAction::Block)]);
    for name in [
        "example.com",
        "www.example.com",
        "a.b.c.d.example.com",
        "example.com.",
    ] {
        let m = t.decide(name, ALL).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((m.action, m.category), (RuleAction::Block, 0));
    }
    assert_eq!(t.decide("www.example.com", ALL).unwrap().depth, 2);
    for name in ["notexample.com", "example.co", "com", "example.com.vn", ""] {
        assert_eq!(t.decide(name, ALL), None, "{name}");
    }
}

#[test]
fn most_specific_wins_and_allow_beats_block_at_one_node() {
    let t = trie(&[
        ("example.com", 0, RuleAction::Block),
        ("ok.example.com", 0, RuleAction::Allow),
        ("bad.ok.example.com", 1, RuleAction::Block),
        ("both.example.com", 0, RuleAction::Block),
        ("both.example.com", 2, RuleAction::Allow),
    ]);
    assert_eq!(
        t.decide("x.ok.example.com", ALL).unwrap().action,
        RuleAction::Allow
    );
    assert_eq!(
        t.decide("x.bad.ok.example.com", ALL).unwrap().action,
        RuleAction::Block
    );
    assert_eq!(
        t.decide("both.example.com", ALL).unwrap().action,
        RuleAction::Allow
    );
    // Masks: a category outside the mask is ignored.
    assert_eq!(
        t.decide("x.bad.ok.example.com", 0b001).unwrap().action,
        RuleAction::Allow
    );
    assert_eq!(
        t.decide("both.example.com", 0b001).unwrap().action,
        RuleAction::Block
    );
    assert_eq!(t.decide("www.example.com", 0b010), None);
}

#[test]
fn lowest_category_of_the_mask_is_reported_and_provenance_is_the_first_rule() {
    let mut builder = TrieBuilder::new();
    builder.insert(
        "multi.example",
        3,
        RuleAction::Block,
        RuleRef { list: 7, line: 10 },
    );
    builder.insert(
        "multi.example",
        5,
        RuleAction::Block,
        RuleRef { list: 8, line: 20 },
    );
    builder.insert(
        "multi.example",
        3,
        RuleAction::Block,
        RuleRef { list: 9, line: 30 },
    );
    let t = builder.build();
    let m = t.decide("multi.example", 1 << 3 | 1 << 5).unwrap();
    assert_eq!(m.category, 3);
    assert_eq!(t.rule(&m), Some(RuleRef { list: 7, line: 10 }));
    let m = t.decide("a.multi.example", 1 << 5).unwrap();
    assert_eq!(t.rule(&m), Some(RuleRef { list: 8, line: 20 }));
    assert_eq!(t.domain_count(), 1);
}

#[test]
fn decide_and_decide_labels_agree() {
    let t = trie(&[
        ("a.example", 0, RuleAction::Block),
        ("b.a.example", 1, RuleAction::Allow),
    ]);
    for name in ["a.example", "x.b.a.example", "c.example", "b.a.example"] {
        let labels: Vec<&[u8]> = name.as_bytes().rsplit(|&b| b == b'.').collect();
        assert_eq!(
            t.decide(name, ALL),
            t.decide_labels(labels.into_iter(), ALL),
            "{name}"
        );
    }
}

#[test]
fn empty_trie_matches_nothing() {
    let t = DomainTrie::empty();
    assert_eq!(t.decide("example.com", ALL), None);
    assert_eq!(t.domain_count(), 0);
}

/// The union of real lists, checked against a naive suffix set.
#[test]
fn agrees_with_a_naive_reference_on_real_lists() {
    let files = [
        "hagezi/gambling.txt",
        "hagezi/nsfw.txt",
        "hostsvn/gambling-hosts.txt",
        "blocklistproject/drugs.txt",
        "ut1/dating.txt",
    ];
    let mut builder = TrieBuilder::with_capacity(400_000);
    let mut reference: HashMap<String, u32> = HashMap::new();
    for (category, file) in files.iter().enumerate() {
        let path = format!("{}/../shared/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        formats::parse(&text, ListFormat::Auto, &mut |entry| {
            builder.insert(entry.domain, category as u8, entry.action, rule(entry.line));
            *reference.entry(entry.domain.to_string()).or_default() |= 1 << category;
        });
    }
    let t = builder.build();
    assert_eq!(t.domain_count(), reference.len());
    let naive = |name: &str| -> Option<u8> {
        // Deepest listed suffix.
        let mut best = None;
        let labels: Vec<&str> = name.split('.').collect();
        for start in (0..labels.len()).rev() {
            if let Some(mask) = reference.get(&labels[start..].join(".")) {
                best = Some(mask.trailing_zeros() as u8);
            }
        }
        best
    };
    let listed: Vec<&String> = reference.keys().take(20_000).collect();
    for name in &listed {
        let sub = format!("x1.{name}");
        assert_eq!(
            t.decide(name, ALL).map(|m| m.category),
            naive(name),
            "{name}"
        );
        assert_eq!(
            t.decide(&sub, ALL).map(|m| m.category),
            naive(&sub),
            "{sub}"
        );
    }
    let top = std::fs::read_to_string(format!(
        "{}/../shared/data/top-sites/umbrella-top-100k.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut checked = HashSet::new();
    for line in top.lines().skip(1).take(20_000) {
        let name = line
            .split(',')
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name.is_empty() || !checked.insert(name.clone()) {
            continue;
        }
        assert_eq!(
            t.decide(&name, ALL).map(|m| m.category),
            naive(&name),
            "{name}"
        );
    }
    let bytes_per_domain = t.heap_bytes() as f64 / t.domain_count() as f64;
    assert!(
        bytes_per_domain < 200.0,
        "sanity: {bytes_per_domain} bytes per domain"
    );
}
