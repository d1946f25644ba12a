//! The store: `RETAINED_ACTORS`, the actor types, and the rules of retention.
//!
//! * **Register** is one map operation (`entry_sync` on the label set): a label
//!   set that is live or still retained is shared (counters continue); a new one
//!   gets its entry, at the cap after one early eviction, or else the type's
//!   overflow entry.
//! * **Stop** (explicit or last drop) takes the registration's gauge
//!   contributions out, then is one map update (`update_sync`, which serialises
//!   with a concurrent register of the same label set) plus, when it was the
//!   last live registration, one push onto the expiry queue.
//! * **Removal** happens only through [`Store::remove_if_expired`], which the
//!   sweeper and early eviction call with the fold lock held: it removes an
//!   entry only if it is still not live and was not stopped again since (the
//!   epoch check), and folds its final values into its type's retired totals.
//! * **Snapshots** for scrapes and totals take the fold lock for reading while
//!   they collect entries, so every actor is either in the snapshot or already in
//!   its type's retired totals, never both, never neither. Updates never take
//!   the fold lock.
//!
//! The store knows neither the sweeper nor the renderer: they read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use prometheus::Registry;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::MetricsError;
use crate::exemplar::{ActorExemplars, HistogramExemplars};
use crate::expiry::{Expiry, ExpiryQueue};
use crate::families::{ActionCells, ActorSeries, OwnGauges, Totals};
use crate::label_cache::LabelCache;
use crate::labels::ActorLabels;
use crate::lazy::LazyBox;
use crate::prefetch::{PREFETCH_AHEAD, prefetch};
use crate::self_metrics::SelfMetrics;
use crate::slab::{Slab, SlotRef};
use crate::trouble::{Reason, Watch, Window};

/// Where every entry lives: slots of 256 KiB chunks outside malloc, kept
/// for the next register when an entry goes (see `slab.rs`).
static ENTRIES: Slab<ActorEntry> = Slab::new();

/// A counted reference to an entry, as `Arc<ActorEntry>` was.
pub(crate) type EntryRef = SlotRef<ActorEntry>;

/// One label set's entry in `RETAINED_ACTORS`: every series of that actor.
#[derive(Debug)]
pub(crate) struct ActorEntry {
    /// Shares its one allocation with the map's key.
    pub(crate) labels: ActorLabels,
    pub(crate) ty: Arc<TypeInner>,
    pub(crate) series: ActorSeries,
    /// Its stop count, and whether it is its type's shared overflow label set
    /// (not counted against the cap), in one word.
    pub(crate) epoch: Epoch,
    /// The renderer's written forms of `labels`; the store never reads them.
    pub(crate) label_cache: LabelCache,
    /// Its windowed figures, taken by the promotion tick, and whether it is
    /// promoted to `full` detail.
    pub(crate) window: Window,
    /// Its exemplars, allocated by its first traced call made while it keeps
    /// them (`full`, or promoted). The pointer takes the bytes [`Epoch`] gave
    /// up (see `an_entry_is_no_larger_for_its_exemplar_pointer`).
    pub(crate) exemplars: LazyBox<ActorExemplars>,
}

impl ActorEntry {
    /// A new entry with one live registration (`actor_active` 1), set before the
    /// entry is published rather than by a store after it is built.
    fn new(labels: ActorLabels, ty: Arc<TypeInner>, overflow: bool) -> Self {
        let series = ActorSeries::default();
        series.active.init(1);
        ActorEntry {
            labels,
            ty,
            series,
            epoch: Epoch::new(overflow),
            label_cache: LabelCache::default(),
            window: Window::default(),
            exemplars: LazyBox::default(),
        }
    }

    /// Its own exemplars, when it keeps them now: every actor does when
    /// the store is at `full` (`all`), another only while promoted. A demoted
    /// actor's slots stay allocated until its entry goes, but are not shown:
    /// they stopped being offered calls at the demotion.
    #[inline]
    pub(crate) fn kept_exemplars(&self, all: bool) -> Option<&ActorExemplars> {
        let kept = self.exemplars.get()?;
        (all || self.window.promoted().is_some()).then_some(kept)
    }

    /// Asks the CPU for what a removal reads beyond the entry's own lines:
    /// its label text (the map compares it) and its labelled blocks (the
    /// fold reads them). Call it once the entry itself is in cache.
    pub(crate) fn prefetch_parts(&self) {
        let text = self.labels.text();
        prefetch(text.as_ptr(), text.len());
        self.series.prefetch_blocks();
    }

    /// Whether this is its type's shared overflow label set.
    #[inline]
    pub(crate) fn overflow(&self) -> bool {
        self.epoch.overflow()
    }

    /// Live registrations (the `actor_active` value).
    pub(crate) fn live(&self) -> u32 {
        self.series.active.get()
    }
}

