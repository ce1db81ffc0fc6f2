//! Top blocked domains in bounded memory: the Space-Saving sketch
//! (Metwally, Agrawal, El Abbadi 2005). At most `capacity` domains are
//! tracked; a new domain replaces the least counted one and inherits its
//! count, so counts are upper bounds and every domain with a true count
//! above total/capacity is guaranteed to be present.

use std::collections::HashMap;

/// One sketch; callers shard it to keep locks short.
#[derive(Debug)]
pub struct SpaceSaving {
    capacity: usize,
    counts: HashMap<Box<str>, u64>,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            counts: HashMap::with_capacity(capacity.max(1)),
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
        // Replace the minimum; O(capacity), only when a new domain arrives
        // and the sketch is full.
        let (victim, min) = self
            .counts
            .iter()
            .min_by_key(|(_, c)| **c)
            .map(|(d, c)| (d.clone(), *c))
            .expect("capacity >= 1");
        self.counts.remove(&victim);
        self.counts.insert(domain.into(), min + 1);
    }

    /// Takes the counts out, leaving the sketch empty.
    pub fn drain(&mut self) -> Vec<(Box<str>, u64)> {
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
