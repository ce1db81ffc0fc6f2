//! Matcher tests: semantics on small hand-made tries, then the whole real
//! data set against a naive suffix-by-suffix reference.

use super::{DomainTrie, TrieBuilder, TrieMatch};
use crate::lists::formats::{self, ListFormat};
use crate::lists::{CategoryId, CategoryMask, RuleAction, RuleRef};
use std::collections::HashMap;

const ALL: CategoryMask = CategoryMask::MAX;
const BLOCK: RuleAction = RuleAction::Block;
const ALLOW: RuleAction = RuleAction::Allow;

fn rule(list: u16, line: u32) -> RuleRef {
    RuleRef { list, line }
}

fn trie(entries: &[(&str, CategoryId, RuleAction)]) -> DomainTrie {
    let mut builder = TrieBuilder::new();
    for (line, &(domain, category, action)) in entries.iter().enumerate() {
        builder.insert(domain, category, action, rule(0, line as u32 + 1));
    }
    builder.build()
}

/// (action, category, depth) of a decision.
fn decided(trie: &DomainTrie, name: &str, mask: CategoryMask) -> Option<(RuleAction, u8, u8)> {
    trie.decide(name, mask)
        .map(|m| (m.action, m.category, m.depth))
}

#[test]
fn prefetch_hints_aim_at_the_slot_and_label_the_walk_reads() {
    let entries: Vec<String> = (0..2000).map(|i| format!("name{i}.example.com")).collect();
    let mut builder = TrieBuilder::new();
    for (i, domain) in entries.iter().enumerate() {
        builder.insert(domain, 1, BLOCK, rule(0, i as u32 + 1));
    }
    builder.insert("example.org", 1, BLOCK, rule(0, 9999));
    let t = builder.build();
    let (com, _) = t.child(super::ROOT, b"com").unwrap();
    let probe = t.prefetch_slot(b"com", b"example").expect("a listed TLD");
    assert_eq!(probe.parent, com);
    assert_eq!(probe.hash, super::hash::hash(com, b"example"));
    assert_eq!(usize::from(probe.len), "example".len());
    // The walk below the TLD finds its node by that hash, from the slot hinted.
    let (node, _) = t.child(com, b"example").unwrap();
    let home = super::hash::home(probe.hash, t.slots.len());
    let run = (node as usize + t.slots.len() - home) % t.slots.len();
    assert!(run < 8, "the node sits {run} slots past the hinted one");
    // Unknown TLDs give no hint; over-long labels none either.
    assert!(t.prefetch_slot(b"zz", b"example").is_none());
    assert!(t.prefetch_slot(&[b'a'; 64], b"example").is_none());
    assert!(t.prefetch_slot(b"com", &[b'a'; 64]).is_none());
    // Hints for every name, listed or not, never fail, however the probe
    // runs wrap around the end of the table.
    for domain in entries
        .iter()
        .map(String::as_str)
        .chain(["nope.com", "x.org"])
    {
        let mut labels = domain.rsplit('.');
        let (tld, second) = (labels.next().unwrap(), labels.next().unwrap());
        if let Some(probe) = t.prefetch_slot(tld.as_bytes(), second.as_bytes()) {
            t.prefetch_label(probe);
        }
    }
    assert!(
        DomainTrie::empty()
            .prefetch_slot(b"com", b"example")
            .is_none()
    );
}

#[test]
fn exact_parent_and_deep_subdomain_matches() {
    let t = trie(&[("example.com", 3, BLOCK)]);
    assert_eq!(decided(&t, "example.com", ALL), Some((BLOCK, 3, 2)));
    assert_eq!(decided(&t, "ads.example.com", ALL), Some((BLOCK, 3, 2)));
    assert_eq!(
        decided(&t, "a.b.c.d.e.example.com", ALL),
        Some((BLOCK, 3, 2))
    );
    assert_eq!(decided(&t, "com", ALL), None);
    assert_eq!(decided(&t, "example.org", ALL), None);
    assert_eq!(decided(&t, "example.com.evil.net", ALL), None);
}

