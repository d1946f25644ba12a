//! Entry slots outside malloc: every [`ActorEntry`] lives in a slot of a
//! chunk of fixed-size slots, and [`EntryRef`] counts its references as an
//! `Arc` would.
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
//! * **The bound.** A chunk is made only when every chunk is full, so the
//!   slab never holds more chunks than the peak of live entries needs
//!   (rounded up to a chunk of [`SLOTS`] slots) plus one empty chunk kept;
//!   another chunk whose slots are all free goes back to the system at once.
//! * **The lock.** One process-wide lock around the free lists, taken once
//!   per register and once per freed entry (by the sweeper, or whoever drops
//!   the last reference); the entry itself is written and dropped outside it.

use std::cell::UnsafeCell;
use std::collections::BTreeSet;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use parking_lot::Mutex;

use crate::prefetch::prefetch;
use crate::store::ActorEntry;

/// Slots per chunk: about 256 KiB of entries.
pub(crate) const SLOTS: usize = 256 * 1024 / size_of::<Slot>();

/// No next free slot.
const NONE: usize = usize::MAX;

/// One entry's place: its chunk, its reference count (while free: the index
/// of the next free slot of its chunk), the entry.
struct Slot {
    chunk: *const Chunk,
    refs: AtomicUsize,
    entry: UnsafeCell<MaybeUninit<ActorEntry>>,
}

/// A chunk's free-list head and free count, changed only under its slab's
/// lock.
struct Header {
    free_head: usize,
    free: usize,
}

struct Chunk {
    /// Its slab, for a slot given back.
    slab: &'static Slab,
    header: UnsafeCell<Header>,
    slots: [Slot; SLOTS],
}

/// A slab: the partly used chunks by address, and its counts. The store
/// uses one for the whole process ([`EntryRef::new`]).
pub(crate) struct Slab {
    state: Mutex<State>,
}

struct State {
    /// Chunks with at least one free slot, by address.
    partial: BTreeSet<usize>,
    /// Chunks in the slab.
    chunks: usize,
    /// Entries in slots.
    live: usize,
    /// Chunks whose slots are all free: at most one is kept.
    empty: usize,
}

static SLAB: Slab = Slab::new();

impl Slab {
    const fn new() -> Slab {
        Slab {
            state: parking_lot::const_mutex(State {
                partial: BTreeSet::new(),
                chunks: 0,
                live: 0,
                empty: 0,
            }),
        }
    }

    /// Chunks held and entries in them.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.chunks, s.live)
    }
}

/// A counted reference to an entry in the slab, like `Arc<ActorEntry>`.
pub(crate) struct EntryRef {
    slot: NonNull<Slot>,
}

// SAFETY: an `EntryRef` is a shared reference to an `ActorEntry` with an
// atomic count, as `Arc` is; `ActorEntry` is `Send + Sync` (asserted below).
unsafe impl Send for EntryRef {}
// SAFETY: as above.
unsafe impl Sync for EntryRef {}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<ActorEntry>();
};

impl EntryRef {
    /// Puts `entry` in a free slot of the process's slab.
    #[inline]
    pub(crate) fn new(entry: ActorEntry) -> EntryRef {
        EntryRef::new_in(entry, &SLAB)
    }

