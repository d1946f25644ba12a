//! The recorders an accessor on [`ActorMetrics`](crate::ActorMetrics) returns:
//! a reference to one resolved cell, so a write is an atomic operation with no
//! lookup.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::buckets::Buckets;
use crate::cells::{ActiveCell, Cell, CounterCell, GaugeCell, HistogramCell, HistogramTotal};

/// What a registration's recorders share: its stop flag, whether its
/// histograms record native buckets, and whether it keeps exemplars of its
/// own whatever its promotion (the store is at `full`).
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) stopped: AtomicBool,
    pub(crate) native: bool,
    pub(crate) full: bool,
}

/// How a family's cell is recorded through a handle: the cell, the
/// registration's own part of it, and the registration's [`Recording`].
pub(crate) trait Record: Cell {
    type Ref<'a>
    where
        Self: 'a;
    fn recorder<'a>(
        &'a self,
        own: &'a Self::Own,
        rec: &'a Recording,
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
        self.0.get()
    }
}

/// Records into one gauge of an actor, as this registration's contribution.
///
/// Registrations that share a label set each contribute; the exported value is
/// their sum, and a stopped registration's contribution is taken back out. A
/// write through a stopped registration is ignored, and one racing with the stop
/// is undone, so no gauge is left stuck after the actor is gone.
#[derive(Clone, Copy)]
pub struct GaugeRef<'a> {
    cell: &'a GaugeCell,
    own: &'a AtomicI64,
    stopped: &'a AtomicBool,
}

impl fmt::Debug for GaugeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeRef")
            .field("value", &self.get())
            .field("own", &self.own.load(Ordering::SeqCst))
            .finish()
    }
}

impl GaugeRef<'_> {
    /// Sets this registration's value.
    #[inline]
    pub fn set(self, v: i64) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let old = self.own.swap(v, Ordering::SeqCst);
        self.cell.add(v.wrapping_sub(old));
        self.undo_if_stopped();
    }
    /// Adds `d` (may be negative).
    #[inline]
    pub fn add(self, d: i64) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        self.own.fetch_add(d, Ordering::SeqCst);
        self.cell.add(d);
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
    /// The exported value: the sum over live registrations of the label set.
    pub fn get(self) -> i64 {
        self.cell.get()
    }
    /// This registration's own contribution. For tests (`test-util`).
    #[cfg(feature = "test-util")]
    pub fn own(self) -> i64 {
        self.own.load(Ordering::SeqCst)
    }

    /// The stop path sets `stopped` and then withdraws; this path writes and then
    /// reads `stopped` (both sequentially consistent), so at least one of the two
    /// sees the other. Both withdraw with a swap of the contribution, so exactly
    /// what was written is taken out, once.
    #[inline]
    fn undo_if_stopped(self) {
        if self.stopped.load(Ordering::SeqCst) {
            self.cell.withdraw(self.own);
        }
    }
}

/// Records into one histogram of an actor.
#[derive(Debug, Clone, Copy)]
pub struct HistogramRef<'a> {
    cell: &'a HistogramCell,
    buckets: &'static Buckets,
    native: bool,
}

impl HistogramRef<'_> {
    /// Observes a value in seconds (NaN is ignored).
    #[inline]
    pub fn observe(self, secs: f64) {
        self.cell.observe(self.buckets, secs, self.native);
    }
    /// Observes a duration.
    #[inline]
    pub fn observe_duration(self, d: Duration) {
        self.observe(d.as_secs_f64());
    }
    /// The current totals, native buckets included.
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
        self.0.get()
    }
}

impl Record for CounterCell {
    type Ref<'a> = CounterRef<'a>;
    #[inline]
    fn recorder<'a>(
        &'a self,
        _: &'a (),
        _: &'a Recording,
        _: Option<&'static Buckets>,
    ) -> CounterRef<'a> {
        CounterRef(self)
    }
}

impl Record for GaugeCell {
    type Ref<'a> = GaugeRef<'a>;
    #[inline]
    fn recorder<'a>(
        &'a self,
        own: &'a AtomicI64,
        rec: &'a Recording,
        _: Option<&'static Buckets>,
    ) -> GaugeRef<'a> {
        GaugeRef {
            cell: self,
            own,
            stopped: &rec.stopped,
        }
    }
}

impl Record for ActiveCell {
    type Ref<'a> = ActiveRef<'a>;
    #[inline]
    fn recorder<'a>(
        &'a self,
        _: &'a (),
        _: &'a Recording,
        _: Option<&'static Buckets>,
    ) -> ActiveRef<'a> {
        ActiveRef(self)
    }
}

impl Record for HistogramCell {
    type Ref<'a> = HistogramRef<'a>;
    #[inline]
    fn recorder<'a>(
        &'a self,
        _: &'a (),
        rec: &'a Recording,
        buckets: Option<&'static Buckets>,
    ) -> HistogramRef<'a> {
        HistogramRef {
            cell: self,
            // The families declaration passes its bucket set for every histogram.
            buckets: buckets.unwrap_or(&crate::buckets::ACTION_BUCKETS),
            native: rec.native,
        }
    }
}