#[test]
fn siblings_and_look_alikes_do_not_match() {
    let t = trie(&[("example.com", 0, BLOCK), ("ads.other.com", 0, BLOCK)]);
    assert_eq!(decided(&t, "notexample.com", ALL), None);
    assert_eq!(decided(&t, "example.co", ALL), None);
    assert_eq!(decided(&t, "examplecom", ALL), None);
    assert_eq!(decided(&t, "other.com", ALL), None);
    assert_eq!(decided(&t, "xads.other.com", ALL), None);
    assert_eq!(decided(&t, "", ALL), None);
    assert_eq!(decided(&t, ".", ALL), None);
    assert_eq!(decided(&t, "example..com", ALL), None);
}

#[test]
fn most_specific_wins() {
    let t = trie(&[
        ("example.com", 1, ALLOW),
        ("ads.example.com", 2, BLOCK),
        ("ok.ads.example.com", 1, ALLOW),
    ]);
    assert_eq!(decided(&t, "www.example.com", ALL), Some((ALLOW, 1, 2)));
    assert_eq!(decided(&t, "x.ads.example.com", ALL), Some((BLOCK, 2, 3)));
    assert_eq!(decided(&t, "ok.ads.example.com", ALL), Some((ALLOW, 1, 4)));
    assert_eq!(
        decided(&t, "a.ok.ads.example.com", ALL),
        Some((ALLOW, 1, 4))
    );
}

#[test]
fn allow_beats_block_at_the_same_node() {
    let t = trie(&[
        ("example.com", 5, BLOCK),
        ("example.com", 9, ALLOW),
        ("same.example", 4, BLOCK),
        ("same.example", 4, ALLOW),
    ]);
    assert_eq!(decided(&t, "www.example.com", ALL), Some((ALLOW, 9, 2)));
    assert_eq!(decided(&t, "same.example", 1 << 4), Some((ALLOW, 4, 2)));
    // Without category 9 in the mask, the block stands.
    assert_eq!(decided(&t, "www.example.com", 1 << 5), Some((BLOCK, 5, 2)));
}

#[test]
fn categories_outside_the_mask_are_ignored() {
    let t = trie(&[
        ("example.com", 1, BLOCK),
        ("ads.example.com", 2, BLOCK),
        ("ads.example.com", 7, BLOCK),
        ("ads.example.com", 4, BLOCK),
        ("ok.ads.example.com", 3, ALLOW),
    ]);
    let name = "ok.ads.example.com";
    assert_eq!(decided(&t, name, 1 << 1), Some((BLOCK, 1, 2)));
    assert_eq!(decided(&t, name, 1 << 7), Some((BLOCK, 7, 3)));
    // The lowest category bit of (block mask & mask) is reported.
    assert_eq!(decided(&t, name, (1 << 7) | (1 << 4)), Some((BLOCK, 4, 3)));
    assert_eq!(decided(&t, name, (1 << 3) | (1 << 2)), Some((ALLOW, 3, 4)));
    assert_eq!(decided(&t, name, 1 << 30), None);
    assert_eq!(decided(&t, name, 0), None);
}

#[test]
fn provenance_is_the_first_rule_inserted() {
    let mut builder = TrieBuilder::with_capacity(4);
    builder.insert("example.com", 2, BLOCK, rule(7, 10));
    builder.insert("example.com", 2, BLOCK, rule(8, 20));
    builder.insert("example.com", 3, BLOCK, rule(9, 30));
    builder.insert("example.com", 2, ALLOW, rule(4, 40));
    builder.insert("ads.example.com", 2, BLOCK, rule(1, 50));
    let t = builder.build();
    let at = |name: &str, mask: CategoryMask| {
        let found = t.decide(name, mask).unwrap();
        (found.action, t.rule(&found))
    };
    assert_eq!(at("www.example.com", 1 << 2), (ALLOW, Some(rule(4, 40))));
    assert_eq!(at("www.example.com", 1 << 3), (BLOCK, Some(rule(9, 30))));
    assert_eq!(at("x.ads.example.com", 1 << 2), (BLOCK, Some(rule(1, 50))));
    assert_eq!(t.domain_count(), 2);
}

