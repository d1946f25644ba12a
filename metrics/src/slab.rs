//! Slots outside malloc: a [`Slab`] keeps values of one type in slots of
//! 256 KiB chunks, and [`SlotRef`] counts a value's references as an `Arc`
//! would. The store keeps every actor's entry in one (`store::EntryRef`).
//!
//! Why not `Arc<ActorEntry>`: at 100,000 retained actors a register waits on
//! the entry's cold memory, which glibc finds by walking free lists full of
//! small chunks the sweep freed long before (BENCHMARKS.md, "The floor under
//! the ratio"). Here a freed entry's slot is kept for the next register, in
//! chunks of their own, so the small allocations freed around it (label text,
//! labelled blocks, spans) still coalesce in malloc, and the next slot to be
//! handed out is asked for a register ahead.
//!
//! * **Which slot next.** Partly used chunks are kept by address, and a
//!   register takes a free slot of the lowest: the high chunks empty first.
//! * **The bound.** A chunk is made only when every chunk is full, so a slab
//!   never holds more chunks than the peak of live values needs (rounded up
//!   to a chunk) plus one empty chunk kept; another chunk whose slots are all
//!   free goes back to the system at once.
//! * **The lock.** One lock per slab around the free lists, taken once per
//!   value made and once per value freed (by the sweeper, or whoever drops
//!   the last reference); the value itself is written and dropped outside it.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use parking_lot::Mutex;

use crate::prefetch::prefetch;

/// A chunk's bytes.
const CHUNK_BYTES: usize = 256 * 1024;

/// No next free slot.
const NONE: usize = usize::MAX;

/// One value's place: its chunk, its reference count (while free: the index
/// of the next free slot of its chunk), the value.
struct Slot<T: 'static> {
    chunk: *const Chunk<T>,
    refs: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A chunk's free-list head and free count, changed only under its slab's
/// lock.
struct Header {
    free_head: usize,
    free: usize,
}

/// The head of a chunk; its slots follow, from [`Slab::SLOTS_AT`].
struct Chunk<T: 'static> {
    /// Its slab, for a slot given back.
    slab: &'static Slab<T>,
    header: UnsafeCell<Header>,
}

/// Values of one type in slots: the partly used chunks by address, and
/// counts.
pub(crate) struct Slab<T: 'static> {
    state: Mutex<State>,
    _values: PhantomData<fn() -> T>,
}

struct State {
    /// Chunks with at least one free slot, by address.
    partial: BTreeSet<usize>,
    /// Chunks in the slab.
    chunks: usize,
    /// Values in slots.
    live: usize,
    /// Chunks whose slots are all free: at most one is kept.
    empty: usize,
}

impl<T> Slab<T> {
    /// Where a chunk's slots start.
    const SLOTS_AT: usize = size_of::<Chunk<T>>().next_multiple_of(align_of::<Slot<T>>());

    /// Slots per chunk.
    pub(crate) const SLOTS: usize = (CHUNK_BYTES - Self::SLOTS_AT) / size_of::<Slot<T>>();

    /// A chunk's memory.
    const LAYOUT: Layout = match Layout::from_size_align(
        CHUNK_BYTES,
        if align_of::<Slot<T>>() > align_of::<Chunk<T>>() {
            align_of::<Slot<T>>()
        } else {
            align_of::<Chunk<T>>()
        },
    ) {
        Ok(l) => l,
        Err(_) => panic!("a chunk's alignment is a power of two"),
    };

    pub(crate) const fn new() -> Slab<T> {
        Slab {
            state: parking_lot::const_mutex(State {
                partial: BTreeSet::new(),
                chunks: 0,
                live: 0,
                empty: 0,
            }),
            _values: PhantomData,
        }
    }

