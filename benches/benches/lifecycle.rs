//! One actor lifecycle: register a new label set, record one event, stop and
//! drop the last handle, with 1k or 100k label sets already retained (registered
//! and stopped); and a baseline that also scans a 100k-entry `scc::HashMap`
//! (`retain_sync`) on register and on drop, as a cleanup-on-lifecycle design does.
//! `threads_2_100k` runs the same lifecycles on two threads at once (wall
//! time per lifecycle). The `floor_*` pairs are the store reduced to its map and memory over the same
//! window (see [`FloorMap`]): what they cost more at 100k than at 1k, the
//! store cannot go below with their design.
//!
//! Keeping the retained count fixed: each timed operation leaves one more
//! stopped label set behind, and criterion runs millions of them, so left alone
//! the "1k" map would end up holding millions. The retained set is therefore a
//! sliding window: operations run in chunks of `N/10`; the manual clock stands at
//! `c` seconds during chunk `c` and retention is 10 s, so after each chunk an
//! untimed `sweep` removes exactly the chunk that is 10 chunks old. The timed
//! part always sees between `N` and `1.1 N` retained label sets. Ids are
//! formatted per chunk, outside the timed part.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_benches::{ENVOY, ManualClock, bench_metrics};
use actor_metrics::{ActorType, Metrics};
use criterion::{Criterion, criterion_group, criterion_main};

/// Chunks in the retention window.
const WINDOW_CHUNKS: u64 = 10;

struct Churn {
    m: Metrics,
    clock: Arc<ManualClock>,
    ty: ActorType,
    retained: usize,
    chunk_len: usize,
    /// The chunk being filled; the clock stands at `chunk` seconds.
    chunk: u64,
    /// Operations already done in the current chunk.
    filled: usize,
    ids: Vec<String>,
    next_id: u64,
    /// The cleanup-on-lifecycle baseline's map, scanned on register and on drop.
    scan: Option<scc::HashMap<String, u64>>,
}

impl Churn {
    fn new(retained: usize, scan_baseline: bool) -> Self {
        let clock = ManualClock::new();
        let m = bench_metrics(clock.clone(), Duration::from_secs(WINDOW_CHUNKS));
        let ty = m.actor_type("counter");
        let chunk_len = retained / WINDOW_CHUNKS as usize;
        let mut churn = Churn {
            m,
            clock,
            ty,
            retained,
            chunk_len,
            chunk: 0,
            filled: 0,
            ids: Vec::new(),
            next_id: 0,
            scan: None,
        };
        // Prefill: WINDOW_CHUNKS chunks of registered-and-stopped label sets.
        for _ in 0..WINDOW_CHUNKS {
            churn.format_ids();
            for id in &churn.ids {
                let a = churn.ty.register(id, Some(1), "user");
                a.queue_messages_sent_total().inc();
                a.stopped();
            }
            churn.chunk += 1;
            churn.clock.set(Duration::from_secs(churn.chunk));
        }
        churn.format_ids();
        assert_eq!(churn.m.retained_len(), retained);
        if scan_baseline {
            let map = scc::HashMap::with_capacity(100_000);
            for i in 0..100_000u64 {
                let _ = map.insert_sync(format!("actor-{i:07}:1"), i);
            }
            churn.scan = Some(map);
        }
        churn
    }

    fn format_ids(&mut self) {
        self.ids.clear();
        for _ in 0..self.chunk_len {
            self.ids.push(format!("churn-{}", self.next_id));
            self.next_id += 1;
        }
    }

    /// Untimed: drop the chunk that left the window, start the next one.
    fn next_chunk(&mut self) {
        // Chunk `c - WINDOW_CHUNKS` has deadline `c` s; nothing newer is due.
        let report = self.m.sweep(self.clock.at(Duration::from_secs(self.chunk)));
        assert_eq!(report.removed, self.chunk_len, "exactly one chunk expired");
        assert_eq!(self.m.retained_len(), self.retained);
        self.chunk += 1;
        self.clock.set(Duration::from_secs(self.chunk));
        self.filled = 0;
        self.format_ids();
    }