#[test]
fn decide_and_decide_labels_agree_and_trailing_dots_are_handled() {
    let t = trie(&[
        ("example.com", 0, BLOCK),
        ("ok.example.com", 1, ALLOW),
        ("net", 2, BLOCK),
    ]);
    for name in [
        "example.com",
        "a.ok.example.com",
        "ok.example.com",
        "x.net",
        "org",
        "x.com",
    ] {
        let labels: Vec<&[u8]> = name.as_bytes().rsplit(|&b| b == b'.').collect();
        let by_labels = t.decide_labels(labels.into_iter(), ALL);
        assert_eq!(t.decide(name, ALL), by_labels, "{name}");
        assert_eq!(t.decide(&format!("{name}."), ALL), by_labels, "{name}.");
    }
}

#[test]
fn label_comparison_sees_every_byte_of_every_length() {
    let text: Vec<u8> = (0..63u8).map(|i| b'a' + i % 26).collect();
    for len in 1..=63 {
        let label = &text[..len];
        assert!(super::same_bytes(label, label), "{len}");
        assert!(!super::same_bytes(label, &text[..len - 1]), "{len}");
        for at in 0..len {
            let mut changed = label.to_vec();
            changed[at] = b'_';
            assert!(!super::same_bytes(label, &changed), "{len} {at}");
        }
    }
}

#[test]
fn labels_longer_than_63_bytes_never_match() {
    // The arena holds "com", 63 × "a", then "a": 64 × "a" back to back.
    let long = "a".repeat(63);
    let t = trie(&[(&format!("{long}.com"), 0, BLOCK), ("a.com", 0, BLOCK)]);
    assert_eq!(
        decided(&t, &format!("{long}.com"), ALL),
        Some((BLOCK, 0, 2))
    );
    let longer = "a".repeat(64);
    assert_eq!(decided(&t, &format!("{longer}.com"), ALL), None);
    let labels: [&[u8]; 2] = [b"com", longer.as_bytes()];
    assert_eq!(t.decide_labels(labels.into_iter(), ALL), None);
}

#[test]
fn malformed_inserts_are_ignored_and_the_empty_trie_matches_nothing() {
    let mut builder = TrieBuilder::new();
    let long_label = "a".repeat(64);
    for bad in ["", ".", "a..b", ".a", long_label.as_str()] {
        builder.insert(bad, 0, BLOCK, rule(0, 1));
    }
    builder.insert("ok.example.", 32, BLOCK, rule(0, 1));
    builder.insert("ok.example.", 31, BLOCK, rule(0, 2));
    let t = builder.build();
    assert_eq!(t.domain_count(), 1);
    assert_eq!(decided(&t, "ok.example", ALL), Some((BLOCK, 31, 2)));
    assert_eq!(decided(&t, "a", ALL), None);

    let empty = DomainTrie::empty();
    assert_eq!(empty.decide("example.com", ALL), None);
    assert_eq!(empty.domain_count(), 0);
    assert!(empty.heap_bytes() > 0);
}

#[test]
fn heap_bytes_follow_the_buffers() {
    let t = trie(&[("a.example", 0, BLOCK), ("b.example", 0, BLOCK)]);
    // 3 nodes → 5 slots of 12 bytes; labels "example", "a", "b"; 2 mask pairs
    // of 8 bytes; 2 provenance records of 9 bytes; 2 bucket bounds of 4.
    assert_eq!(t.heap_bytes(), 5 * 12 + 9 + 2 * 8 + 2 * 9 + 2 * 4);
}

