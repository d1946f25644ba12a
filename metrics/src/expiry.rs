//! The expiry queue: stopped label sets waiting for their deadline.
//!
//! Deadlines are `stop time + retention` with one constant retention, so pushes
//! arrive in deadline order and the queue is a FIFO (`VecDeque`), not a heap:
//! push and pop are O(1), and finding what is due never scans. The store pushes
//! on stop and pops the front at the cap (early eviction); the sweeper pops what
//! is due. The queue knows nothing of what it holds.
//!
//! Items may land slightly out of order (a stop pushes after releasing its map
//! lock). An item then waits at most until the one ahead of it is due; the
//! consumer re-checks each item (its epoch) before acting on it.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::prefetch::prefetch;

/// How far past the last item a push asks for memory: a few pushes ahead, so
/// the line is loaded by the time a push writes it. (Past the end of the
/// ring's buffer it asks for nothing of use; a prefetch never faults.)
const PUSH_AHEAD_BYTES: usize = 256;

/// One queued item: what expires, when, and the epoch it was queued at.
#[derive(Debug)]
pub(crate) struct Expiry<T> {
    pub(crate) deadline: Instant,
    pub(crate) item: T,
    pub(crate) epoch: u32,
}

/// A deadline-ordered FIFO of [`Expiry`] items.
#[derive(Debug)]
pub(crate) struct ExpiryQueue<T>(Mutex<VecDeque<Expiry<T>>>);

impl<T> Default for ExpiryQueue<T> {
    fn default() -> Self {
        ExpiryQueue(Mutex::new(VecDeque::new()))
    }
}

impl<T> ExpiryQueue<T> {
    /// Queues `item` to expire at `deadline`.
    pub(crate) fn push(&self, item: Expiry<T>) {
        let mut q = self.0.lock();
        q.push_back(item);
        // The ring's next slots last held an item a whole queue ago, so with
        // many label sets retained their memory is cold, and the unlock would
        // wait for the write. Ask for the line a few pushes ahead now: the
        // adjacent ones are already loaded by the pushes before.
        let (front, back) = q.as_slices();
        let last = if back.is_empty() { front } else { back };
        let ahead = last
            .as_ptr_range()
            .end
            .cast::<u8>()
            .wrapping_add(PUSH_AHEAD_BYTES);
        prefetch(ahead, 64);
    }

    /// The item with the nearest deadline, due or not (early eviction).
    pub(crate) fn pop_front(&self) -> Option<Expiry<T>> {
        self.0.lock().pop_front()
    }

    /// Moves up to `max` items due at `now` into `into`; returns whether more
    /// due items are left.
    pub(crate) fn pop_due(&self, now: Instant, max: usize, into: &mut Vec<Expiry<T>>) -> bool {
        let mut q = self.0.lock();
        let mut taken = 0;
        while taken < max && q.front().is_some_and(|i| i.deadline <= now) {
            into.extend(q.pop_front());
            taken += 1;
        }
        q.front().is_some_and(|i| i.deadline <= now)
    }

    /// Items queued (due or not, stale or not).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn item(q: &ExpiryQueue<u32>, at: Instant, n: u32) {
        q.push(Expiry {
            deadline: at,
            item: n,
            epoch: 1,
        });
    }

    #[test]
    fn pops_what_is_due_inclusive_in_order_and_bounded() {
        let t0 = Instant::now();
        let q = ExpiryQueue::default();
        for n in 0..5 {
            item(&q, t0 + Duration::from_secs(u64::from(n)), n);
        }
        let mut out = Vec::new();
        assert!(!q.pop_due(t0 - Duration::from_millis(1), 10, &mut out));
        assert!(out.is_empty());
        // Due at t0+2 (inclusive): 0, 1, 2; at most 2 per call.
        assert!(q.pop_due(t0 + Duration::from_secs(2), 2, &mut out));
        assert_eq!(out.iter().map(|e| e.item).collect::<Vec<_>>(), [0, 1]);
        assert!(!q.pop_due(t0 + Duration::from_secs(2), 2, &mut out));
        assert_eq!(out.iter().map(|e| e.item).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.pop_front().map(|e| e.item),
            Some(3),
            "eviction takes the nearest"
        );
    }
}