    /// Puts `entry` in a free slot of `slab` (a new chunk when every chunk is
    /// full).
    pub(crate) fn new_in(entry: ActorEntry, slab: &'static Slab) -> EntryRef {
        let (slot, next) = {
            let mut s = slab.state.lock();
            let chunk = match s.partial.first() {
                Some(&c) => c as *const Chunk,
                None => {
                    let c = Chunk::new(slab);
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
                if h.free == SLOTS {
                    s.empty -= 1;
                }
                let i = h.free_head;
                let slot = &(*chunk).slots[i];
                h.free_head = slot.refs.load(Ordering::Relaxed);
                h.free -= 1;
                if h.free == 0 {
                    s.partial.remove(&(chunk as usize));
                }
                let next = match h.free_head {
                    NONE => s.partial.first().map(|&c| {
                        let c = c as *const Chunk;
                        let h = &*(*c).header.get();
                        (&raw const (*c).slots[h.free_head]).cast::<u8>()
                    }),
                    n => Some((&raw const (*chunk).slots[n]).cast::<u8>()),
                };
                (NonNull::from(slot), next)
            }
        };
        // SAFETY: the slot was free: nobody else reads or writes it.
        unsafe {
            let s = slot.as_ref();
            (*s.entry.get()).write(entry);
            s.refs.store(1, Ordering::Release);
        }
        // The next register's slot, cold since its entry was freed: asked
        // for now so that the next register does not wait for it.
        if let Some(p) = next {
            prefetch(p, size_of::<Slot>());
        }
        EntryRef { slot }
    }

    /// Whether both refer to the same entry.
    #[inline]
    pub(crate) fn ptr_eq(a: &EntryRef, b: &EntryRef) -> bool {
        a.slot == b.slot
    }

    /// The entry's address (for prefetching, and as an identity).
    #[inline]
    pub(crate) fn as_ptr(this: &EntryRef) -> *const ActorEntry {
        // SAFETY: the slot is allocated while a reference exists.
        unsafe { (*this.slot.as_ref().entry.get()).as_ptr() }
    }
}

impl std::ops::Deref for EntryRef {
    type Target = ActorEntry;
    #[inline]
    fn deref(&self) -> &ActorEntry {
        // SAFETY: the entry was written before the first reference was made
        // and is dropped only after the last one goes.
        unsafe { (*self.slot.as_ref().entry.get()).assume_init_ref() }
    }
}

impl Clone for EntryRef {
    #[inline]
    fn clone(&self) -> EntryRef {
        // SAFETY: the slot is allocated while a reference exists.
        let old = unsafe { self.slot.as_ref() }
            .refs
            .fetch_add(1, Ordering::Relaxed);
        // As `Arc`: a count this high means references are leaked in a loop.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        EntryRef { slot: self.slot }
    }
}

impl Drop for EntryRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the slot is allocated while a reference exists.
        let slot = unsafe { self.slot.as_ref() };
        if slot.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the last reference: nobody else reads the entry.
        unsafe { (*slot.entry.get()).assume_init_drop() };
        free(self.slot);
    }
}