    /// Runs `iters` lifecycles, `stretch` doing each stretch of a chunk's
    /// ids; returns the time spent in the stretches only.
    fn drive(
        &mut self,
        iters: u64,
        mut stretch: impl FnMut(&ActorType, Option<&scc::HashMap<String, u64>>, &[String]),
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let take = left.min(self.chunk_len - self.filled);
            let ids = &self.ids[self.filled..self.filled + take];
            let start = Instant::now();
            stretch(&self.ty, self.scan.as_ref(), ids);
            total += start.elapsed();
            self.filled += take;
            left -= take;
            if self.filled == self.chunk_len {
                self.next_chunk();
            }
        }
        total
    }

    /// Runs `iters` lifecycles; returns the time spent in them only.
    fn run(&mut self, iters: u64) -> Duration {
        self.drive(iters, |ty, scan, ids| match scan {
            None => ids.iter().for_each(|id| lifecycle_of(ty, id)),
            Some(map) => {
                let scan = || map.retain_sync(|_, v| black_box(*v) != u64::MAX);
                for id in ids {
                    scan();
                    let a = ty.register(id, Some(1), "user");
                    a.queue_messages_sent_total().inc();
                    scan();
                    a.stopped();
                    drop(black_box(a));
                }
            }
        })
    }

    /// Runs `iters` lifecycles split over `threads` threads at once (each
    /// stretch of a chunk split evenly); returns the wall time spent in them.
    /// What it adds over `run` is what the threads contend for.
    fn run_threads(&mut self, iters: u64, threads: usize) -> Duration {
        self.drive(iters, |ty, _, ids| {
            std::thread::scope(|s| {
                for part in ids.chunks(ids.len().div_ceil(threads)) {
                    s.spawn(move || part.iter().for_each(|id| lifecycle_of(ty, id)));
                }
            })
        })
    }
}

/// One timed lifecycle: register, one event, stop, drop.
fn lifecycle_of(ty: &ActorType, id: &str) {
    let a = ty.register(id, Some(1), "user");
    a.queue_messages_sent_total().inc();
    a.stopped();
    drop(black_box(a));
}

/// The floor under `retained_*`: the store reduced to its map and its memory,
/// over the same sliding window (chunks of `N/10`, the oldest removed untimed).
/// One operation is what a register and a stop do to them: insert a new label
/// set with an entry-sized block written, then look it up again. What a floor
/// costs more at 100k than at 1k is the map and the memory, which the store
/// cannot go below with that design.
trait FloorMap {
    fn new() -> Self;
    /// One register and stop of the label set `text`.
    fn op(&mut self, text: &str, n: u64);
    /// Untimed: the sweep's removal of `text`.
    fn remove(&mut self, text: &str);
    fn len(&self) -> usize;
}

/// The bytes of an entry (`ActorEntry` is 776 bytes).
const ENTRY_WORDS: usize = 97;

/// The store's design: the map keyed on the label text in its own
/// allocation, the value a fresh entry-sized allocation per register.
struct MallocMap(scc::HashMap<Arc<str>, Arc<[u64; ENTRY_WORDS]>>);

impl FloorMap for MallocMap {
    fn new() -> Self {
        MallocMap(scc::HashMap::with_capacity(1 << 17))
    }

    fn op(&mut self, text: &str, n: u64) {
        if let scc::hash_map::Entry::Vacant(v) = self.0.entry_sync(Arc::from(text)) {
            v.insert_entry(Arc::new([n; ENTRY_WORDS]));
        }
        self.0.update_sync(text, |_, e| black_box(e[0]));
    }

    fn remove(&mut self, text: &str) {
        self.0.remove_sync(text);
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The design issue 22 asks for, at its cheapest: the map keyed on the entry
/// itself (an 8-byte slot) with the label text inline in it, and entries
/// recycled through a free list that prefetches the next one a register ahead,
/// so no register allocates or waits on cold memory for its entry. (The store
/// tried the recycling half, kept memory of swept entries: it cut
/// `retained_100k` by ~12 % and made `sweep/expire_100k` ~18 % dearer, the kept
/// entries splitting the heap the sweep frees; see BENCHMARKS.md, "lifecycle".)
///
/// With `RECYCLE` false, the same map and entry, each entry a fresh
/// allocation and freed by the removal: what keying on the entry and the text
/// inline give without the recycling.
struct PooledMap<const RECYCLE: bool> {
    map: scc::HashMap<Keyed, ()>,
    /// The removed entries' own allocations (boxed on purpose: the point is
    /// to reuse each one where it is, as the store's recycler does).
    #[allow(clippy::vec_box)]
    free: Vec<Box<Inline>>,
}

/// An entry-sized block with its label text inline.
struct Inline {
    len: usize,
    text: [u8; 48],
    cells: [u64; ENTRY_WORDS - 7],
}

impl Inline {
    fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// A map key that is the entry, hashed and compared on its label text.
struct Keyed(Box<Inline>);

impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.text().hash(h);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0.text() == other.0.text()
    }
}

impl Eq for Keyed {}

/// Looks an entry up by its label text.
#[derive(Hash)]
struct Text<'a>(&'a [u8]);

impl scc::Equivalent<Keyed> for Text<'_> {
    fn equivalent(&self, key: &Keyed) -> bool {
        self.0 == key.0.text()
    }
}

impl<const RECYCLE: bool> FloorMap for PooledMap<RECYCLE> {
    fn new() -> Self {
        PooledMap {
            map: scc::HashMap::with_capacity(1 << 17),
            free: Vec::new(),
        }
    }

