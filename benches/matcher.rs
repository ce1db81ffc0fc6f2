//! Matcher benchmark on the union of the real lists in `../shared/data`
//! (`ut1`, `hagezi`, `hostsvn`, `blocklistproject`, `sinfonietta`; every file
//! parsed with our parsers, each its own category, cycling through the 32):
//! build time, lookups per second (listed names, deep subdomains of listed
//! names, popular unlisted names, a 50/50 mix; each walking round its whole
//! pool, so the table is mostly out of cache, plus `hits_warm`, one batch
//! looked up again and again), and heap bytes per listed domain, from
//! `heap_bytes()` and from a counting global allocator.
//!
//! ```sh
//! cargo bench --bench matcher -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use edudns::lists::formats::{self, ListFormat};
use edudns::lists::trie::{DomainTrie, TrieBuilder};
use edudns::lists::{CategoryId, CategoryMask, RuleAction, RuleRef};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Names looked up per measured iteration.
const BATCH: usize = 10_000;
/// Every category: the walk sees every rule.
const MASK: CategoryMask = CategoryMask::MAX;

/// One parsed entry.
struct Parsed {
    domain: String,
    category: CategoryId,
    action: RuleAction,
    rule: RuleRef,
}

fn data(path: &str) -> String {
    format!("{}/../shared/data/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Every entry of every list file of the five collections.
fn parse_all() -> Vec<Parsed> {
    let mut parsed = Vec::with_capacity(1_800_000);
    let mut list = 0u16;
    for folder in [
        "ut1",
        "hagezi",
        "hostsvn",
        "blocklistproject",
        "sinfonietta",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(data(folder))
            .expect("../shared/data sits beside the crate")
            .flatten()
            .map(|e| e.path())
            // UT1's description of its categories, not a list.
            .filter(|p| !p.ends_with("global_usage.txt"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable list");
            let category = (list % 32) as CategoryId;
            formats::parse(&text, ListFormat::Auto, &mut |e| {
                parsed.push(Parsed {
                    domain: e.domain.to_string(),
                    category,
                    action: e.action,
                    rule: RuleRef { list, line: e.line },
                });
            });
            list += 1;
        }
    }
    parsed
}

fn build(entries: &[Parsed]) -> DomainTrie {
    let mut builder = TrieBuilder::with_capacity(entries.len());
    for e in entries {
        builder.insert(&e.domain, e.category, e.action, e.rule);
    }
    builder.build()
}

/// A deterministic shuffle (xorshift), so every run looks up the same order.
fn shuffle<T>(items: &mut [T]) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// True when neither `name` nor any parent domain is in `listed`.
fn unlisted(name: &str, listed: &HashSet<&str>) -> bool {
    let mut rest = name;
    loop {
        if listed.contains(rest) {
            return false;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return true,
        }
    }
}

/// Looks up `BATCH` names per iteration, walking round the whole pool so the
/// working set is the whole table, not one batch kept warm in cache.
fn lookups(c: &mut Criterion, trie: &DomainTrie, group_name: &str, pools: &[(&str, &[String])]) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(BATCH as u64));
    for &(name, pool) in pools {
        let mut start = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let end = (start + BATCH).min(pool.len());
                let mut found = 0usize;
                for qname in &pool[start..end] {
                    found += usize::from(trie.decide(black_box(qname), MASK).is_some());
                }
                start = if end == pool.len() { 0 } else { end };
                black_box(found)
            })
        });
    }
    group.finish();
}

fn matcher(c: &mut Criterion) {
    let started = Instant::now();
    let entries = parse_all();
    let parse_time = started.elapsed();
    let listed: HashSet<&str> = entries.iter().map(|e| e.domain.as_str()).collect();

    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let trie = build(&entries);
    let build_time = started.elapsed();
    let counted = LIVE.load(Ordering::Relaxed) - before;
    let domains = trie.domain_count();
    assert_eq!(domains, listed.len(), "one domain per distinct listed name");
    eprintln!(
        "matcher: {} entries parsed in {:.2} s, {} distinct domains; first build {:.2} s; \
         heap_bytes() {} B = {:.1} B/domain; counting allocator {} B = {:.1} B/domain",
        entries.len(),
        parse_time.as_secs_f64(),
        domains,
        build_time.as_secs_f64(),
        trie.heap_bytes(),
        trie.heap_bytes() as f64 / domains as f64,
        counted,
        counted as f64 / domains as f64,
    );

    eprintln!("matcher: {trie:?}");

    let mut hits: Vec<String> = listed.iter().map(|d| d.to_string()).collect();
    hits.sort_unstable();
    shuffle(&mut hits);
    let deep: Vec<String> = hits.iter().map(|d| format!("a.b.c.{d}")).collect();
    let top =
        std::fs::read_to_string(data("top-sites/umbrella-top-100k.csv")).expect("top-sites list");
    let mut misses: Vec<String> = top
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1))
        .filter(|name| unlisted(name, &listed))
        .map(str::to_string)
        .collect();
    shuffle(&mut misses);
    let mixed: Vec<String> = misses
        .iter()
        .zip(&hits)
        .flat_map(|(miss, hit)| [hit.clone(), miss.clone()])
        .collect();
    eprintln!(
        "matcher: pools of {} hits, {} subdomain hits, {} misses (of the Umbrella top 100k), {} mixed",
        hits.len(),
        deep.len(),
        misses.len(),
        mixed.len()
    );
    assert!(misses.iter().all(|m| trie.decide(m, MASK).is_none()));
    assert!(
        deep.iter()
            .take(1000)
            .all(|d| trie.decide(d, MASK).is_some())
    );

    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("trie", |b| b.iter_with_large_drop(|| build(&entries)));
    group.finish();

    lookups(
        c,
        &trie,
        "lookup",
        &[
            ("hits", &hits),
            ("subdomain_hits", &deep),
            ("misses", &misses),
            ("mixed", &mixed),
            // The compute ceiling: one batch of listed names, warm in cache.
            ("hits_warm", &hits[..BATCH]),
        ],
    );
}

criterion_group!(benches, matcher);
criterion_main!(benches);