impl std::fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Gives a slot back: onto its chunk's free list, and the chunk back to
/// the system when it is empty and another empty chunk is kept already.
fn free(slot: NonNull<Slot>) {
    // SAFETY: the slot's chunk is allocated while one of its slots is used,
    // and its slab never changes.
    let (chunk, slab) = unsafe {
        let chunk = slot.as_ref().chunk;
        (chunk, (*chunk).slab)
    };
    let release = {
        let mut s = slab.state.lock();
        s.live -= 1;
        // SAFETY: as above; the header is changed only under the lock we hold.
        unsafe {
            let slot = slot.as_ref();
            let h = &mut *(*chunk).header.get();
            let i = slot_index(chunk, slot);
            slot.refs.store(h.free_head, Ordering::Relaxed);
            h.free_head = i;
            h.free += 1;
            if h.free == 1 {
                s.partial.insert(chunk as usize);
            }
            // One empty chunk is kept, so that a count of entries going up
            // and down across a chunk's edge does not make and free a chunk
            // each time; another goes back to the system.
            if h.free < SLOTS {
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
        // SAFETY: made by `Chunk::new` with `Box`, empty, out of the slab.
        drop(unsafe { Box::from_raw(chunk.cast_mut()) });
    }
}

/// The index of `slot` in `chunk`.
fn slot_index(chunk: *const Chunk, slot: &Slot) -> usize {
    // SAFETY: `chunk` is the slot's own chunk.
    let first = unsafe { (&raw const (*chunk).slots).cast::<Slot>() };
    (std::ptr::from_ref(slot) as usize - first as usize) / size_of::<Slot>()
}

impl Chunk {
    /// A chunk with every slot free, linked in order.
    fn new(slab: &'static Slab) -> *const Chunk {
        let mut b = Box::<Chunk>::new_uninit();
        let p = b.as_mut_ptr();
        // SAFETY: writing every field of the uninitialised chunk in place
        // (the entries stay uninitialised, which `MaybeUninit` allows).
        unsafe {
            (&raw mut (*p).slab).write(slab);
            (&raw mut (*p).header).write(UnsafeCell::new(Header {
                free_head: 0,
                free: SLOTS,
            }));
            for i in 0..SLOTS {
                let s = (&raw mut (*p).slots).cast::<Slot>().add(i);
                (&raw mut (*s).chunk).write(p);
                (&raw mut (*s).refs).write(AtomicUsize::new(if i + 1 < SLOTS {
                    i + 1
                } else {
                    NONE
                }));
                (&raw mut (*s).entry).write(UnsafeCell::new(MaybeUninit::uninit()));
            }
            Box::into_raw(b.assume_init())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;

    use parking_lot::RwLock;

    use super::*;
    use crate::exemplar::HistogramExemplars;
    use crate::families::ActorSeries;
    use crate::labels::ActorLabels;
    use crate::store::TypeInner;

    fn slab() -> &'static Slab {
        Box::leak(Box::new(Slab::new()))
    }

    fn ty() -> Arc<TypeInner> {
        Arc::new(TypeInner {
            index: 0,
            name: "t".into(),
            retired: ActorSeries::default(),
            actions: RwLock::new(Vec::new()),
            promotions: Default::default(),
            commit_exemplars: HistogramExemplars::default(),
        })
    }

    fn entry(slab: &'static Slab, ty: &Arc<TypeInner>, id: usize) -> EntryRef {
        let labels = ActorLabels::new(&id.to_string(), Some(1), "k", Arc::from("e"), 256);
        EntryRef::new_in(ActorEntry::new(labels, ty.clone(), false), slab)
    }

    #[test]
    fn chunks_follow_the_peak_and_all_but_one_empty_chunk_go_back() {
        let (slab, ty) = (slab(), ty());
        let n = 3 * SLOTS + 5;
        let mut all: Vec<_> = (0..n).map(|i| entry(slab, &ty, i)).collect();
        assert_eq!(slab.counts(), (4, n));
        assert_eq!(Arc::strong_count(&ty), n + 1);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.labels.actor_id_gen(), format!("{i}:1"));
        }
        // Half out, half in: the freed slots are used, no chunk is made.
        let rest = all.split_off(n / 2);
        drop(all);
        assert_eq!(slab.counts().1, n - n / 2);
        let again: Vec<_> = (0..n / 2).map(|i| entry(slab, &ty, i)).collect();
        assert_eq!(slab.counts(), (4, n));
        drop((rest, again));
        assert_eq!(slab.counts(), (1, 0), "one empty chunk kept");
        assert_eq!(Arc::strong_count(&ty), 1, "every entry dropped once");
        let one = entry(slab, &ty, 0);
        assert_eq!(slab.counts(), (1, 1), "the kept chunk is used");
        drop(one);
    }

    #[test]
    fn a_register_takes_the_lowest_chunk_with_room() {
        let (slab, ty) = (slab(), ty());
        let all: Vec<_> = (0..3 * SLOTS).map(|i| entry(slab, &ty, i)).collect();
        let chunk_of = |e: &EntryRef| unsafe { e.slot.as_ref().chunk } as usize;
        let mut chunks: Vec<usize> = all.iter().map(chunk_of).collect();
        chunks.dedup();
        assert_eq!(chunks.len(), 3);
        let (low, high) = (*chunks.iter().min().unwrap(), *chunks.iter().max().unwrap());
        let in_low = all.iter().position(|e| chunk_of(e) == low).unwrap();
        let in_high = all.iter().position(|e| chunk_of(e) == high).unwrap();
        let (low_at, high_at) = (
            EntryRef::as_ptr(&all[in_low]),
            EntryRef::as_ptr(&all[in_high]),
        );
        let mut all: Vec<Option<EntryRef>> = all.into_iter().map(Some).collect();
        all[in_high] = None;
        all[in_low] = None;
        let next = entry(slab, &ty, 0);
        assert_eq!(EntryRef::as_ptr(&next), low_at, "the low chunk's free slot");
        let after = entry(slab, &ty, 1);
        assert_eq!(EntryRef::as_ptr(&after), high_at);
        assert_eq!(slab.counts(), (3, 3 * SLOTS));
    }

    /// Four threads make entries and hand two more references of each to
    /// the other threads, which read it and drop them: every entry is read
    /// whole wherever its last reference goes, and dropped exactly once.
    #[test]
    fn references_shared_across_threads_drop_each_entry_once() {
        const THREADS: usize = 4;
        const EACH: usize = 20_000;
        let (slab, ty) = (slab(), ty());
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
        let read = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for (t, rx) in rxs.into_iter().enumerate() {
                let txs = txs.clone();
                let (ty, read) = (&ty, &read);
                s.spawn(move || {
                    for i in 0..EACH {
                        let id = t * EACH + i;
                        let e = entry(slab, ty, id);
                        txs[(t + 1) % THREADS].send((id, e.clone())).unwrap();
                        txs[(t + 2) % THREADS].send((id, e)).unwrap();
                        while let Ok((id, e)) = rx.try_recv() {
                            assert_eq!(e.labels.actor_id_gen(), format!("{id}:1"));
                            read.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    drop(txs);
                    for (id, e) in rx {
                        assert_eq!(e.labels.actor_id_gen(), format!("{id}:1"));
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            drop(txs);
        });
        assert_eq!(read.load(Ordering::Relaxed), 2 * THREADS * EACH);
        assert_eq!(slab.counts().1, 0);
        assert_eq!(slab.counts().0, 1, "one empty chunk kept");
        assert_eq!(Arc::strong_count(&ty), 1, "every entry dropped once");
    }
}
