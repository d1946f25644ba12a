//! The storage of one series: plain atomics, updated without locks or lookups.
//!
//! A per-actor family is a *cell* inside the actor's one allocation; an update is
//! an atomic operation on it. A scrape reads cells into plain *totals*
//! ([`Cell::Total`]), which are also what aggregates add up. Nothing here writes
//! exposition text; that is the renderer's job.
//!
//! Gauges are shared by every live registration of a label set, so each
//! registration also keeps its own *contribution* ([`Cell::Own`]): a write moves
//! the registration's contribution and the shared cell by the same delta, and a
//! stop takes the registration's contribution back out. The shared cell is then
//! always the sum of its live registrations, and aggregates stay exact when two
//! actors share a label set (or the overflow set).

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::buckets::{Buckets, MAX_BUCKETS};
use crate::lazy::LazyBox;
use crate::native::{CELL_WORDS, Counts, MODE_CLASSIC, MODE_NATIVE, NativeTotal, add_exclusive};

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic counter (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution of durations.
    Histogram,
}

/// Storage of one series kind.
pub(crate) trait Cell: Default + Send + Sync {
    /// The plain value a scrape reads and aggregates add up.
    type Total: Default + Clone + Send + Sync;
    /// What one registration keeps of its own (a gauge's contribution; nothing
    /// for the other kinds).
    type Own: Default + Send + Sync;
    /// The family kind.
    const KIND: Kind;
    /// Adds this cell's value to `total`.
    fn add_to(&self, total: &mut Self::Total);
    /// Adds this cell's value into another cell (an actor's final values folded
    /// into its type's totals when the sweeper removes it). Only called with the
    /// fold lock held for writing, so `retired` has no concurrent writer and is
    /// updated with plain loads and stores rather than atomic read-modify-writes.
    fn fold_into(&self, retired: &Self);
    /// Takes a stopping registration's contribution back out of the shared cell.
    fn withdraw(&self, _own: &Self::Own) {}
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct CounterCell(AtomicU64);

/// A gauge: the sum of the contributions of the live registrations that share it.
#[derive(Debug, Default)]
pub struct GaugeCell(AtomicI64);

/// Live registrations of a label set: `actor_active`.
#[derive(Debug, Default)]
pub struct ActiveCell(AtomicU32);

/// A histogram: the sum as `f64` bits, and its counts in one of two modes,
/// the instance's, which the first observation writes into the counts' head:
///
/// * classic (native buckets off): the counts' words are the counts per
///   classic bucket (non-cumulative), `+Inf` last;
/// * native: the words are the zero bucket, the first native span observed
///   (8 bucket counts) and its split counts; further spans are allocated
///   apart (see `native.rs`). A split count is the observations of a native bucket that
///   holds a classic bound and lie above it: with the native buckets it makes
///   every classic count exact (see [`Buckets`]), and an observation costs one
///   bucket increment, not two.
///
/// The two modes share the words, so a cell costs the same in both, and a
/// histogram that stays within one octave (most of one actor's) holds its
/// native buckets without an allocation.
#[derive(Debug, Default)]
pub struct HistogramCell {
    sum_bits: AtomicU64,
    counts: Counts,
}

// Classic mode keeps a count per bucket in the words native mode uses.
const _: () = assert!(CELL_WORDS == MAX_BUCKETS + 1);

/// A histogram read at one moment, in either mode (see `HistogramCell`);
/// totals of several cells add up field by field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramTotal {
    /// Sum of observed values.
    pub sum: f64,
    /// Classic counts (native off) or counts above each split bound (native on).
    raw: [u64; MAX_BUCKETS + 1],
    /// The native buckets (empty with native buckets off).
    native: NativeTotal,
}

impl HistogramTotal {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        if self.native.is_empty() {
            self.raw.iter().sum()
        } else {
            self.native.count()
        }
    }

    /// The classic counts for `buckets` (the family's set): non-cumulative per
    /// bucket, `+Inf` at index `bounds().len()`.
    pub fn classic_counts(&self, buckets: &Buckets) -> [u64; MAX_BUCKETS + 1] {
        if self.native.is_empty() {
            self.raw
        } else {
            buckets.classic_from_native(self.native.zero, &self.native.buckets, &self.raw)
        }
    }

    /// The native buckets (empty when the instance records none).
    pub fn native(&self) -> &NativeTotal {
        &self.native
    }
}

