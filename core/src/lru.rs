//! The order in which live actors were last used, for putting the least
//! recently used idle one to sleep when the host is at its bound of live actors.
//!
//! A use is O(log n) (one removal and one insertion in a `BTreeMap` keyed by a
//! use counter), and finding the oldest is a walk from the front that stops at
//! the first entry the caller accepts: no scan of every live actor on a call.

use std::collections::BTreeMap;

/// Where an entry stands in a [`Lru`]; kept by the owner of the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

/// Entries of type `K`, oldest use first.
#[derive(Debug)]
pub(crate) struct Lru<K> {
    order: BTreeMap<Tick, K>,
    next: u64,
}

impl<K> Default for Lru<K> {
    fn default() -> Self {
        Lru {
            order: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<K> Lru<K> {
    /// Adds `key` as the most recently used.
    pub(crate) fn insert(&mut self, key: K) -> Tick {
        let tick = Tick(self.next);
        self.next += 1;
        self.order.insert(tick, key);
        tick
    }

    /// Marks the entry at `tick` as just used; returns its new place. An unknown
    /// tick is left alone and returned as it is.
    pub(crate) fn touch(&mut self, tick: Tick) -> Tick {
        match self.order.remove(&tick) {
            Some(key) => self.insert(key),
            None => tick,
        }
    }

    /// Removes the entry at `tick`.
    pub(crate) fn remove(&mut self, tick: Tick) -> Option<K> {
        self.order.remove(&tick)
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Entries from the least recently used on.
    pub(crate) fn oldest_first(&self) -> impl Iterator<Item = (Tick, &K)> {
        self.order.iter().map(|(t, k)| (*t, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_comes_first_and_a_touch_moves_it_last() {
        let mut lru = Lru::default();
        let a = lru.insert("a");
        let b = lru.insert("b");
        let c = lru.insert("c");
        fn order(lru: &Lru<&'static str>) -> Vec<&'static str> {
            lru.oldest_first().map(|(_, k)| *k).collect()
        }
        assert_eq!(order(&lru), ["a", "b", "c"]);
        let a = lru.touch(a);
        assert_eq!(order(&lru), ["b", "c", "a"]);
        assert_eq!(lru.remove(c), Some("c"));
        assert_eq!(lru.touch(c), c, "a removed entry stays removed");
        assert_eq!(order(&lru), ["b", "a"]);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.remove(b), Some("b"));
        assert_eq!(lru.remove(a), Some("a"));
        assert_eq!(lru.len(), 0);
    }
}
