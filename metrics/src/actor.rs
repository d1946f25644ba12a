//! The actor handle: a cheap `Arc` whose children were resolved at registration.
//!
//! Recording is an atomic operation on a cell inside the actor's one allocation:
//! no label hashing, no map access, no lock. Cloning a handle is one atomic
//! increment. The actor's end is recorded explicitly by [`ActorMetrics::stopped`]
//! (idempotent); the drop of the last handle is only the fallback.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::cells::{
    ActiveCell, Buckets, Cell, CounterCell, GaugeCell, HistogramCell, HistogramTotal,
};
use crate::families::{ActionCells, ActorSeries};
use crate::labels::ActorLabels;
use crate::retention::Inner;

/// One label set's entry in `RETAINED_ACTORS`: every series of that actor.
#[derive(Debug)]
pub(crate) struct ActorEntry {
    pub(crate) labels: Arc<ActorLabels>,
    /// `actor_id_gen="…",actor_key="…",envoy_key="…"`, escaped once.
    pub(crate) label_block: Box<str>,
    pub(crate) ty: Arc<TypeInner>,
    pub(crate) series: ActorSeries,
    /// Bumped each time the last live registration stops; an expiry queue item
    /// carries the epoch it was queued at, so a revived-then-stopped-again entry
    /// is not removed by a stale item.
    pub(crate) epoch: AtomicU64,
    /// The shared overflow label set of its type (not counted against the cap).
    pub(crate) overflow: bool,
}

impl ActorEntry {
    /// A new entry with one live registration (`actor_active` 1), set before the
    /// entry is published rather than by a store after it is built.
    pub(crate) fn new(labels: Arc<ActorLabels>, ty: Arc<TypeInner>, overflow: bool) -> Self {
        let series = ActorSeries::default();
        series.active.0.store(1, Ordering::Relaxed);
        ActorEntry {
            label_block: labels.label_block(),
            labels,
            ty,
            series,
            epoch: AtomicU64::new(0),
            overflow,
        }
    }

    /// Live registrations (the `actor_active` value).
    pub(crate) fn live(&self) -> u32 {
        self.series.active.0.load(Ordering::SeqCst)
    }
}

/// One actor type (`actor_name`): its aggregate label block, the final values of
/// its removed actors, and its per-action cells.
pub(crate) struct TypeInner {
    pub(crate) name: Box<str>,
    pub(crate) label_block: Box<str>,
    /// Totals folded in from actors the sweeper removed, so aggregates never go back.
    pub(crate) retired: ActorSeries,
    pub(crate) actions: parking_lot::RwLock<Vec<(Box<str>, Arc<ActionCells>)>>,
}

impl fmt::Debug for TypeInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeInner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An actor type, resolved once by the host ([`Metrics::actor_type`](crate::Metrics::actor_type)).
/// Registering its actors and resolving its actions go through it.
#[derive(Clone, Debug)]
pub struct ActorType {
    pub(crate) inner: Arc<TypeInner>,
    pub(crate) metrics: Arc<Inner>,
}

impl ActorType {
    /// The `actor_name` label value.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Registers an actor: one map operation. A label set that is live or still
    /// retained shares the same series (counters continue); otherwise a new
    /// entry is created (evicting the oldest expiring entry early at the cap, or
    /// sharing the type's overflow label set if every entry is live).
    pub fn register(
        &self,
        actor_id: &str,
        generation: Option<u64>,
        actor_key: &str,
    ) -> ActorMetrics {
        self.metrics.register(self, actor_id, generation, actor_key)
    }

    /// Resolves the aggregate cells of one action of this type. Call once per
    /// action and keep the result: recording with it is atomic operations only.
    pub fn action(&self, action: &str) -> ActionMetrics {
        if let Some((_, cells)) = self
            .inner
            .actions
            .read()
            .iter()
            .find(|(n, _)| &**n == action)
        {
            return ActionMetrics(cells.clone());
        }
        let mut actions = self.inner.actions.write();
        if let Some((_, cells)) = actions.iter().find(|(n, _)| &**n == action) {
            return ActionMetrics(cells.clone());
        }
        let cells = Arc::new(ActionCells::default());
        actions.push((action.into(), cells.clone()));
        ActionMetrics(cells)
    }
}