impl CounterCell {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl GaugeCell {
    /// Moves the shared value by `d`.
    #[inline]
    pub(crate) fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ActiveCell {
    /// One more live registration; returns the count before.
    pub(crate) fn enter(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    /// One live registration fewer; returns the count before.
    pub(crate) fn leave(&self) -> u32 {
        self.0.fetch_sub(1, Ordering::SeqCst)
    }

    /// Sets the count of a new, unpublished entry.
    pub(crate) fn init(&self, n: u32) {
        self.0.store(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

impl HistogramCell {
    /// Counts `v` and adds it to the sum: with `native`, in its native bucket
    /// (and, in a split bucket above the bound, in that bound's split count);
    /// without, in its classic bucket. NaN is ignored: it would turn the sum
    /// into NaN for the rest of the series' life.
    #[inline]
    pub(crate) fn observe(&self, buckets: &Buckets, v: f64, native: bool) {
        if v.is_nan() {
            return;
        }
        if native {
            self.native().observe(buckets, v);
        } else {
            // The mode first: a reader that sees a count knows what it means.
            if self.counts.head.load(Ordering::Relaxed) == 0 {
                self.counts.head.fetch_or(MODE_CLASSIC, Ordering::Release);
            }
            // Release: a reader that sees the count sees the sum's earlier
            // updates (at most the sum runs ahead of the counts).
            self.counts.words[buckets.index_of(v)].fetch_add(1, Ordering::Release);
        }
        let mut cur = self.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.sum_bits.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The counts, which native mode reads and writes as native buckets.
    #[inline]
    pub(crate) fn native(&self) -> &Counts {
        &self.counts
    }

    /// The mode bits: 0 (nothing observed), `MODE_CLASSIC` or `MODE_NATIVE`.
    fn mode(&self) -> u64 {
        self.counts.head.load(Ordering::Acquire) & (MODE_CLASSIC | MODE_NATIVE)
    }

    /// The sum of observed values alone: one load.
    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// Observations above native bucket `k` (values above `upper_bound(k)`);
    /// 0 for a histogram in classic mode.
    pub(crate) fn native_above(&self, k: i32) -> u64 {
        if self.mode() != MODE_NATIVE {
            return 0;
        }
        self.native().count_above(k)
    }

    /// `(count, sum)` alone, for a histogram written without its buckets: no
    /// bucket is collected (with native buckets on, the count is theirs).
    pub(crate) fn count_and_sum(&self) -> (u64, f64) {
        let count = match self.mode() {
            MODE_NATIVE => self.native().count(),
            MODE_CLASSIC => self
                .counts
                .words
                .iter()
                .map(|c| c.load(Ordering::Acquire))
                .sum(),
            _ => 0,
        };
        (count, f64::from_bits(self.sum_bits.load(Ordering::Relaxed)))
    }
}

impl Cell for CounterCell {
    type Total = u64;
    type Own = ();
    const KIND: Kind = Kind::Counter;
    fn add_to(&self, total: &mut u64) {
        *total = total.wrapping_add(self.get());
    }
    fn fold_into(&self, retired: &Self) {
        let n = self.get();
        if n != 0 {
            add_exclusive(&retired.0, n);
        }
    }
}

impl Cell for GaugeCell {
    type Total = i64;
    type Own = AtomicI64;
    const KIND: Kind = Kind::Gauge;
    fn add_to(&self, total: &mut i64) {
        *total = total.wrapping_add(self.get());
    }
    fn fold_into(&self, _: &Self) {
        // A removed actor's gauges are zero (every registration withdrew); nothing to keep.
    }
    fn withdraw(&self, own: &AtomicI64) {
        let mine = own.swap(0, Ordering::SeqCst);
        if mine != 0 {
            self.add(-mine);
        }
    }
}

impl Cell for ActiveCell {
    type Total = u64;
    type Own = ();
    const KIND: Kind = Kind::Gauge;
    fn add_to(&self, total: &mut u64) {
        *total += u64::from(self.get());
    }
    fn fold_into(&self, _: &Self) {}
}

impl Cell for HistogramCell {
    type Total = HistogramTotal;
    type Own = ();
    const KIND: Kind = Kind::Histogram;
    fn add_to(&self, total: &mut HistogramTotal) {
        match self.mode() {
            MODE_NATIVE => self.native().add_to(&mut total.native, &mut total.raw),
            MODE_CLASSIC => {
                for (t, c) in total.raw.iter_mut().zip(&self.counts.words) {
                    *t = t.wrapping_add(c.load(Ordering::Acquire));
                }
            }
            _ => {}
        }
        total.sum += f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
    }
    fn fold_into(&self, retired: &Self) {
        match self.mode() {
            MODE_NATIVE => self.counts.fold_into(&retired.counts),
            MODE_CLASSIC => {
                if retired.counts.head.load(Ordering::Relaxed) == 0 {
                    retired.counts.head.store(MODE_CLASSIC, Ordering::Release);
                }
                // Most counts of an actor's histogram are zero; only non-zero
                // ones touch the type's cells.
                for (r, c) in retired.counts.words.iter().zip(&self.counts.words) {
                    let n = c.load(Ordering::Acquire);
                    if n != 0 {
                        add_exclusive(r, n);
                    }
                }
            }
            _ => return,
        }
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        if sum == 0.0 {
            return;
        }
        let cur = f64::from_bits(retired.sum_bits.load(Ordering::Relaxed));
        retired
            .sum_bits
            .store((cur + sum).to_bits(), Ordering::Relaxed);
    }
}

/// Where an enum-labelled family keeps its cells.
pub(crate) trait Block<C, const N: usize>: Default + Send + Sync {
    /// The cells, if they exist yet.
    fn get(&self) -> Option<&[C; N]>;
    /// The cells, made on first use.
    fn get_or_init(&self) -> &[C; N];
}

/// Cells inside the entry itself: a counter or gauge family (8 bytes a
/// value) costs less inline than an allocation of its own does in the
/// sweep, which would free it and read it from another cold line.
#[derive(Debug)]
pub(crate) struct Inline<C, const N: usize>([C; N]);

impl<C: Default, const N: usize> Default for Inline<C, N> {
    fn default() -> Self {
        Inline(std::array::from_fn(|_| C::default()))
    }
}

impl<C: Cell, const N: usize> Block<C, N> for Inline<C, N> {
    #[inline]
    fn get(&self) -> Option<&[C; N]> {
        Some(&self.0)
    }

    #[inline]
    fn get_or_init(&self) -> &[C; N] {
        &self.0
    }
}

/// Cells allocated on the first use of any variant (a histogram family:
/// hundreds of bytes that most actors never use).
impl<C: Cell, const N: usize> Block<C, N> for LazyBox<[C; N]> {
    #[inline]
    fn get(&self) -> Option<&[C; N]> {
        LazyBox::get(self)
    }

    #[inline]
    fn get_or_init(&self) -> &[C; N] {
        LazyBox::get_or_init(self, || Box::new(std::array::from_fn(|_| C::default())))
    }
}

/// A cell kind's choice of [`Block`] for its enum-labelled families.
pub(crate) trait LabelledCell: Cell {
    type Block<const N: usize>: Block<Self, N>;
}

impl LabelledCell for CounterCell {
    type Block<const N: usize> = Inline<Self, N>;
}

impl LabelledCell for GaugeCell {
    type Block<const N: usize> = Inline<Self, N>;
}

impl LabelledCell for HistogramCell {
    type Block<const N: usize> = LazyBox<[Self; N]>;
}

/// Cells of an enum-labelled family: a cell per variant, in one block (inline
/// for counters and gauges, allocated on first use for histograms, see
/// [`LabelledCell`]), and a bitmask of the variants used, so an actor exports
/// only the values it used.
pub struct Labelled<C: LabelledCell, const N: usize> {
    used: AtomicU32,
    cells: C::Block<N>,
}

impl<C: LabelledCell, const N: usize> std::fmt::Debug for Labelled<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Labelled")
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl<C: LabelledCell, const N: usize> Default for Labelled<C, N> {
    fn default() -> Self {
        const { assert!(N <= 32, "the used-variant mask is a u32") };
        Labelled {
            used: AtomicU32::new(0),
            cells: Default::default(),
        }
    }
}

impl<C: LabelledCell, const N: usize> Labelled<C, N> {
    /// The cell of variant `index`, marking it used.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &C {
        let cells = self.cells.get_or_init();
        let bit = 1u32 << index;
        // Marked before the caller writes, so a scrape that sees a value sees the variant.
        if self.used.load(Ordering::Relaxed) & bit == 0 {
            self.used.fetch_or(bit, Ordering::Release);
        }
        &cells[index]
    }

    /// The variants used so far, with their cells.
    pub(crate) fn used(&self) -> impl Iterator<Item = (usize, &C)> {
        let used = self.used.load(Ordering::Acquire);
        self.cells.get().into_iter().flat_map(move |cells| {
            cells
                .iter()
                .enumerate()
                .filter(move |(i, _)| used & (1 << i) != 0)
        })
    }

    pub(crate) fn add_to(&self, total: &mut [C::Total; N]) {
        for (i, c) in self.used() {
            c.add_to(&mut total[i]);
        }
    }

    /// The variants used so far and the block, when any is (a never-used
    /// family, inline or not, has nothing to fold, fetch or withdraw).
    fn in_use(&self) -> Option<(u32, &[C; N])> {
        let used = self.used.load(Ordering::Acquire);
        self.cells
            .get()
            .filter(|_| used != 0)
            .map(|cells| (used, cells))
    }

    pub(crate) fn fold_into(&self, retired: &Self) {
        let Some((used, cells)) = self.in_use() else {
            return;
        };
        // The retired side marks what it received, as a recording would.
        retired.used.fetch_or(used, Ordering::Release);
        let into = retired.cells.get_or_init();
        for (i, (c, r)) in cells.iter().zip(into.iter()).enumerate() {
            if used & (1 << i) != 0 {
                c.fold_into(r);
            }
        }
    }

    /// Asks the CPU for the block's lines, if it is allocated and used (a
    /// hint; an inline block is in the entry's own lines).
    pub(crate) fn prefetch(&self) {
        if let Some((_, cells)) = self.in_use() {
            crate::prefetch::prefetch(cells.as_ptr().cast(), size_of::<[C; N]>());
        }
    }

    /// Takes a registration's contributions back out, of the variants used
    /// only: a contribution can only be non-zero where a write marked its
    /// variant first (and allocated the block), so a stop of an actor that
    /// never used the family costs one load, not an atomic swap per variant.
    pub(crate) fn withdraw(&self, own: &[C::Own; N]) {
        let Some((used, cells)) = self.in_use() else {
            return;
        };
        for (i, (c, o)) in cells.iter().zip(own).enumerate() {
            if used & (1 << i) != 0 {
                c.withdraw(o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets::ACTION_BUCKETS;

    #[test]
    fn histogram_buckets_and_sum_in_both_modes() {
        for native in [false, true] {
            let h = HistogramCell::default();
            let values = [0.0005, 0.001, 0.2, 100.0, f64::NAN, 0.0, 0.0011, 0.00099];
            for v in values {
                h.observe(&ACTION_BUCKETS, v, native);
            }
            let mut t = HistogramTotal::default();
            h.add_to(&mut t);
            assert_eq!(t.count(), 7, "NaN is not counted (native {native})");
            let c = t.classic_counts(&ACTION_BUCKETS);
            // 0.0005, 0.001, 0, 0.00099 (le is inclusive); 0.0011; 0.2; 100.
            assert_eq!(c[0], 4, "native {native}");
            assert_eq!(c[1], 1, "native {native}");
            assert_eq!(c[7], 1, "0.2 <= 0.25 (native {native})");
            assert_eq!(
                c[ACTION_BUCKETS.bounds().len()],
                1,
                "+Inf (native {native})"
            );
            assert_eq!(c.iter().sum::<u64>(), 7);
            assert!((t.sum - 100.20359).abs() < 1e-9, "{}", t.sum);
            assert_eq!(t.native().is_empty(), !native);
        }
    }

    #[test]
    fn classic_counts_through_native_buckets_are_exact_at_every_bound() {
        // Values just below, at and just above every classic bound, and in
        // between: both modes give the same classic counts.
        use crate::buckets::{SHUTDOWN_BUCKETS, SQLITE_BUCKETS, STARTUP_BUCKETS, TASK_BUCKETS};
        for buckets in [
            &ACTION_BUCKETS,
            &SQLITE_BUCKETS,
            &TASK_BUCKETS,
            &SHUTDOWN_BUCKETS,
            &STARTUP_BUCKETS,
        ] {
            let (classic, native) = (HistogramCell::default(), HistogramCell::default());
            for b in buckets.bounds() {
                for v in [
                    b * (1.0 - 1e-12),
                    *b,
                    b * (1.0 + 1e-12),
                    b * 0.97,
                    b * 1.03,
                    b * 50.0,
                ] {
                    classic.observe(buckets, v, false);
                    native.observe(buckets, v, true);
                }
            }
            let (mut a, mut b) = (HistogramTotal::default(), HistogramTotal::default());
            classic.add_to(&mut a);
            native.add_to(&mut b);
            assert_eq!(
                a.classic_counts(buckets),
                b.classic_counts(buckets),
                "{}",
                buckets.name()
            );
            assert_eq!(a.count(), b.count());
            assert_eq!(a.sum.to_bits(), b.sum.to_bits());
        }
    }

    /// Folding keeps every classic count exact in both modes: the split
    /// counts travel with their spans, inline or boxed.
    #[test]
    fn a_fold_keeps_classic_counts_exact_in_both_modes() {
        let buckets = &ACTION_BUCKETS;
        for native in [false, true] {
            let (a, b, both) = (
                HistogramCell::default(),
                HistogramCell::default(),
                HistogramCell::default(),
            );
            for (i, bound) in buckets.bounds().iter().enumerate() {
                for v in [bound * (1.0 - 1e-12), *bound, bound * (1.0 + 1e-12), 0.0] {
                    let cell = if i % 3 == 0 { &a } else { &b };
                    cell.observe(buckets, v, native);
                    both.observe(buckets, v, native);
                }
            }
            a.fold_into(&b);
            let (mut folded, mut whole) = (HistogramTotal::default(), HistogramTotal::default());
            b.add_to(&mut folded);
            both.add_to(&mut whole);
            assert_eq!(
                folded.classic_counts(buckets),
                whole.classic_counts(buckets),
                "native {native}"
            );
            assert_eq!(folded.native(), whole.native());
            assert_eq!(folded.count(), whole.count());
        }
    }

    /// A histogram within one octave keeps its native buckets in the cell.
    #[test]
    fn one_octave_allocates_nothing() {
        let h = HistogramCell::default();
        for v in [0.0011, 0.0013, 0.0019, 0.0] {
            h.observe(&ACTION_BUCKETS, v, true);
        }
        assert!(h.native().others.get().is_none());
        assert_eq!(h.count_and_sum().0, 4);
        h.observe(&ACTION_BUCKETS, 0.1, true);
        assert!(h.native().others.get().is_some());
        assert_eq!(h.count_and_sum().0, 5);
    }

    #[test]
    fn a_gauge_is_the_sum_of_its_registrations_and_a_withdrawal_takes_one_out() {
        let g = GaugeCell::default();
        let (a, b) = (AtomicI64::new(0), AtomicI64::new(0));
        // a sets 2, b sets 3, a moves to 5: the cell holds 5 + 3.
        for (own, v) in [(&a, 2), (&b, 3), (&a, 5)] {
            let old = own.swap(v, Ordering::SeqCst);
            g.add(v - old);
        }
        assert_eq!(g.get(), 8);
        g.withdraw(&a);
        assert_eq!(g.get(), 3);
        g.withdraw(&a);
        assert_eq!(g.get(), 3, "withdrawing twice takes nothing more");
        g.withdraw(&b);
        assert_eq!(g.get(), 0);
    }

    #[test]
    fn labelled_cells_allocate_on_first_use_and_report_used_variants() {
        let l: Labelled<CounterCell, 4> = Labelled::default();
        assert_eq!(l.used().count(), 0);
        l.get(2).add(5);
        let used: Vec<_> = l.used().map(|(i, c)| (i, c.get())).collect();
        assert_eq!(used, [(2, 5)]);
        let mut totals = [0u64; 4];
        l.add_to(&mut totals);
        assert_eq!(totals, [0, 0, 5, 0]);
    }
}