    /// Chunks held and values in them.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.chunks, s.live)
    }

    /// Slot `i` of `chunk`.
    fn slot(chunk: *const Chunk<T>, i: usize) -> *const Slot<T> {
        chunk
            .cast::<u8>()
            .wrapping_add(Self::SLOTS_AT + i * size_of::<Slot<T>>())
            .cast()
    }

    /// The index of `slot` in its `chunk`.
    fn index(chunk: *const Chunk<T>, slot: *const Slot<T>) -> usize {
        (slot as usize - chunk as usize - Self::SLOTS_AT) / size_of::<Slot<T>>()
    }

    /// A chunk of `slab` with every slot free, linked in order.
    fn chunk(slab: &'static Slab<T>) -> *const Chunk<T> {
        const { assert!(Self::SLOTS > 1, "a value too large for a chunk") };
        // SAFETY: the layout is not zero-sized.
        let p = unsafe { std::alloc::alloc(Self::LAYOUT) }.cast::<Chunk<T>>();
        if p.is_null() {
            std::alloc::handle_alloc_error(Self::LAYOUT);
        }
        // SAFETY: writing every field of the new chunk in place, inside its
        // allocation (`SLOTS` slots fit after `SLOTS_AT`); the values stay
        // uninitialised, which `MaybeUninit` allows.
        unsafe {
            (&raw mut (*p).slab).write(slab);
            (&raw mut (*p).header).write(UnsafeCell::new(Header {
                free_head: 0,
                free: Self::SLOTS,
            }));
            for i in 0..Self::SLOTS {
                let s = Self::slot(p, i).cast_mut();
                (&raw mut (*s).chunk).write(p);
                let next = if i + 1 < Self::SLOTS { i + 1 } else { NONE };
                (&raw mut (*s).refs).write(AtomicUsize::new(next));
                (&raw mut (*s).value).write(UnsafeCell::new(MaybeUninit::uninit()));
            }
        }
        p
    }

    /// Takes a free slot (from a new chunk when every chunk is full), and the
    /// address of the slot the next take will hand out, if known.
    fn take(&'static self) -> (NonNull<Slot<T>>, Option<*const u8>) {
        let mut s = self.state.lock();
        let chunk = match s.partial.first() {
            Some(&c) => c as *const Chunk<T>,
            None => {
                let c = Self::chunk(self);
                s.partial.insert(c as usize);
                s.chunks += 1;
                // Empty until the slot taken below.
                s.empty += 1;
                c
            }
        };
        s.live += 1;
        // SAFETY: the chunk is in `partial`, so it is allocated and has a
        // free slot; its header is changed only under the lock we hold.
        unsafe {
            let h = &mut *(*chunk).header.get();
            if h.free == Self::SLOTS {
                s.empty -= 1;
            }
            let slot = Self::slot(chunk, h.free_head);
            h.free_head = (*slot).refs.load(Ordering::Relaxed);
            h.free -= 1;
            if h.free == 0 {
                s.partial.remove(&(chunk as usize));
            }
            let next = match h.free_head {
                NONE => s.partial.first().map(|&c| {
                    let c = c as *const Chunk<T>;
                    Self::slot(c, (*(*c).header.get()).free_head).cast::<u8>()
                }),
                n => Some(Self::slot(chunk, n).cast::<u8>()),
            };
            (NonNull::new_unchecked(slot.cast_mut()), next)
        }
    }

    /// Gives a slot whose value was dropped back: onto its chunk's free
    /// list, and the chunk back to the system when it is empty and another
    /// empty chunk is kept already.
    fn give_back(&'static self, slot: NonNull<Slot<T>>) {
        let release = {
            let mut s = self.state.lock();
            s.live -= 1;
            // SAFETY: the slot's chunk is allocated while one of its slots is
            // used; the header is changed only under the lock we hold.
            unsafe {
                let slot = slot.as_ref();
                let chunk = slot.chunk;
                let h = &mut *(*chunk).header.get();
                slot.refs.store(h.free_head, Ordering::Relaxed);
                h.free_head = Self::index(chunk, slot);
                h.free += 1;
                if h.free == 1 {
                    s.partial.insert(chunk as usize);
                }
                // One empty chunk is kept, so that a count of values going up
                // and down across a chunk's edge does not make and free a
                // chunk each time; another goes back to the system.
                if h.free < Self::SLOTS {
                    None
                } else if s.empty == 0 {
                    s.empty = 1;
                    None
                } else {
                    s.partial.remove(&(chunk as usize));
                    s.chunks -= 1;
                    Some(chunk)
                }
            }
        };
        if let Some(chunk) = release {
            // SAFETY: made by `Slab::chunk` with `LAYOUT`, empty (no value to
            // drop), out of the slab: nothing refers into it.
            unsafe { std::alloc::dealloc(chunk.cast_mut().cast(), Self::LAYOUT) };
        }
    }
}

