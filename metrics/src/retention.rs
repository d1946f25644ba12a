//! `RETAINED_ACTORS`, the expiry queue and the sweeper: the hard part.
//!
//! * Register is one map operation (`entry_sync` on the label set).
//! * Stop (explicit or last drop) is one map update (`update_sync`, which
//!   serialises with a concurrent register of the same label set) plus one push
//!   onto the expiry queue. Deadlines are `now + retention` with a constant
//!   retention, so the queue is ordered by deadline and is a `VecDeque`.
//! * The sweeper pops due items from the front and removes an entry only if it
//!   is still not live and was not stopped again since (the epoch check), so a
//!   revived label set is skipped. Nothing ever scans the map except a scrape.
//! * Removal folds the actor's final values into its type's retired totals under
//!   the `fold` lock, which only scrapes (briefly, while collecting entries) and
//!   removals take; updates never take it. Aggregates are therefore exact and
//!   never go back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::time::Instant;

use crate::actor::{ActorEntry, ActorMetrics, ActorType, Registration, TypeInner};
use crate::config::Config;
use crate::families::{self, ActorSeries, SeriesTotals};
use crate::labels::{ActorLabels, escape_into};
use crate::self_metrics::SelfMetrics;
use crate::{Clock, MetricsError};

/// One stopped label set waiting for its deadline.
#[derive(Debug)]
struct Expiry {
    deadline: Instant,
    entry: Arc<ActorEntry>,
    epoch: u64,
}

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

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) envoy_key: Arc<str>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) registry: Registry,
    /// `RETAINED_ACTORS`: label set → that actor's one allocation.
    pub(crate) retained: scc::HashMap<Arc<ActorLabels>, Arc<ActorEntry>>,
    /// Entries in `retained`, overflow entries excluded; never exceeds the cap.
    count: AtomicUsize,
    expiry: Mutex<VecDeque<Expiry>>,
    fold: RwLock<()>,
    types: Mutex<Vec<ActorType>>,
    pub(crate) selfm: SelfMetrics,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("config", &self.config)
            .field("retained", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub(crate) fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        registry: Registry,
    ) -> Result<Self, MetricsError> {
        if config.max_retained == 0 {
            return Err(MetricsError::InvalidConfig(
                "max_retained must be at least 1",
            ));
        }
        if config.sweep_interval.is_zero() {
            return Err(MetricsError::InvalidConfig(
                "sweep_interval must be positive",
            ));
        }
        if config.max_sweep_per_tick == 0 {
            return Err(MetricsError::InvalidConfig(
                "max_sweep_per_tick must be at least 1",
            ));
        }
        let selfm = SelfMetrics::register(&registry, config.max_retained)?;
        let capacity = config.max_retained.min(1 << 17);
        Ok(Inner {
            envoy_key: Arc::from(config.envoy_key.as_str()),
            config,
            clock,
            registry,
            // Sized for the cap up front (at most 2^17 label sets, about 3 MB):
            // scc never shrinks a map below the capacity it was built with, so
            // churn and sweeps do not keep reallocating the bucket array.
            retained: scc::HashMap::with_capacity(capacity),
            count: AtomicUsize::new(0),
            expiry: Mutex::new(VecDeque::new()),
            fold: RwLock::new(()),
            types: Mutex::new(Vec::new()),
            selfm,
        })
    }

    pub(crate) fn actor_type(self: &Arc<Self>, name: &str) -> ActorType {
        let mut types = self.types.lock();
        if let Some(t) = types.iter().find(|t| &*t.inner.name == name) {
            return t.clone();
        }
        let mut block = String::with_capacity(name.len() + 14);
        block.push_str("actor_name=\"");
        escape_into(&mut block, name);
        block.push('"');
        let t = ActorType {
            inner: Arc::new(TypeInner {
                name: name.into(),
                label_block: block.into_boxed_str(),
                retired: ActorSeries::default(),
                actions: RwLock::new(Vec::new()),
            }),
            metrics: self.clone(),
        };
        types.push(t.clone());
        t
    }

    fn handle(self: &Arc<Self>, entry: Arc<ActorEntry>) -> ActorMetrics {
        ActorMetrics(Arc::new(Registration {
            entry,
            metrics: self.clone(),
            stopped: Default::default(),
        }))
    }

    /// Under the bucket lock of an existing entry: one more live registration.
    fn revive(&self, e: &ActorEntry) {
        if e.series.active.0.fetch_add(1, Ordering::SeqCst) == 0 {
            self.selfm.expiring.dec();
            self.selfm.live.inc();
        }
    }

    pub(crate) fn register(
        self: &Arc<Self>,
        ty: &ActorType,
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
    ) -> ActorMetrics {
        let labels = Arc::new(ActorLabels::new(
            actor_id,
            generation,
            actor_key,
            self.envoy_key.clone(),
            self.config.max_label_value_bytes,
        ));
        if labels.truncated_values() > 0 {
            self.selfm
                .truncated
                .inc_by(u64::from(labels.truncated_values()));
        }
        loop {
            match self.retained.entry_sync(labels.clone()) {
                scc::hash_map::Entry::Occupied(o) => {
                    let e = o.get().clone();
                    self.revive(&e);
                    drop(o);
                    return self.handle(e);
                }
                scc::hash_map::Entry::Vacant(v) => {
                    if self.count.fetch_add(1, Ordering::SeqCst) < self.config.max_retained {
                        let e = Arc::new(ActorEntry::new(labels, ty.inner.clone(), false));
                        v.insert_entry(e.clone());
                        self.selfm.live.inc();
                        return self.handle(e);
                    }
                    self.count.fetch_sub(1, Ordering::SeqCst);
                    // Release the bucket before touching other buckets.
                    drop(v);
                    if !self.evict_oldest_expiring() {
                        return self.register_overflow(ty);
                    }
                }
            }
        }
    }

    fn register_overflow(self: &Arc<Self>, ty: &ActorType) -> ActorMetrics {
        self.selfm.overflow.inc();
        let labels = Arc::new(ActorLabels::new(
            "overflow",
            None,
            &ty.inner.name,
            self.envoy_key.clone(),
            self.config.max_label_value_bytes,
        ));
        match self.retained.entry_sync(labels.clone()) {
            scc::hash_map::Entry::Occupied(o) => {
                let e = o.get().clone();
                self.revive(&e);
                drop(o);
                self.handle(e)
            }
            scc::hash_map::Entry::Vacant(v) => {
                let e = Arc::new(ActorEntry::new(labels, ty.inner.clone(), true));
                v.insert_entry(e.clone());
                self.selfm.live.inc();
                self.handle(e)
            }
        }
    }

    /// The stop path: idempotent per registration; O(1).
    pub(crate) fn stop(&self, reg: &Registration) {
        if reg.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let retention = self.config.retention;
        let updated = self
            .retained
            .update_sync(&reg.entry.labels, |_, e: &mut Arc<ActorEntry>| {
                if e.series.active.0.fetch_sub(1, Ordering::SeqCst) != 1 {
                    return None;
                }
                e.series.zero_gauges();
                let epoch = e.epoch.fetch_add(1, Ordering::SeqCst) + 1;
                self.selfm.live.dec();
                self.selfm.expiring.inc();
                Some(Expiry {
                    deadline: self.clock.now() + retention,
                    entry: e.clone(),
                    epoch,
                })
            });
        // Pushed after the bucket lock is released, to keep that critical section
        // short. Items may then land slightly out of deadline order; the sweeper
        // tolerates it (an item waits at most until the one ahead of it is due,
        // and the epoch check makes a stale item harmless).
        if let Some(Some(item)) = updated {
            self.expiry.lock().push_back(item);
            return;
        }
        // An entry cannot leave the map while a registration of it is live.
        debug_assert!(updated.is_some(), "stopped label set was not retained");
    }

    /// Removes `item`'s entry if it is still not live and not stopped again since.
    /// Caller holds the `fold` write lock.
    fn remove_if_still_expired(&self, item: &Expiry) -> bool {
        let removed = self
            .retained
            .remove_if_sync(&item.entry.labels, |e| {
                Arc::ptr_eq(e, &item.entry)
                    && e.live() == 0
                    && e.epoch.load(Ordering::SeqCst) == item.epoch
            })
            .is_some();
        if removed {
            let e = &item.entry;
            e.series.fold_into(&e.ty.retired);
            if !e.overflow {
                self.count.fetch_sub(1, Ordering::SeqCst);
            }
            self.selfm.expiring.dec();
            self.selfm.removed.inc();
        }
        removed
    }

    /// At the cap: removes the expiring entry with the nearest deadline.
    fn evict_oldest_expiring(&self) -> bool {
        loop {
            let Some(item) = self.expiry.lock().pop_front() else {
                return false;
            };
            let _fold = self.fold.write();
            if self.remove_if_still_expired(&item) {
                self.selfm.evicted_early.inc();
                return true;
            }
        }
    }

    pub(crate) fn sweep(&self, now: Instant) -> SweepReport {
        const BATCH: usize = 1024;
        let started = std::time::Instant::now();
        let mut report = SweepReport::default();
        let limit = self.config.max_sweep_per_tick;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let budget = limit - report.removed;
            {
                let mut q = self.expiry.lock();
                while batch.len() < BATCH.min(budget)
                    && q.front().is_some_and(|i| i.deadline <= now)
                {
                    batch.extend(q.pop_front());
                }
                report.more_due = q.front().is_some_and(|i| i.deadline <= now);
            }
            if batch.is_empty() {
                break;
            }
            {
                let _fold = self.fold.write();
                for item in batch.drain(..) {
                    if self.remove_if_still_expired(&item) {
                        report.removed += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
            }
            if report.removed >= limit {
                break;
            }
        }
        self.selfm.sweeps.inc();
        self.selfm
            .sweep_duration
            .observe(started.elapsed().as_secs_f64());
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.selfm
            .last_sweep
            .set(i64::try_from(unix).unwrap_or(i64::MAX));
        report
    }

    pub(crate) fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(self);
        let period = self.config.sweep_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let report = inner.sweep(inner.clock.now());
                if report.removed > 0 {
                    tracing::debug!(
                        removed = report.removed,
                        skipped = report.skipped,
                        "swept expired actor label sets"
                    );
                }
            }
        })
    }

    pub(crate) fn retained_len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The full scrape: per-actor families (if enabled), `actor_type_*`
    /// aggregates, then `TextEncoder` output of the registry.
    pub(crate) fn render_into(&self, out: &mut String) -> Result<(), MetricsError> {
        let types: Vec<ActorType> = self.types.lock().clone();
        let mut entries: Vec<Arc<ActorEntry>> =
            Vec::with_capacity(self.count.load(Ordering::Relaxed) + 8);
        let mut totals: Vec<SeriesTotals> = vec![SeriesTotals::default(); types.len()];
        {
            // Collect a consistent view: every actor is either in `entries` or
            // already folded into its type's retired totals, never both, never neither.
            let _fold = self.fold.read();
            self.retained.iter_sync(|_, e: &Arc<ActorEntry>| {
                entries.push(e.clone());
                true
            });
            for (t, total) in types.iter().zip(&mut totals) {
                t.inner.retired.add_to(total);
            }
        }
        for e in &entries {
            if let Some(i) = types.iter().position(|t| Arc::ptr_eq(&t.inner, &e.ty)) {
                e.series.add_to(&mut totals[i]);
            }
        }
        let refs: Vec<&ActorEntry> = entries.iter().map(|e| &**e).collect();
        if self.config.per_actor_detail {
            families::render_per_actor(&refs, out);
        }
        let type_totals: Vec<(&str, SeriesTotals)> = types
            .iter()
            .map(|t| &*t.inner.label_block)
            .zip(totals)
            .collect();
        let mut actions = Vec::new();
        for t in &types {
            for (name, cells) in t.inner.actions.read().iter() {
                let mut block = String::with_capacity(t.inner.label_block.len() + name.len() + 12);
                // `action` sorts before `actor_name`, as TextEncoder orders label names.
                block.push_str("action=\"");
                escape_into(&mut block, name);
                block.push_str("\",");
                block.push_str(&t.inner.label_block);
                actions.push((block, cells.clone()));
            }
        }
        families::render_aggregates(&type_totals, &actions, out);
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        out.push_str(&String::from_utf8_lossy(&buf));
        Ok(())
    }
}
