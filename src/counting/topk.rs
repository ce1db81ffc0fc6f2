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

/// Keys are already hashes of the domains, seeded per process (blocked
/// names come from clients); the map hashes them again cheaply.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One sketch; callers shard it to keep locks short.
///
/// Domains are tracked by a 64-bit seeded hash ([`SpaceSaving::offer`]'s
/// `key`), their names kept in slots that an eviction overwrites in place:
/// once full, counting a new domain allocates nothing (a blocked-name
/// flood evicts on every query). Two domains whose keys collide would be
/// counted as one; at 64 bits and a few hundred entries that never
/// happens in practice.
#[derive(Debug)]
pub struct SpaceSaving {
    capacity: usize,
    /// key → (slot in `names`, count).
    counts: Map<u64, (u32, u64)>,
    names: Vec<String>,
    /// Eviction candidates from the last scan: (key, count then).
    candidates: Vec<(u64, u64)>,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            counts: Map::with_capacity_and_hasher(capacity.max(1), Default::default()),
            names: Vec::with_capacity(capacity.max(1)),
            candidates: Vec::new(),
        }
    }

    /// Counts one occurrence of `domain`, whose hash is `key`.
    pub fn offer(&mut self, key: u64, domain: &str) {
        if let Some((_, count)) = self.counts.get_mut(&key) {
            *count += 1;
            return;
        }
        if self.counts.len() < self.capacity {
            let slot = self.counts.len();
            if slot < self.names.len() {
                self.names[slot].clear();
                self.names[slot].push_str(domain);
            } else {
                self.names.push(domain.to_string());
            }
            self.counts.insert(key, (slot as u32, 1));
            return;
        }
        loop {
            let Some((victim, count)) = self.candidates.pop() else {
                self.pick_candidates();
                continue;
            };
            // Counted again since the scan: no longer among the least.
            match self.counts.get(&victim) {
                Some(&(_, now)) if now == count => {}
                _ => continue,
            }
            let Some((slot, _)) = self.counts.remove(&victim) else {
                continue;
            };
            let name = &mut self.names[slot as usize];
            name.clear();
            name.push_str(domain);
            self.counts.insert(key, (slot, count + 1));
            return;
        }
    }

    /// The least counted quarter of the sketch, least last.
    fn pick_candidates(&mut self) {
        let mut all: Vec<(u64, u64)> = self
            .counts
            .iter()
            .map(|(&key, &(_, count))| (key, count))
            .collect();
        let take = (self.capacity / 4).max(1).min(all.len());
        if take < all.len() {
            all.select_nth_unstable_by_key(take, |&(_, count)| count);
        }
        all.truncate(take);
        all.sort_unstable_by_key(|&(_, count)| std::cmp::Reverse(count));
        self.candidates = all;
    }

    /// Takes the counts out, leaving the sketch empty.
    pub fn drain(&mut self) -> Vec<(Box<str>, u64)> {
        self.candidates.clear();
        // The slots' buffers stay for the next period; the map says which
        // are in use.
        let names = &self.names;
        self.counts
            .drain()
            .map(|(_, (slot, count))| (Box::from(names[slot as usize].as_str()), count))
            .collect()
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
    use std::hash::BuildHasher;

    fn offer(sketch: &mut SpaceSaving, domain: &str) {
        let key = foldhash::quality::FixedState::with_seed(7).hash_one(domain);
        sketch.offer(key, domain);
    }

    #[test]
    fn frequent_domains_survive_a_long_tail_and_memory_stays_bounded() {
        let mut sketch = SpaceSaving::new(16);
        for i in 0..10_000u32 {
            offer(&mut sketch, "heavy.example");
            if i % 2 == 0 {
                offer(&mut sketch, "medium.example");
            }
            offer(&mut sketch, &format!("tail{i}.example"));
        }
        assert!(sketch.len() <= 16);
        let counts: HashMap<_, _> = sketch.drain().into_iter().collect();
        assert!(counts["heavy.example"] >= 10_000);
        assert!(counts["medium.example"] >= 5_000);
        assert!(sketch.is_empty());
        // Slots are reused after a drain without mixing names up.
        for d in ["x.example", "y.example", "x.example"] {
            offer(&mut sketch, d);
        }
        let mut again = sketch.drain();
        again.sort();
        assert_eq!(
            again,
            vec![("x.example".into(), 2), ("y.example".into(), 1)]
        );
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut sketch = SpaceSaving::new(4);
        for d in ["a", "b", "a", "c", "a"] {
            offer(&mut sketch, d);
        }
        let mut counts = sketch.drain();
        counts.sort();
        assert_eq!(
            counts,
            vec![("a".into(), 3), ("b".into(), 1), ("c".into(), 1)]
        );
    }
}