/// Every list of the five collections, each file its own category (cycling
/// through the 32), streamed into `insert`.
fn for_each_real_entry(mut insert: impl FnMut(&str, CategoryId, RuleAction, RuleRef)) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
    let mut index = 0u16;
    for folder in [
        "ut1",
        "hagezi",
        "hostsvn",
        "blocklistproject",
        "sinfonietta",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(format!("{root}/{folder}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("global_usage.txt"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let category = (index % 32) as CategoryId;
            formats::parse(&text, ListFormat::Auto, &mut |e| {
                insert(e.domain, category, e.action, rule(index, e.line));
            });
            index += 1;
        }
    }
}

/// Every real entry, its domain kept in one shared buffer (no allocation
/// per entry, which would dominate a debug-build test).
#[derive(Default)]
struct Entries {
    text: String,
    /// (end of the domain in `text`, category, action, source)
    entries: Vec<(usize, CategoryId, RuleAction, RuleRef)>,
}

impl Entries {
    fn iter(&self) -> impl Iterator<Item = (&str, CategoryId, RuleAction, RuleRef)> {
        let starts = std::iter::once(0).chain(self.entries.iter().map(|e| e.0));
        starts
            .zip(&self.entries)
            .map(|(start, &(end, category, action, source))| {
                (&self.text[start..end], category, action, source)
            })
    }
}

/// A cheap hash for the test's own maps (SipHash is slow in a debug build).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Block mask, allow mask, first source per (category << 1 | allow).
type SuffixRules = (CategoryMask, CategoryMask, Vec<(u8, RuleRef)>);

/// The naive reference: the rules of every suffix of the names looked up,
/// read off the full entry list; a name's decision is its longest listed
/// suffix with a rule in the mask.
#[derive(Default)]
struct Reference<'a> {
    /// suffix → (block mask, allow mask, first source per category and action)
    rules: FastMap<&'a str, SuffixRules>,
}

impl<'a> Reference<'a> {
    fn new(names: &[&'a str], all: &'a Entries) -> Self {
        let mut reference = Reference::default();
        for name in names {
            for (at, _) in name.match_indices('.') {
                reference.rules.insert(&name[at + 1..], (0, 0, Vec::new()));
            }
            reference.rules.insert(name, (0, 0, Vec::new()));
        }
        for (domain, category, action, source) in all.iter() {
            if let Some((block, allow, first)) = reference.rules.get_mut(domain) {
                let (mask, key) = match action {
                    BLOCK => (block, category << 1),
                    ALLOW => (allow, category << 1 | 1),
                };
                if *mask & 1 << category == 0 {
                    *mask |= 1 << category;
                    first.push((key, source));
                }
            }
        }
        reference
    }

    fn decide(&self, name: &str, mask: CategoryMask) -> Option<(RuleAction, u8, u8, RuleRef)> {
        let labels: Vec<&str> = name.split('.').collect();
        for skip in 0..labels.len() {
            let suffix = labels[skip..].join(".");
            let (block, allow, first) = &self.rules[suffix.as_str()];
            if (block | allow) & mask == 0 {
                continue;
            }
            let (action, bits) = if allow & mask != 0 {
                (ALLOW, allow & mask)
            } else {
                (BLOCK, block & mask)
            };
            let category = bits.trailing_zeros() as u8;
            let key = category << 1 | u8::from(action == ALLOW);
            let source = first.iter().find(|f| f.0 == key).map(|f| f.1)?;
            return Some((action, category, (labels.len() - skip) as u8, source));
        }
        None
    }
}

#[test]
fn the_real_data_set_agrees_with_a_naive_reference() {
    let mut builder = TrieBuilder::with_capacity(1_200_000);
    let mut all = Entries::default();
    for_each_real_entry(|domain, category, action, source| {
        builder.insert(domain, category, action, source);
        all.text.push_str(domain);
        all.entries.push((all.text.len(), category, action, source));
    });
    let t = builder.build();
    let distinct: std::collections::HashSet<u64, std::hash::BuildHasherDefault<Fnv>> = all
        .iter()
        .map(|(domain, ..)| {
            let mut h = Fnv(0xcbf2_9ce4_8422_2325);
            std::hash::Hasher::write(&mut h, domain.as_bytes());
            h.0
        })
        .collect();
    assert!(distinct.len() > 1_000_000, "{} domains", distinct.len());
    assert_eq!(t.domain_count(), distinct.len());

    let top = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/top-sites/umbrella-top-100k.csv"
    ))
    .unwrap();
    let stride = all.entries.len() / 20_000;
    let deep: Vec<String> = all
        .iter()
        .skip(1)
        .step_by(stride * 4)
        .map(|(d, ..)| format!("a.b.{d}"))
        .collect();
    let mut names: Vec<&str> = all
        .iter()
        .step_by(stride)
        .take(20_000)
        .map(|e| e.0)
        .collect();
    names.extend(deep.iter().map(String::as_str));
    let popular = top.lines().skip(1).filter_map(|l| l.split(',').nth(1));
    names.extend(popular.step_by(5).take(20_000));
    assert_eq!(names.len(), 40_000 + deep.len());

    let reference = Reference::new(&names, &all);
    let mut misses = 0;
    for (i, name) in names.iter().enumerate() {
        // Every category, then a different half of them each time.
        for mask in [ALL, 0x5555_5555u32.rotate_left(i as u32)] {
            let expected = reference.decide(name, mask);
            let found: Option<TrieMatch> = t.decide(name, mask);
            let found = found.map(|m| (m.action, m.category, m.depth, t.rule(&m).unwrap()));
            assert_eq!(found, expected, "{name} {mask:#x}");
            misses += usize::from(expected.is_none() && mask == ALL);
        }
    }
    // Most of the popular names are not listed.
    assert!(misses > 10_000, "{misses} unlisted names");
}