/// An entry's stop count and its overflow flag in one 32-bit word: the
/// flag is bit 0, and each stop adds 2, so it never touches the flag.
///
/// An expiry item carries the epoch it was queued at, so a
/// revived-then-stopped-again entry is not removed by a stale item. The count
/// wraps after 2^31 stops: a stale item could only match again if that many
/// stops of one label set came within one retention window, by which time
/// the expiry queue would hold 2^31 items of it.
#[derive(Debug)]
pub(crate) struct Epoch(AtomicU32);

impl Epoch {
    fn new(overflow: bool) -> Self {
        Epoch(AtomicU32::new(u32::from(overflow)))
    }

    #[inline]
    fn overflow(&self) -> bool {
        self.0.load(Ordering::Relaxed) & 1 != 0
    }

    /// Counts one stop; returns the new epoch.
    fn bump(&self) -> u32 {
        self.0.fetch_add(2, Ordering::SeqCst).wrapping_add(2)
    }

    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One actor type (`actor_name`): the final values of its removed actors, and
/// its per-action cells.
pub(crate) struct TypeInner {
    /// Position in the store's type list (and in a snapshot's).
    pub(crate) index: usize,
    pub(crate) name: Box<str>,
    /// Totals folded in from actors the sweeper removed, so aggregates never go back.
    pub(crate) retired: ActorSeries,
    pub(crate) actions: RwLock<Vec<(Box<str>, Arc<ActionCells>)>>,
    /// Promotions of its actors to `full` detail, per [`Reason`]:
    /// `actor_type_detail_promotions_total`.
    pub(crate) promotions: [AtomicU64; Reason::ALL.len()],
    /// Exemplars of `actor_type_sqlite_commit_duration_seconds`.
    pub(crate) commit_exemplars: HistogramExemplars,
}

impl std::fmt::Debug for TypeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeInner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TypeInner {
    /// The cells of `action`, created on first use.
    pub(crate) fn action(&self, action: &str) -> Arc<ActionCells> {
        if let Some((_, cells)) = self.actions.read().iter().find(|(n, _)| &**n == action) {
            return cells.clone();
        }
        let mut actions = self.actions.write();
        if let Some((_, cells)) = actions.iter().find(|(n, _)| &**n == action) {
            return cells.clone();
        }
        let cells = Arc::new(ActionCells::default());
        actions.push((action.into(), cells.clone()));
        cells
    }
}

/// What a scrape or a totals read sees: the entries it selected and, per type,
/// the retired totals and action cells as of the same moment.
pub(crate) struct Snapshot {
    pub(crate) entries: Vec<EntryRef>,
    pub(crate) types: Vec<TypeSnapshot>,
}

/// One type in a [`Snapshot`].
pub(crate) struct TypeSnapshot {
    pub(crate) ty: Arc<TypeInner>,
    retired: Totals,
    pub(crate) actions: Vec<(Box<str>, Arc<ActionCells>)>,
}

impl Snapshot {
    /// Each type's totals: retired values, plus the snapshot's entries of that
    /// type, plus its action cells. Only exact when the snapshot took every
    /// entry.
    pub(crate) fn type_totals(&self) -> Vec<Totals> {
        let mut totals: Vec<Totals> = self.types.iter().map(|t| t.retired.clone()).collect();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(ahead) = self.entries.get(i + PREFETCH_AHEAD) {
                prefetch(EntryRef::as_ptr(ahead).cast(), size_of::<ActorEntry>());
            }
            if let Some(t) = totals.get_mut(e.ty.index) {
                e.series.add_to(t);
            }
        }
        for (t, snap) in totals.iter_mut().zip(&self.types) {
            for (_, cells) in &snap.actions {
                cells.add_to(t);
            }
        }
        totals
    }
}

