//! The handles a host holds: [`ActorType`], [`ActionMetrics`] and [`ActorMetrics`],
//! built on top of the store.
//!
//! The store hands out an actor's entry; an [`ActorMetrics`] wraps it in a
//! registration (the entry, its own gauge contributions, a stop flag). Recording
//! goes to a cell inside the entry resolved at registration: no label hashing, no
//! map access, no lock. Cloning a handle is one atomic increment. The actor's end
//! is recorded explicitly by [`ActorMetrics::stopped`] (idempotent); the drop of
//! the last clone is only the fallback.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::buckets::{ACTION_BUCKETS, SQLITE_BUCKETS};
use crate::config::DetailLevel;
use crate::exemplar::{ActorExemplars, Exemplar};
use crate::families::{ActionCells, OwnGauges, Totals, for_families, opt_buckets};
use crate::labels::*;
use crate::record::{ActiveRef, CounterRef, GaugeRef, HistogramRef, Record, Recording};
use crate::store::{EntryRef, Store, TypeInner};

/// An actor type, resolved once by the host ([`Metrics::actor_type`](crate::Metrics::actor_type)).
/// Registering its actors and resolving its actions go through it.
#[derive(Clone)]
pub struct ActorType {
    inner: Arc<TypeInner>,
    store: Arc<Store>,
}

impl fmt::Debug for ActorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ActorType").field(&self.inner.name).finish()
    }
}

impl ActorType {
    pub(crate) fn new(inner: Arc<TypeInner>, store: Arc<Store>) -> Self {
        ActorType { inner, store }
    }

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
        let entry = self
            .store
            .register(&self.inner, actor_id, generation, actor_key);
        ActorMetrics(Arc::new(Registration {
            entry,
            store: self.store.clone(),
            rec: Recording {
                stopped: AtomicBool::new(false),
                native: self.store.config.native_histograms,
                full: self.store.config.per_actor_detail == DetailLevel::Full,
            },
            own: OwnGauges::default(),
        }))
    }

    /// Resolves the aggregate cells of one action of this type. Call once per
    /// action and keep the result: recording with it is atomic operations only.
    /// The action's aggregate series exist (at 0) from this call on.
    pub fn action(&self, action: &str) -> ActionMetrics {
        ActionMetrics(self.inner.action(action))
    }

    /// This type's totals over every actor it ever had (what its `actor_type_*`
    /// aggregates export). Reads every retained actor of the instance: for a
    /// progress line, not for a hot path.
    pub fn totals(&self) -> Totals {
        let index = self.inner.index;
        self.store
            .snapshot(|e| e.ty.index == index)
            .type_totals()
            .into_iter()
            .nth(index)
            .unwrap_or_default()
    }
}

/// The resolved aggregate (`actor_type_action_*{actor_name, action}`) cells of one action.
#[derive(Clone, Debug)]
pub struct ActionMetrics(Arc<ActionCells>);

/// One registration of an actor's label set; dropped with the last handle clone.
struct Registration {
    entry: EntryRef,
    store: Arc<Store>,
    rec: Recording,
    own: OwnGauges,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Fallback only: hosts record the stop explicitly at task exit.
        self.store.stop(&self.entry, &self.rec.stopped, &self.own);
    }
}

/// A cheap, cloneable handle to one actor's series (an `Arc`).
///
/// Its accessors (one per family, listed in `families.rs`) return a recorder
/// for that family's cell:
///
/// ```
/// use actor_metrics::{Config, Metrics};
/// use actor_metrics::labels::Inbox;
/// let metrics = Metrics::new(Config::default()).unwrap();
/// let counter = metrics.actor_type("counter");
/// let actor = counter.register("a1", Some(1), "user-42");
/// actor.queue_messages_sent_total().inc();
/// actor.inbox_depth(Inbox::Action).set(3);
/// actor.stopped(); // gauges go to 0; the series stay for the retention window
/// assert_eq!(actor.inbox_depth(Inbox::Action).get(), 0);
/// ```
#[derive(Clone)]
pub struct ActorMetrics(Arc<Registration>);

