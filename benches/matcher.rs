//! Matcher benchmark on ≥1M real listed domains from ../shared/data:
//! lookups per second (hits, deep-subdomain hits, misses, mixed), build
//! time, and heap bytes per listed domain (from `heap_bytes()` and from a
//! counting allocator). Run: `cargo bench --bench matcher`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edudns::lists::formats::{self, ListFormat};
use edudns::lists::trie::{DomainTrie, TrieBuilder};
use edudns::lists::{CategoryMask, RuleAction, RuleRef};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BATCH: usize = 10_000;

/// (domain, category, action) of every entry of every real list.
fn real_entries() -> Vec<(String, u8, RuleAction)> {
    let root = format!("{}/../shared/data", env!("CARGO_MANIFEST_DIR"));
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for dir in [
        "ut1",
        "hagezi",
        "hostsvn",
        "blocklistproject",
        "sinfonietta",
    ] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{root}/{dir}"))
            .expect("../shared/data is beside the repository")
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        files.extend(names);
    }
    for (index, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let category = (index % 32) as u8;
        formats::parse(&text, ListFormat::Auto, &mut |e| {
            entries.push((e.domain.to_string(), category, e.action));
        });
    }
    entries
}

fn build(entries: &[(String, u8, RuleAction)]) -> DomainTrie {
    let mut builder = TrieBuilder::with_capacity(entries.len());
    for (line, (domain, category, action)) in entries.iter().enumerate() {
        builder.insert(
            domain,
            *category,
            *action,
            RuleRef {
                list: 0,
                line: line as u32,
            },
        );
    }
    builder.build()
}

fn misses(trie: &DomainTrie) -> Vec<String> {
    let path = format!(
        "{}/../shared/data/top-sites/umbrella-top-100k.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(|d| d.trim().to_ascii_lowercase()))
        .filter(|d| !d.is_empty() && trie.decide(d, CategoryMask::MAX).is_none())
        .take(BATCH)
        .collect()
}

fn benches(c: &mut Criterion) {
    let entries = real_entries();
    let distinct: HashSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let trie = build(&entries);
    let build_time = started.elapsed();
    let after = LIVE.load(Ordering::Relaxed);
    eprintln!(
        "matcher: {} entries, {} distinct domains, build {:.2} s, heap_bytes() {:.1} B/domain, allocator {:.1} B/domain",
        entries.len(),
        trie.domain_count(),
        build_time.as_secs_f64(),
        trie.heap_bytes() as f64 / trie.domain_count() as f64,
        (after - before) as f64 / trie.domain_count() as f64,
    );
    assert_eq!(trie.domain_count(), distinct.len());

    let step = (distinct.len() / BATCH).max(1);
    let mut listed: Vec<&str> = distinct.iter().copied().collect();
    listed.sort_unstable();
    let hits: Vec<String> = listed
        .iter()
        .step_by(step)
        .take(BATCH)
        .map(|d| d.to_string())
        .collect();
    let deep: Vec<String> = hits.iter().map(|d| format!("a.b.c.{d}")).collect();
    let misses = misses(&trie);
    let mixed: Vec<String> = hits
        .iter()
        .zip(&misses)
        .flat_map(|(h, m)| [h.clone(), m.clone()])
        .take(BATCH)
        .collect();

    let mut group = c.benchmark_group("lookup");
    for (name, names) in [
        ("hits", &hits),
        ("subdomain_hits", &deep),
        ("misses", &misses),
        ("mixed", &mixed),
    ] {
        group.throughput(Throughput::Elements(names.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0usize;
                for n in names {
                    found += usize::from(
                        black_box(trie.decide(black_box(n), CategoryMask::MAX)).is_some(),
                    );
                }
                found
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("real_lists", |b| {
        b.iter_batched(|| (), |_| build(&entries), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(matcher, benches);
criterion_main!(matcher);