/// A counted reference to a value in a slab, like an `Arc`.
pub(crate) struct SlotRef<T: 'static> {
    slot: NonNull<Slot<T>>,
}

// SAFETY: a `SlotRef` is a shared reference to a `T` with an atomic count,
// as `Arc` is, and is `Send` and `Sync` on the same terms.
unsafe impl<T: Send + Sync> Send for SlotRef<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for SlotRef<T> {}

impl<T> SlotRef<T> {
    /// Puts `value` in a free slot of `slab`.
    pub(crate) fn new_in(value: T, slab: &'static Slab<T>) -> SlotRef<T> {
        let (slot, next) = slab.take();
        // SAFETY: the slot was free: nobody else reads or writes it.
        unsafe {
            let s = slot.as_ref();
            (*s.value.get()).write(value);
            s.refs.store(1, Ordering::Release);
        }
        // The next slot to be handed out, cold since its value was freed:
        // asked for now so that the next one made does not wait for it.
        if let Some(p) = next {
            prefetch(p, size_of::<Slot<T>>());
        }
        SlotRef { slot }
    }

    /// Whether both refer to the same value.
    #[inline]
    pub(crate) fn ptr_eq(a: &SlotRef<T>, b: &SlotRef<T>) -> bool {
        a.slot == b.slot
    }

    /// The value's address (for prefetching, and as an identity).
    #[inline]
    pub(crate) fn as_ptr(this: &SlotRef<T>) -> *const T {
        // SAFETY: the slot is allocated while a reference exists.
        unsafe { (*this.slot.as_ref().value.get()).as_ptr() }
    }
}

impl<T> std::ops::Deref for SlotRef<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the value was written before the first reference was made
        // and is dropped only after the last one goes.
        unsafe { (*self.slot.as_ref().value.get()).assume_init_ref() }
    }
}

impl<T> Clone for SlotRef<T> {
    #[inline]
    fn clone(&self) -> SlotRef<T> {
        // SAFETY: the slot is allocated while a reference exists.
        let old = unsafe { self.slot.as_ref() }
            .refs
            .fetch_add(1, Ordering::Relaxed);
        // As `Arc`: a count this high means references are leaked in a loop.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        SlotRef { slot: self.slot }
    }
}