impl fmt::Debug for ActorMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorMetrics")
            .field("labels", &self.0.entry.labels)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl ActorMetrics {
    /// Records the actor's end: this registration's gauge contributions leave
    /// (every gauge of the actor is 0 once no registration of its label set is
    /// live), `actor_active` drops, and the label set is queued to expire after
    /// the retention window. Idempotent; later calls and the final drop do
    /// nothing more.
    pub fn stopped(&self) {
        let r = &self.0;
        r.store.stop(&r.entry, &r.rec.stopped, &r.own);
    }

    /// Records that this registration never ran (its actor failed to start):
    /// like [`ActorMetrics::stopped`], but when no other registration holds the
    /// label set it is removed at once instead of being retained, so a start
    /// that keeps failing (a client retrying on a broken actor) leaves no
    /// series behind. What it recorded still counts in the aggregates.
    /// Idempotent, and a no-op after `stopped`.
    pub fn abandoned(&self) {
        let r = &self.0;
        r.store.abandon(&r.entry, &r.rec.stopped, &r.own);
    }

    /// Whether [`ActorMetrics::stopped`] was called (or the registration ended).
    pub fn is_stopped(&self) -> bool {
        self.0.rec.stopped.load(Ordering::SeqCst)
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
        self.0.entry.overflow()
    }

    /// Whether this handle's series live in `metrics` (not in another instance).
    #[cfg(feature = "tracing-layer")]
    pub(crate) fn is_of(&self, metrics: &crate::Metrics) -> bool {
        Arc::ptr_eq(&self.0.store, &metrics.0)
    }

    /// Records one action call: calls (and errors if `!ok`) and duration, per
    /// actor and per (`actor_name`, `action`).
    #[inline]
    pub fn record_action(&self, action: &ActionMetrics, elapsed: Duration, ok: bool) {
        self.record_action_traced(action, elapsed, ok, None);
    }

    /// Records one action call like [`ActorMetrics::record_action`], and
    /// offers its `exemplar` (the call's trace, `elapsed` in seconds, when it
    /// ended) to the duration buckets and, when `!ok`, the error counter: per
    /// (`actor_name`, `action`) always, per actor when the store is at `full`
    /// or the actor is promoted. With `None` it is `record_action`.
    #[inline]
    pub fn record_action_traced(
        &self,
        action: &ActionMetrics,
        elapsed: Duration,
        ok: bool,
        exemplar: Option<&Exemplar>,
    ) {
        let secs = elapsed.as_secs_f64();
        let s = &self.0.entry.series;
        let a = &action.0;
        let native = self.0.rec.native;
        s.action_calls_total.add(1);
        a.action_calls_total.add(1);
        if !ok {
            s.action_errors_total.add(1);
            a.action_errors_total.add(1);
        }
        s.action_duration_seconds
            .observe(&ACTION_BUCKETS, secs, native);
        a.action_duration_seconds
            .observe(&ACTION_BUCKETS, secs, native);
        if let Some(e) = exemplar {
            a.exemplars.offer(e, ok);
            if let Some(own) = self.own_exemplars() {
                own.offer_action(e, ok);
            }
        }
    }

    /// Records one SQLite commit that took `took` and ended at `at`: its
    /// duration, and, when the thread runs a traced call ([`exemplar::current`](crate::exemplar::current)),
    /// its exemplar (per type always, per actor at `full` or promoted).
    #[inline]
    pub fn record_sqlite_commit(&self, took: Duration, at: Instant) {
        let secs = took.as_secs_f64();
        self.0.entry.series.sqlite_commit_duration_seconds.observe(
            &SQLITE_BUCKETS,
            secs,
            self.0.rec.native,
        );
        if let Some(trace) = crate::exemplar::current() {
            // Built only where it is kept: most commits lose to a slower one.
            let make = || trace.exemplar(secs, at);
            self.0
                .entry
                .ty
                .commit_exemplars
                .offer_with(&SQLITE_BUCKETS, secs, make);
            if let Some(own) = self.own_exemplars() {
                own.offer_commit(secs, make);
            }
        }
    }

    /// The actor's own exemplar slots, allocated on first use, when it keeps
    /// them: the store is at `full`, or the actor is promoted. Read only on a
    /// traced call, so an untraced one pays nothing for it.
    #[inline]
    fn own_exemplars(&self) -> Option<&ActorExemplars> {
        let r = &*self.0;
        let e = &r.entry;
        (r.rec.full || e.window.promoted().is_some()).then(|| e.exemplars.get_or_init(Box::default))
    }
}

/// The recorder type each cell kind's accessor returns.
macro_rules! ref_of {
    (CounterCell) => { CounterRef<'_> };
    (GaugeCell) => { GaugeRef<'_> };
    (HistogramCell) => { HistogramRef<'_> };
    (ActiveCell) => { ActiveRef<'_> };
}

for_families! {
    $ scalar(sf, scell, sb, slevel, sname, shelp)
    labelled(lf, lcell, lb, le, llevel, lname, lhelp)
    action(af, acell, ab, alevel, aname, ahelp) => {
        impl ActorMetrics {
            $(
                #[doc = concat!("`actor_", $sname, "`: ", $shelp)]
                #[inline]
                pub fn $sf(&self) -> ref_of!($scell) {
                    let r = &*self.0;
                    r.entry.series.$sf.recorder(&r.own.$sf, &r.rec, opt_buckets!($($sb)?))
                }
            )*
            $(
                #[doc = concat!("`actor_", $lname, "`: ", $lhelp)]
                #[inline]
                pub fn $lf(&self, label: $le) -> ref_of!($lcell) {
                    let r = &*self.0;
                    let i = label.index();
                    r.entry.series.$lf.get(i).recorder(&r.own.$lf[i], &r.rec, opt_buckets!($($lb)?))
                }
            )*
        }
    }
}
