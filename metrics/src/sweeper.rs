//! The sweeper: removes label sets whose retention ended.
//!
//! It pops due items from the store's expiry queue (never scanning the map),
//! at most `max_sweep_per_tick` removals per tick in batches, each batch under
//! the fold lock so scrapes see every actor exactly once. Items of label sets
//! that were revived, or stopped again since, are skipped. It runs whether or
//! not anyone scrapes, and never holds a lock that an update takes.

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::prefetch::{PREFETCH_AHEAD, prefetch};
use crate::store::{ActorEntry, EntryRef, Store};

/// What one call of [`Metrics::sweep`](crate::Metrics::sweep) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Label sets removed (every series of each).
    pub removed: usize,
    /// Queue items skipped because their label set was revived or stopped again.
    pub skipped: usize,
    /// Whether due items were left for the next tick (the per-tick bound was hit).
    pub more_due: bool,
}

/// Removals per fold-lock hold: bounds how long a scrape's snapshot waits.
const BATCH: usize = 1024;

/// Removes label sets whose retention ended at or before `now`.
pub(crate) fn sweep(store: &Store, now: Instant) -> SweepReport {
    let started = std::time::Instant::now();
    let mut report = SweepReport::default();
    let limit = store.config.max_sweep_per_tick;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let budget = limit - report.removed;
        report.more_due = store.expiry.pop_due(now, BATCH.min(budget), &mut batch);
        if batch.is_empty() {
            break;
        }
        {
            let fold = store.fold_write();
            // From the end: the memory of the entries ahead is asked for in
            // two steps (the entry, then what it points to), so the removals'
            // cache misses overlap instead of coming one after another.
            while let Some(item) = batch.pop() {
                let n = batch.len();
                if let Some(far) = n.checked_sub(2 * PREFETCH_AHEAD).map(|i| &batch[i]) {
                    prefetch(EntryRef::as_ptr(&far.item).cast(), size_of::<ActorEntry>());
                }
                if let Some(near) = n.checked_sub(PREFETCH_AHEAD).map(|i| &batch[i]) {
                    near.item.prefetch_parts();
                }
                if store.remove_if_expired(&item, &fold) {
                    report.removed += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        if report.removed >= limit || !report.more_due {
            break;
        }
    }
    let selfm = &store.selfm;
    selfm.sweeps.inc();
    selfm
        .sweep_duration
        .observe(started.elapsed().as_secs_f64());
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    selfm
        .last_sweep
        .set(i64::try_from(unix).unwrap_or(i64::MAX));
    report
}

/// Spawns the background task: every `sweep_interval` it runs [`sweep`], and
/// every promotion tick the promotion watch. It holds the store weakly and
/// ends when the instance is dropped.
pub(crate) fn spawn(store: &Arc<Store>) -> tokio::task::JoinHandle<()> {
    let weak: Weak<Store> = Arc::downgrade(store);
    let sweep_every = store.config.sweep_interval;
    let watch_every = store.config.promotion.tick;
    tokio::spawn(async move {
        let start = Instant::now();
        // The first watch takes baselines at once, so the first figures come
        // one tick after the start, not two.
        let (mut next_sweep, mut next_watch) = (start, start);
        loop {
            tokio::time::sleep_until(next_sweep.min(next_watch)).await;
            let Some(store) = weak.upgrade() else { break };
            let now = Instant::now();
            if now >= next_sweep {
                let report = sweep(&store, store.clock.now());
                if report.removed > 0 {
                    tracing::debug!(
                        removed = report.removed,
                        skipped = report.skipped,
                        "swept expired actor label sets"
                    );
                }
                next_sweep = after(next_sweep, sweep_every, now);
            }
            if now >= next_watch {
                crate::trouble::tick(&store, store.clock.now());
                next_watch = after(next_watch, watch_every, now);
            }
        }
    })
}

/// The next deadline of a period: one period on, or one period from `now`
/// when that is already past (a late tick delays, it does not burst).
fn after(deadline: Instant, period: std::time::Duration, now: Instant) -> Instant {
    let next = deadline + period;
    if next <= now { now + period } else { next }
}
