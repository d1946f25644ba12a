//! Recycled entry memory: what the sweep frees, a register takes back.
//!
//! With many actors retained, the memory malloc hands a register was last
//! touched by a sweep long before, and sits in no cache; writing an entry into
//! it, and malloc's own walk over its free chunks, wait on memory
//! (BENCHMARKS.md, "lifecycle"). The sweep instead keeps the allocations of the
//! entries it removed (their values dropped, their memory kept) on a stack, and
//! a register takes the one on top, the last freed, and asks the CPU for the
//! next one's lines, so the next register finds them loaded.
//!
//! Bounded twice: at most `max` allocations are kept (the host's
//! `--entry-pool-bytes`), and each sweep first frees whatever the previous one
//! kept and no register took, so after churn ends nothing stays past two sweeps.
//!
//! Only an allocation no one else holds is kept: a scrape's snapshot or a
//! top-N row still holding a removed entry drops it as before.

use std::mem::MaybeUninit;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::prefetch::prefetch;

/// A stack of allocations of `T` whose values were dropped.
pub(crate) struct Recycler<T> {
    kept: Mutex<Vec<Arc<MaybeUninit<T>>>>,
    max: usize,
}

impl<T> Recycler<T> {
    /// A recycler keeping at most `bytes` of allocations (0 keeps none).
    pub(crate) fn with_bytes(bytes: usize) -> Self {
        Recycler {
            kept: Mutex::new(Vec::new()),
            max: bytes / Self::allocation_bytes(),
        }
    }

    /// The bytes one kept allocation takes: the value and its two counts.
    pub(crate) const fn allocation_bytes() -> usize {
        size_of::<T>() + 2 * size_of::<usize>()
    }

    /// The last allocation given back, if any and the stack is not busy (a
    /// register never waits for it); asks for the next one's lines.
    pub(crate) fn take(&self) -> Option<Arc<MaybeUninit<T>>> {
        if self.max == 0 {
            return None;
        }
        let mut kept = self.kept.try_lock()?;
        let top = kept.pop();
        if let Some(next) = kept.last() {
            prefetch(Arc::as_ptr(next).cast(), size_of::<T>());
        }
        top
    }

    /// `value` in `slot` when there is one, else in a new allocation.
    pub(crate) fn fill(slot: Option<Arc<MaybeUninit<T>>>, value: T) -> Arc<T> {
        match slot {
            Some(mut slot) => match Arc::get_mut(&mut slot) {
                Some(memory) => {
                    memory.write(value);
                    // SAFETY: written just above.
                    unsafe { slot.assume_init() }
                }
                // Never: a kept allocation has no other holder.
                None => Arc::new(value),
            },
            None => Arc::new(value),
        }
    }

    /// Puts back an allocation [`Recycler::take`] gave and no one used.
    pub(crate) fn put_back(&self, slot: Arc<MaybeUninit<T>>) {
        if let Some(mut kept) = self.kept.try_lock()
            && kept.len() < self.max
        {
            kept.push(slot);
        }
    }

    /// Keeps the allocations of `values` that no one else holds, their values
    /// dropped, up to the bound; drops the rest as usual. Empties `values`.
    pub(crate) fn give_back(&self, values: &mut Vec<Arc<T>>) {
        if self.max == 0 {
            values.clear();
            return;
        }
        let mut freed = Vec::with_capacity(values.len());
        for v in values.drain(..) {
            if let Some(slot) = Self::emptied(v) {
                freed.push(slot);
            }
        }
        let mut kept = self.kept.lock();
        let room = self.max.saturating_sub(kept.len());
        let over = freed.len().saturating_sub(room);
        // The last freed are the warmest: keep those, on top.
        kept.extend(freed.drain(over..));
        drop(kept);
        drop(freed);
    }