/// The whole state of one metrics instance.
pub(crate) struct Store {
    pub(crate) config: Config,
    pub(crate) envoy_key: Arc<str>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) registry: Registry,
    /// `RETAINED_ACTORS`: label set → that actor's entry, in a slot of the slab.
    retained: scc::HashMap<ActorLabels, EntryRef>,
    /// Entries in `retained`, overflow entries excluded; never exceeds the cap.
    count: AtomicUsize,
    pub(crate) expiry: ExpiryQueue<EntryRef>,
    fold: RwLock<()>,
    types: Mutex<Vec<Arc<TypeInner>>>,
    pub(crate) selfm: SelfMetrics,
    /// The promotion tick's state.
    pub(crate) watch: Watch,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("config", &self.config)
            .field("retained", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        registry: Registry,
    ) -> Result<Self, MetricsError> {
        config.validate()?;
        let selfm = SelfMetrics::register(&registry, config.max_retained)?;
        let capacity = config.max_retained.min(1 << 17);
        Ok(Store {
            envoy_key: Arc::from(config.envoy_key.as_str()),
            config,
            clock,
            registry,
            // Sized for the cap up front (at most 2^17 label sets, about 3 MB):
            // scc never shrinks a map below the capacity it was built with, so
            // churn and sweeps do not keep reallocating the bucket array.
            retained: scc::HashMap::with_capacity(capacity),
            count: AtomicUsize::new(0),
            expiry: ExpiryQueue::default(),
            fold: RwLock::new(()),
            types: Mutex::new(Vec::new()),
            selfm,
            watch: Watch::default(),
        })
    }

    /// The actor type `name`, created on first use.
    pub(crate) fn actor_type(&self, name: &str) -> Arc<TypeInner> {
        let mut types = self.types.lock();
        if let Some(t) = types.iter().find(|t| &*t.name == name) {
            return t.clone();
        }
        let t = Arc::new(TypeInner {
            index: types.len(),
            name: name.into(),
            retired: ActorSeries::default(),
            actions: RwLock::new(Vec::new()),
            promotions: Default::default(),
            commit_exemplars: HistogramExemplars::default(),
        });
        types.push(t.clone());
        t
    }

    /// Under the bucket lock of an existing entry: one more live registration.
    fn revive(&self, e: &ActorEntry) {
        if e.series.active.enter() == 0 {
            self.selfm.expiring.dec();
            self.selfm.live.inc();
        }
    }

    /// Registers one live registration of the label set and returns its entry.
    pub(crate) fn register(
        &self,
        ty: &Arc<TypeInner>,
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
    ) -> EntryRef {
        let labels = ActorLabels::new(
            actor_id,
            generation,
            actor_key,
            self.envoy_key.clone(),
            self.config.max_label_value_bytes,
        );
        if labels.key_truncated() {
            self.selfm.truncated.inc();
        }
        loop {
            match self.retained.entry_sync(labels.clone()) {
                scc::hash_map::Entry::Occupied(o) => {
                    let e = o.get().clone();
                    self.revive(&e);
                    return e;
                }
                scc::hash_map::Entry::Vacant(v) => {
                    if self.count.fetch_add(1, Ordering::SeqCst) < self.config.max_retained {
                        let e =
                            SlotRef::new_in(ActorEntry::new(labels, ty.clone(), false), &ENTRIES);
                        v.insert_entry(e.clone());
                        self.selfm.live.inc();
                        return e;
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

    fn register_overflow(&self, ty: &Arc<TypeInner>) -> EntryRef {
        self.selfm.overflow.inc();
        let labels = ActorLabels::overflow(&ty.name, self.envoy_key.clone());
        match self.retained.entry_sync(labels.clone()) {
            scc::hash_map::Entry::Occupied(o) => {
                let e = o.get().clone();
                self.revive(&e);
                e
            }
            scc::hash_map::Entry::Vacant(v) => {
                let e = SlotRef::new_in(ActorEntry::new(labels, ty.clone(), true), &ENTRIES);
                v.insert_entry(e.clone());
                self.selfm.live.inc();
                e
            }
        }
    }

    /// The stop path of one registration: idempotent (`stopped`), O(1).
    pub(crate) fn stop(&self, entry: &ActorEntry, stopped: &AtomicBool, own: &OwnGauges) {
        if stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // This registration's share of every gauge leaves now, whether or not
        // others still share the label set.
        entry.series.withdraw(own);
        let updated = self
            .retained
            .update_sync(&entry.labels, |_, e: &mut EntryRef| {
                if e.series.active.leave() != 1 {
                    return None;
                }
                let epoch = e.epoch.bump();
                self.selfm.live.dec();
                self.selfm.expiring.inc();
                let now = self.clock.now();
                Some(Expiry {
                    // Validation bounds the retention; never panic on overflow anyway.
                    deadline: now
                        .checked_add(self.config.retention)
                        .or_else(|| now.checked_add(Config::MAX_RETENTION))
                        .unwrap_or(now),
                    item: e.clone(),
                    epoch,
                })
            });
        // Pushed after the bucket lock is released, to keep that critical section
        // short (see `expiry.rs` on the order this allows).
        if let Some(Some(item)) = updated {
            self.expiry.push(item);
            return;
        }
        // An entry cannot leave the map while a registration of it is live.
        debug_assert!(updated.is_some(), "stopped label set was not retained");
    }

    /// Takes the fold lock for writing: the sweeper holds it around a batch of
    /// [`Store::remove_if_expired`] calls.
    pub(crate) fn fold_write(&self) -> RwLockWriteGuard<'_, ()> {
        self.fold.write()
    }

    /// Removes `item`'s entry if it is still not live and not stopped again
    /// since, folding its final values into its type. `_fold` proves the caller
    /// holds the fold lock.
    pub(crate) fn remove_if_expired(
        &self,
        item: &Expiry<EntryRef>,
        _fold: &RwLockWriteGuard<'_, ()>,
    ) -> bool {
        let removed = self
            .retained
            .remove_if_sync(&item.item.labels, |e| {
                EntryRef::ptr_eq(e, &item.item) && e.live() == 0 && e.epoch.get() == item.epoch
            })
            .is_some();
        if removed {
            let e = &item.item;
            e.series.fold_into(&e.ty.retired);
            if !e.overflow() {
                self.count.fetch_sub(1, Ordering::SeqCst);
            }
            self.selfm.expiring.dec();
            self.selfm.removed.inc();
        }
        removed
    }

    /// At the cap: removes the expiring entry with the nearest deadline.
    /// Overflow sets are passed over: they do not count against the cap, so
    /// evicting one would free no room.
    fn evict_oldest_expiring(&self) -> bool {
        let mut passed = Vec::new();
        let evicted = loop {
            let Some(item) = self.expiry.pop_front() else {
                break false;
            };
            if item.item.overflow() {
                passed.push(item);
                continue;
            }
            let fold = self.fold.write();
            if self.remove_if_expired(&item, &fold) {
                self.selfm.evicted_early.inc();
                break true;
            }
        };
        // Back in the queue, for the sweeper (slightly out of order, which the
        // queue tolerates).
        for item in passed {
            self.expiry.push(item);
        }
        evicted
    }

    /// The stop of a registration that never ran (its actor failed to start):
    /// if no other registration holds the label set, it is removed at once
    /// instead of being retained, so a failed start leaves no series behind.
    /// What it recorded still counts in its type's aggregates.
    pub(crate) fn abandon(&self, entry: &EntryRef, stopped: &AtomicBool, own: &OwnGauges) {
        if stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        entry.series.withdraw(own);
        let fold = self.fold.write();
        let mut last = false;
        let removed = self
            .retained
            .remove_if_sync(&entry.labels, |e| {
                if !EntryRef::ptr_eq(e, entry) {
                    return false;
                }
                last = e.series.active.leave() == 1;
                last
            })
            .is_some();
        if removed {
            entry.series.fold_into(&entry.ty.retired);
            if !entry.overflow() {
                self.count.fetch_sub(1, Ordering::SeqCst);
            }
            self.selfm.live.dec();
            self.selfm.removed.inc();
        }
        drop(fold);
        debug_assert!(removed || !last, "the last registration's entry is removed");
    }

    /// Retained label sets, overflow sets excluded.
    pub(crate) fn retained_len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The entries `select` keeps, with every type's retired totals and action
    /// cells as of the same moment.
    pub(crate) fn snapshot(&self, mut select: impl FnMut(&ActorEntry) -> bool) -> Snapshot {
        let mut entries = Vec::with_capacity(self.count.load(Ordering::Relaxed) + 8);
        let (types, retired): (Vec<Arc<TypeInner>>, Vec<Totals>) = {
            let _fold = self.fold.read();
            self.retained.iter_sync(|_, e: &EntryRef| {
                if select(e) {
                    entries.push(e.clone());
                }
                true
            });
            // Read after the entries: every entry's type is in the list.
            let types = self.types.lock().clone();
            let retired = types
                .iter()
                .map(|t| {
                    let mut total = Totals::default();
                    t.retired.add_to(&mut total);
                    total
                })
                .collect();
            (types, retired)
        };
        let types = types
            .into_iter()
            .zip(retired)
            .map(|(ty, retired)| {
                let actions = ty.actions.read().clone();
                TypeSnapshot {
                    ty,
                    retired,
                    actions,
                }
            })
            .collect();
        Snapshot { entries, types }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exemplar pointer lives in the bytes the 64-bit epoch and the
    /// separate overflow flag took: an actor at `core` costs what it cost
    /// before exemplars (736 bytes of entry), plus the 40 bytes the counter
    /// and gauge families' enum-labelled cells take inline (issue 22; they
    /// were five allocations of their own, 32 to 48 bytes each when used).
    #[test]
    fn an_entry_is_no_larger_for_its_exemplar_pointer() {
        assert!(
            size_of::<ActorEntry>() <= 776,
            "{} bytes",
            size_of::<ActorEntry>()
        );
    }

    #[test]
    fn stops_count_in_steps_of_two_and_never_touch_the_overflow_flag() {
        for overflow in [false, true] {
            let e = Epoch::new(overflow);
            e.0.store((u32::MAX - 3) | u32::from(overflow), Ordering::SeqCst);
            for _ in 0..3 {
                let before = e.get();
                assert_eq!(e.bump(), before.wrapping_add(2));
                assert_eq!(e.overflow(), overflow);
            }
        }
    }
}