/// The resolved aggregate (`actor_type_action_*{actor_name, action}`) cells of one action.
#[derive(Clone, Debug)]
pub struct ActionMetrics(pub(crate) Arc<ActionCells>);

/// One registration of an actor's label set; dropped with the last handle clone.
pub(crate) struct Registration {
    pub(crate) entry: Arc<ActorEntry>,
    pub(crate) metrics: Arc<Inner>,
    pub(crate) stopped: AtomicBool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Fallback only: hosts record the stop explicitly at task exit.
        self.metrics.stop(self);
    }
}

/// A cheap, cloneable handle to one actor's series (an `Arc`).
///
/// ```
/// use actor_metrics::{Config, Metrics, Inbox};
/// let metrics = Metrics::new(Config::default()).unwrap();
/// let counter = metrics.actor_type("counter");
/// let actor = counter.register("a1", Some(1), "user-42");
/// actor.queue_messages_sent_total().inc();
/// actor.inbox_depth(Inbox::Action).set(3);
/// actor.stopped(); // gauges go to 0; the series stay for the retention window
/// ```
#[derive(Clone)]
pub struct ActorMetrics(pub(crate) Arc<Registration>);

impl fmt::Debug for ActorMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorMetrics")
            .field("labels", &self.0.entry.labels)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl ActorMetrics {
    /// Records the actor's end: `actor_active` drops, every gauge of the actor is
    /// zeroed once no registration of its label set is live, and the label set is
    /// queued to expire after the retention window. Idempotent; later calls and
    /// the final drop do nothing more.
    pub fn stopped(&self) {
        self.0.metrics.stop(&self.0);
    }

    /// Whether [`ActorMetrics::stopped`] was called (or the registration ended).
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// The label set this handle records under (the overflow set when the cap was hit).
    pub fn labels(&self) -> &ActorLabels {
        &self.0.entry.labels
    }

    /// The actor type's name.
    pub fn actor_name(&self) -> &str {
        &self.0.entry.ty.name
    }

    /// Whether this actor was registered under its type's overflow label set.
    pub fn is_overflow(&self) -> bool {
        self.0.entry.overflow
    }

    /// Records one action call: calls (and errors if `!ok`) and duration, per
    /// actor and per (`actor_name`, `action`).
    #[inline]
    pub fn record_action(&self, action: &ActionMetrics, elapsed: Duration, ok: bool) {
        let secs = elapsed.as_secs_f64();
        let bounds = crate::cells::ACTION_BUCKETS.bounds();
        let s = &self.0.entry.series;
        s.action_calls_total.add(1);
        action.0.action_calls_total.add(1);
        if !ok {
            s.action_errors_total.add(1);
            action.0.action_errors_total.add(1);
        }
        s.action_duration_seconds.observe(bounds, secs);
        action.0.action_duration_seconds.observe(bounds, secs);
    }
}

/// How a family's cell is recorded through a handle.
pub(crate) trait Record: Cell {
    type Ref<'a>
    where
        Self: 'a;
    fn recorder<'a>(
        &'a self,
        reg: &'a Registration,
        buckets: Option<&'static Buckets>,
    ) -> Self::Ref<'a>;
}

/// Records into one counter of an actor.
#[derive(Debug, Clone, Copy)]
pub struct CounterRef<'a>(&'a CounterCell);

impl CounterRef<'_> {
    /// Adds one.
    #[inline]
    pub fn inc(self) {
        self.0.add(1);
    }
    /// Adds `n`.
    #[inline]
    pub fn inc_by(self, n: u64) {
        self.0.add(n);
    }
    /// The current value.
    pub fn get(self) -> u64 {
        self.0.0.load(Ordering::Relaxed)
    }
}