    /// Frees every kept allocation: the sweep calls it before it gives back
    /// its own, so what one sweep kept lives until the next at most.
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut *self.kept.lock());
        drop(old);
    }

    /// Allocations kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.lock().len()
    }

    /// `v`'s allocation with its value dropped, if no one else holds it; else
    /// `None` and `v` dropped as usual.
    fn emptied(mut v: Arc<T>) -> Option<Arc<MaybeUninit<T>>> {
        Arc::get_mut(&mut v)?;
        let raw = Arc::into_raw(v).cast_mut();
        // SAFETY: `get_mut` proved this the only `Arc` (no other strong or
        // weak reference), so no one reads the value again; it is dropped
        // once, here. `MaybeUninit<T>` has the size and alignment of `T`,
        // which is what `Arc::from_raw` requires of a pointer from
        // `Arc::<T>::into_raw`, and from here on the value is treated as
        // uninitialised, so it is not dropped a second time.
        unsafe {
            std::ptr::drop_in_place(raw);
            Some(Arc::from_raw(raw.cast::<MaybeUninit<T>>()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its drops.
    struct Counted<'a>(&'a AtomicUsize, u64);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn recycler<'a>(n: usize) -> Recycler<Counted<'a>> {
        Recycler::with_bytes(n * Recycler::<Counted<'a>>::allocation_bytes())
    }

    #[test]
    fn a_register_takes_the_last_freed_allocation_with_its_value_dropped_once() {
        let drops = AtomicUsize::new(0);
        let r = recycler(4);
        let mut values: Vec<_> = (0..3).map(|i| Arc::new(Counted(&drops, i))).collect();
        let last = Arc::as_ptr(&values[2]).cast::<u8>();
        r.give_back(&mut values);
        assert!(values.is_empty());
        assert_eq!(drops.load(Ordering::SeqCst), 3, "every value dropped");
        assert_eq!(r.len(), 3);
        let slot = r.take().expect("one kept");
        assert_eq!(
            Arc::as_ptr(&slot).cast::<u8>(),
            last,
            "the last freed first"
        );
        let reused = Recycler::fill(Some(slot), Counted(&drops, 7));
        assert_eq!(reused.1, 7);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "filling drops nothing");
        drop(reused);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4,
            "the new value drops with it"
        );
        r.clear();
        assert_eq!(r.len(), 0);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4,
            "kept memory holds no value"
        );
    }

    #[test]
    fn an_allocation_someone_else_holds_is_not_kept_and_its_value_lives() {
        let drops = AtomicUsize::new(0);
        let r = recycler(4);
        let held = Arc::new(Counted(&drops, 1));
        let watched = Arc::new(Counted(&drops, 2));
        let weak = Arc::downgrade(&watched);
        let mut values = vec![held.clone(), watched];
        r.give_back(&mut values);
        assert_eq!(
            r.len(),
            0,
            "`held` is shared; the other has a weak reference"
        );
        assert_eq!(held.1, 1);
        assert!(weak.upgrade().is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "only the weakly held one");
    }

    #[test]
    fn it_keeps_at_most_its_bound_the_last_freed_and_none_at_zero() {
        let drops = AtomicUsize::new(0);
        let r = recycler(2);
        let mut values: Vec<_> = (0..5).map(|i| Arc::new(Counted(&drops, i))).collect();
        let ptrs: Vec<_> = values.iter().map(|v| Arc::as_ptr(v).cast::<u8>()).collect();
        r.give_back(&mut values);
        assert_eq!(r.len(), 2);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        let a = r.take().expect("kept");
        let b = r.take().expect("kept");
        assert_eq!(Arc::as_ptr(&a).cast::<u8>(), ptrs[4]);
        assert_eq!(Arc::as_ptr(&b).cast::<u8>(), ptrs[3]);
        assert!(r.take().is_none());
        r.put_back(a);
        r.put_back(b);
        r.put_back(Arc::new_uninit());
        assert_eq!(r.len(), 2, "put_back keeps the bound too");

        let none = recycler(0);
        let mut values = vec![Arc::new(Counted(&drops, 9))];
        none.give_back(&mut values);
        assert!(none.take().is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 6);
    }

    /// Threads give back and take at once; every value is dropped exactly
    /// once and every taken allocation is filled and read back intact.
    #[test]
    fn concurrent_give_back_and_take_drop_each_value_exactly_once() {
        const THREADS: usize = 4;
        const ROUNDS: u64 = 2_000;
        let drops = AtomicUsize::new(0);
        let r = recycler(64);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (r, drops) = (&r, &drops);
                s.spawn(move || {
                    for i in 0..ROUNDS {
                        let n = (t as u64) << 32 | i;
                        let v = Recycler::fill(r.take(), Counted(drops, n));
                        assert_eq!(v.1, n);
                        r.give_back(&mut vec![v]);
                    }
                });
            }
        });
        assert_eq!(
            drops.load(Ordering::SeqCst),
            THREADS * ROUNDS as usize,
            "each value dropped once"
        );
        r.clear();
        assert_eq!(drops.load(Ordering::SeqCst), THREADS * ROUNDS as usize);
    }
}