    fn op(&mut self, text: &str, n: u64) {
        let mut e = self.free.pop().unwrap_or_else(|| {
            Box::new(Inline {
                len: 0,
                text: [0; 48],
                cells: [0; ENTRY_WORDS - 7],
            })
        });
        if let Some(next) = self.free.last() {
            let p: *const Inline = &**next;
            for off in (0..size_of::<Inline>()).step_by(64) {
                prefetch(p.cast::<u8>().wrapping_add(off));
            }
        }
        e.len = text.len();
        e.text[..text.len()].copy_from_slice(text.as_bytes());
        e.cells = [n; ENTRY_WORDS - 7];
        if let scc::hash_map::Entry::Vacant(v) = self.map.entry_sync(Keyed(e)) {
            v.insert_entry(());
        }
        self.map
            .read_sync(&Text(text.as_bytes()), |k, _| black_box(k.0.cells[0]));
    }

    fn remove(&mut self, text: &str) {
        if let Some((k, ())) = self.map.remove_sync(&Text(text.as_bytes()))
            && RECYCLE
        {
            self.free.push(k.0);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A prefetch hint (the store's own is crate-private).
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address; SSE is baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`Churn`]'s sliding window over a [`FloorMap`].
struct Floor<M> {
    map: M,
    retained: usize,
    chunk_len: usize,
    filled: usize,
    /// The current chunk's label texts, formatted outside the timed part.
    texts: Vec<String>,
    /// The chunks in the window, oldest first.
    window: std::collections::VecDeque<Vec<String>>,
    next_id: u64,
}

impl<M: FloorMap> Floor<M> {
    fn new(retained: usize) -> Self {
        let mut floor = Floor {
            map: M::new(),
            retained,
            chunk_len: retained / WINDOW_CHUNKS as usize,
            filled: 0,
            texts: Vec::new(),
            window: std::collections::VecDeque::new(),
            next_id: 0,
        };
        for _ in 0..WINDOW_CHUNKS {
            floor.format_texts();
            for t in &floor.texts {
                floor.map.op(t, 1);
            }
            floor.window.push_back(std::mem::take(&mut floor.texts));
        }
        floor.format_texts();
        assert_eq!(floor.map.len(), retained);
        floor
    }

    fn format_texts(&mut self) {
        self.texts.clear();
        for _ in 0..self.chunk_len {
            // As `ActorLabels` lays them out: id and generation, key, envoy.
            self.texts
                .push(format!("churn-{}:1user{ENVOY}", self.next_id));
            self.next_id += 1;
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let take = left.min(self.chunk_len - self.filled);
            let start = Instant::now();
            for t in &self.texts[self.filled..self.filled + take] {
                self.map.op(t, 2);
            }
            total += start.elapsed();
            self.filled += take;
            left -= take;
            if self.filled == self.chunk_len {
                for t in self.window.pop_front().expect("a full window") {
                    self.map.remove(&t);
                }
                self.window.push_back(std::mem::take(&mut self.texts));
                assert_eq!(self.map.len(), self.retained);
                self.filled = 0;
                self.format_texts();
            }
        }
        total
    }
}

fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (id, retained, scan) in [
        ("retained_1k", 1_000, false),
        ("retained_100k", 100_000, false),
        ("scan_baseline_100k", 100_000, true),
    ] {
        let mut churn = Churn::new(retained, scan);
        g.bench_function(id, |b| b.iter_custom(|iters| churn.run(iters)));
        let n = churn.m.retained_len();
        assert!(
            (retained..=retained + churn.chunk_len).contains(&n),
            "{id}: {n} retained"
        );
    }
    // Two threads at once over 100k retained (a chunk is 10,000 lifecycles,
    // so starting the threads per stretch costs ~1 %): per lifecycle, wall time.
    let mut churn = Churn::new(100_000, false);
    g.bench_function("threads_2_100k", |b| {
        b.iter_custom(|iters| churn.run_threads(iters, 2))
    });
    for (id, retained) in [("floor_malloc_1k", 1_000), ("floor_malloc_100k", 100_000)] {
        let mut floor = Floor::<MallocMap>::new(retained);
        g.bench_function(id, |b| b.iter_custom(|iters| floor.run(iters)));
    }
    for (id, retained) in [("floor_keyed_1k", 1_000), ("floor_keyed_100k", 100_000)] {
        let mut floor = Floor::<PooledMap<false>>::new(retained);
        g.bench_function(id, |b| b.iter_custom(|iters| floor.run(iters)));
    }
    for (id, retained) in [("floor_pooled_1k", 1_000), ("floor_pooled_100k", 100_000)] {
        let mut floor = Floor::<PooledMap<true>>::new(retained);
        g.bench_function(id, |b| b.iter_custom(|iters| floor.run(iters)));
    }
    g.finish();
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
