//! One actor lifecycle: register a new label set, record one event, stop and
//! drop the last handle, with 1k or 100k label sets already retained (registered
//! and stopped); and a baseline that also scans a 100k-entry `scc::HashMap`
//! (`retain_sync`) on register and on drop, as a cleanup-on-lifecycle design does.
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

use actor_benches::{ManualClock, bench_metrics};
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

    /// Runs `iters` lifecycles; returns the time spent in them only.
    fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let take = left.min(self.chunk_len - self.filled);
            let ids = &self.ids[self.filled..self.filled + take];
            let start = Instant::now();
            match &self.scan {
                None => {
                    for id in ids {
                        let a = self.ty.register(id, Some(1), "user");
                        a.queue_messages_sent_total().inc();
                        a.stopped();
                        drop(black_box(a));
                    }
                }
                Some(map) => {
                    let scan = || map.retain_sync(|_, v| black_box(*v) != u64::MAX);
                    for id in ids {
                        scan();
                        let a = self.ty.register(id, Some(1), "user");
                        a.queue_messages_sent_total().inc();
                        scan();
                        a.stopped();
                        drop(black_box(a));
                    }
                }
            }
            total += start.elapsed();
            self.filled += take;
            left -= take;
            if self.filled == self.chunk_len {
                self.next_chunk();
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
    g.finish();
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