/// Records into one gauge of an actor. Writes through a stopped registration are
/// ignored, and a write racing with the stop is undone, so no gauge is left
/// stuck after the actor is gone.
#[derive(Clone, Copy)]
pub struct GaugeRef<'a> {
    cell: &'a GaugeCell,
    reg: &'a Registration,
}

impl fmt::Debug for GaugeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GaugeRef").field(&self.get()).finish()
    }
}

impl GaugeRef<'_> {
    /// Sets the value.
    #[inline]
    pub fn set(self, v: i64) {
        if self.reg.stopped.load(Ordering::Acquire) {
            return;
        }
        self.cell.0.store(v, Ordering::SeqCst);
        self.undo_if_stopped();
    }
    /// Adds `d` (may be negative).
    #[inline]
    pub fn add(self, d: i64) {
        if self.reg.stopped.load(Ordering::Acquire) {
            return;
        }
        self.cell.0.fetch_add(d, Ordering::SeqCst);
        self.undo_if_stopped();
    }
    /// Adds one.
    #[inline]
    pub fn inc(self) {
        self.add(1);
    }
    /// Subtracts one.
    #[inline]
    pub fn dec(self) {
        self.add(-1);
    }
    /// The current value.
    pub fn get(self) -> i64 {
        self.cell.0.load(Ordering::SeqCst)
    }

    /// The stop path sets `stopped` and then zeroes the gauges; this path writes
    /// and then reads `stopped` (both sequentially consistent), so at least one
    /// of the two sees the other and the final value is 0.
    #[inline]
    fn undo_if_stopped(self) {
        if self.reg.stopped.load(Ordering::SeqCst) && self.reg.entry.live() == 0 {
            self.cell.0.store(0, Ordering::SeqCst);
        }
    }
}

/// Records into one histogram of an actor.
#[derive(Debug, Clone, Copy)]
pub struct HistogramRef<'a> {
    cell: &'a HistogramCell,
    buckets: &'static Buckets,
}

impl HistogramRef<'_> {
    /// Observes a value in seconds.
    #[inline]
    pub fn observe(self, secs: f64) {
        self.cell.observe(self.buckets.bounds(), secs);
    }
    /// Observes a duration.
    #[inline]
    pub fn observe_duration(self, d: Duration) {
        self.observe(d.as_secs_f64());
    }
    /// The current totals.
    pub fn get(self) -> HistogramTotal {
        let mut t = HistogramTotal::default();
        self.cell.add_to(&mut t);
        t
    }
}

/// Reads `actor_active` of an actor.
#[derive(Debug, Clone, Copy)]
pub struct ActiveRef<'a>(&'a ActiveCell);

impl ActiveRef<'_> {
    /// Live registrations of this label set.
    pub fn get(self) -> u32 {
        self.0.0.load(Ordering::SeqCst)
    }
}

impl Record for CounterCell {
    type Ref<'a> = CounterRef<'a>;
    #[inline]
    fn recorder<'a>(&'a self, _: &'a Registration, _: Option<&'static Buckets>) -> CounterRef<'a> {
        CounterRef(self)
    }
}

impl Record for GaugeCell {
    type Ref<'a> = GaugeRef<'a>;
    #[inline]
    fn recorder<'a>(&'a self, reg: &'a Registration, _: Option<&'static Buckets>) -> GaugeRef<'a> {
        GaugeRef { cell: self, reg }
    }
}

impl Record for ActiveCell {
    type Ref<'a> = ActiveRef<'a>;
    #[inline]
    fn recorder<'a>(&'a self, _: &'a Registration, _: Option<&'static Buckets>) -> ActiveRef<'a> {
        ActiveRef(self)
    }
}

impl Record for HistogramCell {
    type Ref<'a> = HistogramRef<'a>;
    #[inline]
    fn recorder<'a>(
        &'a self,
        _: &'a Registration,
        buckets: Option<&'static Buckets>,
    ) -> HistogramRef<'a> {
        HistogramRef {
            cell: self,
            // The families macro passes the declared bucket set for every histogram.
            buckets: buckets.unwrap_or(&crate::cells::ACTION_BUCKETS),
        }
    }
}
