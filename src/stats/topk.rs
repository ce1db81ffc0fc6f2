//! Top blocked domains in bounded memory: the Space-Saving sketch
//! (Metwally, Agrawal, El Abbadi 2005). At most `capacity` domains are
//! tracked; a new domain replaces the least counted one and inherits its
//! count, so counts are upper bounds and every domain with a true count
//! above total/capacity is guaranteed to be present.
//!
//! Finding the least counted domain is a scan of the sketch; on a long tail
//! of new domains (a blocked-name flood) that scan would run on every
//! query. Instead one scan picks the smallest quarter as eviction
//! candidates and the next new domains replace those in turn (a candidate
//! counted again since the scan is skipped): the scan's cost is shared by
//! a quarter of `capacity` evictions. A replaced domain is then one of the
//! least counted rather than the very least, so the guarantee holds for
//! true counts above total / (capacity × 3/4); counts stay upper bounds.

use std::collections::HashMap;

/// Seeded per process (blocked names come from clients), and far cheaper
/// than SipHash on this per-query path.
type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// One sketch; callers shard it to keep locks short.
#[derive(Debug)]
pub struct SpaceSaving {
    capacity: usize,
    counts: Map<Box<str>, u64>,
    /// Eviction candidates from the last scan, with their counts then.
    candidates: Vec<(Box<str>, u64)>,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            counts: Map::with_capacity_and_hasher(capacity.max(1), Default::default()),
            candidates: Vec::new(),
        }
    }

    /// Counts one occurrence.
    pub fn offer(&mut self, domain: &str) {
        if let Some(count) = self.counts.get_mut(domain) {
            *count += 1;
            return;
        }
        if self.counts.len() < self.capacity {
            self.counts.insert(domain.into(), 1);
            return;
        }
        loop {
            let Some((victim, count)) = self.candidates.pop() else {
                self.pick_candidates();
                continue;
            };
            // Counted again since the scan: no longer among the least.
            if self.counts.get(&victim) != Some(&count) {
                continue;
            }
            self.counts.remove(&victim);
            self.counts.insert(domain.into(), count + 1);
            return;
        }
    }

    /// The least counted quarter of the sketch, least last.
    fn pick_candidates(&mut self) {
        let mut all: Vec<(&Box<str>, &u64)> = self.counts.iter().collect();
        let take = (self.capacity / 4).max(1).min(all.len());
        if take < all.len() {
            all.select_nth_unstable_by_key(take, |(_, c)| **c);
        }
        let mut picked: Vec<(Box<str>, u64)> = all[..take]
            .iter()
            .map(|(d, c)| ((*d).clone(), **c))
            .collect();
        picked.sort_unstable_by_key(|(_, c)| std::cmp::Reverse(*c));
        self.candidates = picked;
    }

    /// Takes the counts out, leaving the sketch empty.
    pub fn drain(&mut self) -> Vec<(Box<str>, u64)> {
        self.candidates.clear();
        self.counts.drain().collect()
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_domains_survive_a_long_tail_and_memory_stays_bounded() {
        let mut sketch = SpaceSaving::new(16);
        for i in 0..10_000u32 {
            sketch.offer("heavy.example");
            if i % 2 == 0 {
                sketch.offer("medium.example");
            }
            sketch.offer(&format!("tail{i}.example"));
        }
        assert!(sketch.len() <= 16);
        let counts: HashMap<_, _> = sketch.drain().into_iter().collect();
        assert!(counts["heavy.example"] >= 10_000);
        assert!(counts["medium.example"] >= 5_000);
        assert!(sketch.is_empty());
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut sketch = SpaceSaving::new(4);
        for d in ["a", "b", "a", "c", "a"] {
            sketch.offer(d);
        }
        let mut counts = sketch.drain();
        counts.sort();
        assert_eq!(
            counts,
            vec![("a".into(), 3), ("b".into(), 1), ("c".into(), 1)]
        );
    }
}