impl<T> Drop for SlotRef<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the slot is allocated while a reference exists.
        let slot = unsafe { self.slot.as_ref() };
        if slot.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the last reference: nobody else reads the value. Its slab
        // outlives every chunk (it is `'static`).
        unsafe {
            (*slot.value.get()).assume_init_drop();
            (*slot.chunk).slab.give_back(self.slot);
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for SlotRef<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    use super::*;

    /// A value that counts its drops and carries text to read back.
    struct Item {
        text: String,
        drops: Arc<AtomicUsize>,
    }

    impl Drop for Item {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    type Ref = SlotRef<Item>;
    const SLOTS: usize = Slab::<Item>::SLOTS;

    fn slab() -> &'static Slab<Item> {
        Box::leak(Box::new(Slab::new()))
    }

    fn item(slab: &'static Slab<Item>, drops: &Arc<AtomicUsize>, id: usize) -> Ref {
        let text = format!("{id}:1");
        SlotRef::new_in(
            Item {
                text,
                drops: drops.clone(),
            },
            slab,
        )
    }

    #[test]
    fn chunks_follow_the_peak_and_all_but_one_empty_chunk_go_back() {
        let (slab, drops) = (slab(), Arc::new(AtomicUsize::new(0)));
        let n = 3 * SLOTS + 5;
        let mut all: Vec<_> = (0..n).map(|i| item(slab, &drops, i)).collect();
        assert_eq!(slab.counts(), (4, n));
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.text, format!("{i}:1"));
        }
        // Half out, half in: the freed slots are used, no chunk is made.
        let rest = all.split_off(n / 2);
        drop(all);
        assert_eq!(slab.counts().1, n - n / 2);
        assert_eq!(drops.load(Ordering::Relaxed), n / 2);
        let again: Vec<_> = (0..n / 2).map(|i| item(slab, &drops, i)).collect();
        assert_eq!(slab.counts(), (4, n));
        drop((rest, again));
        assert_eq!(slab.counts(), (1, 0), "one empty chunk kept");
        assert_eq!(
            drops.load(Ordering::Relaxed),
            n + n / 2,
            "each dropped once"
        );
        let one = item(slab, &drops, 0);
        assert_eq!(slab.counts(), (1, 1), "the kept chunk is used");
        drop(one);
    }

    #[test]
    fn a_value_takes_the_lowest_chunk_with_room() {
        let (slab, drops) = (slab(), Arc::new(AtomicUsize::new(0)));
        let all: Vec<_> = (0..3 * SLOTS).map(|i| item(slab, &drops, i)).collect();
        // SAFETY: the slots are allocated while `all` holds them.
        let chunk_of = |e: &Ref| unsafe { e.slot.as_ref().chunk } as usize;
        let mut chunks: Vec<usize> = all.iter().map(chunk_of).collect();
        chunks.dedup();
        assert_eq!(chunks.len(), 3);
        let (low, high) = (*chunks.iter().min().unwrap(), *chunks.iter().max().unwrap());
        let in_low = all.iter().position(|e| chunk_of(e) == low).unwrap();
        let in_high = all.iter().position(|e| chunk_of(e) == high).unwrap();
        let (low_at, high_at) = (
            SlotRef::as_ptr(&all[in_low]),
            SlotRef::as_ptr(&all[in_high]),
        );
        let mut all: Vec<Option<Ref>> = all.into_iter().map(Some).collect();
        all[in_high] = None;
        all[in_low] = None;
        let next = item(slab, &drops, 0);
        assert_eq!(SlotRef::as_ptr(&next), low_at, "the low chunk's free slot");
        let after = item(slab, &drops, 1);
        assert_eq!(SlotRef::as_ptr(&after), high_at);
        assert_eq!(slab.counts(), (3, 3 * SLOTS));
    }

    /// Four threads make values and hand two more references of each to
    /// the other threads, which read it and drop them: every value is read
    /// whole wherever its last reference goes, and dropped exactly once.
    #[test]
    fn references_shared_across_threads_drop_each_value_once() {
        const THREADS: usize = 4;
        const EACH: usize = 20_000;
        let (slab, drops) = (slab(), Arc::new(AtomicUsize::new(0)));
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
        let read = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for (t, rx) in rxs.into_iter().enumerate() {
                let txs = txs.clone();
                let (drops, read) = (&drops, &read);
                s.spawn(move || {
                    let check = |(id, e): (usize, Ref)| {
                        assert_eq!(e.text, format!("{id}:1"));
                        read.fetch_add(1, Ordering::Relaxed);
                    };
                    for i in 0..EACH {
                        let id = t * EACH + i;
                        let e = item(slab, drops, id);
                        txs[(t + 1) % THREADS].send((id, e.clone())).unwrap();
                        txs[(t + 2) % THREADS].send((id, e)).unwrap();
                        while let Ok(got) = rx.try_recv() {
                            check(got);
                        }
                    }
                    drop(txs);
                    rx.into_iter().for_each(check);
                });
            }
            drop(txs);
        });
        assert_eq!(read.load(Ordering::Relaxed), 2 * THREADS * EACH);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            THREADS * EACH,
            "each dropped once"
        );
        assert_eq!(slab.counts(), (1, 0), "one empty chunk kept");
    }
}