#[test]
fn a_written_trie_reads_back_deciding_and_explaining_the_same() {
    let mut entries: Vec<(String, CategoryId, RuleAction)> = (0..5_000)
        .map(|i| (format!("d{i}.site{}.example", i % 37), (i % 7) as u8, BLOCK))
        .collect();
    entries.push(("ok.site3.example".into(), 2, ALLOW));
    entries.push(("vn".into(), 9, BLOCK));
    let borrowed: Vec<(&str, CategoryId, RuleAction)> = entries
        .iter()
        .map(|(d, c, a)| (d.as_str(), *c, *a))
        .collect();
    let original = trie(&borrowed);
    let mut bytes = Vec::new();
    original.write_to(&mut bytes).unwrap();
    let copy = DomainTrie::read_from(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
    assert_eq!(copy.domain_count(), original.domain_count());
    assert_eq!(copy.heap_bytes(), original.heap_bytes());
    let names = [
        "d17.site17.example",
        "x.d4999.site4.example",
        "ok.site3.example",
        "a.ok.site3.example",
        "site3.example",
        "nothing.test",
        "hoc.edu.vn",
        "d1.site2.example",
    ];
    for name in names {
        for mask in [ALL, 0b101, 1 << 9, 0] {
            let (a, b) = (original.decide(name, mask), copy.decide(name, mask));
            assert_eq!(a, b, "{name} mask {mask:b}");
            if let Some(found) = a {
                assert_eq!(original.rule(&found), copy.rule(&found), "{name}");
            }
        }
    }
    // Damage: cut short anywhere, or a length running past the end, is an error.
    for cut in [0, 11, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            DomainTrie::read_from(&mut &bytes[..cut], cut as u64).is_err(),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(DomainTrie::read_from(&mut long.as_slice(), long.len() as u64).is_err());
    // A mask index past the mask table (the first slot in use gets one).
    let mut bad = bytes.clone();
    let slots = u64::from_le_bytes(bad[20..28].try_into().unwrap()) as usize;
    let used = (0..slots)
        .find(|i| {
            u32::from_le_bytes(bad[28 + i * 12 + 4..28 + i * 12 + 8].try_into().unwrap())
                != u32::MAX
        })
        .unwrap();
    bad[28 + used * 12 + 8..28 + used * 12 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(DomainTrie::read_from(&mut bad.as_slice(), bad.len() as u64).is_err());
}
