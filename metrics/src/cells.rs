//! The storage of one series: plain atomics, updated without locks or lookups.
//!
//! A per-actor family is a *cell* inside the actor's one allocation; an update is
//! one atomic operation on it. Scrapes read cells into plain *totals*
//! ([`Cell::Total`]), which are also what aggregates add up.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Most finite bucket bounds a histogram family may declare.
pub const MAX_BUCKETS: usize = 12;

/// A histogram's finite bucket upper bounds, in seconds, with their `le`
/// label values formatted once.
#[derive(Debug)]
pub struct Buckets {
    bounds: &'static [f64],
    le: OnceLock<Box<[Box<str>]>>,
}

impl Buckets {
    /// Declares a bucket set; at most [`MAX_BUCKETS`] increasing finite bounds.
    pub const fn new(bounds: &'static [f64]) -> Self {
        assert!(bounds.len() <= MAX_BUCKETS, "too many buckets");
        Buckets {
            bounds,
            le: OnceLock::new(),
        }
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// `le` values as `TextEncoder` writes them (`f64` Display), then `+Inf`.
    pub(crate) fn le_values(&self) -> &[Box<str>] {
        self.le.get_or_init(|| {
            self.bounds
                .iter()
                .map(|b| b.to_string().into_boxed_str())
                .chain(std::iter::once(Box::from("+Inf")))
                .collect()
        })
    }
}

/// Action calls: 1 ms to 10 s.
pub static ACTION_BUCKETS: Buckets = Buckets::new(&[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
]);
/// SQLite commits and statements: 50 µs to 500 ms.
pub static SQLITE_BUCKETS: Buckets = Buckets::new(&[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
]);
/// User tasks: 10 ms to 1 h (tasks run long).
pub static TASK_BUCKETS: Buckets = Buckets::new(&[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
]);
/// Shutdown waits: 1 ms to 60 s (timeouts are seconds long).
pub static SHUTDOWN_BUCKETS: Buckets = Buckets::new(&[
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
]);
/// Startup phases: 0.5 ms to 5 s.
pub static STARTUP_BUCKETS: Buckets = Buckets::new(&[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
]);
/// The sweeper's own tick duration: 10 µs to 1 s.
pub static SWEEP_BUCKETS: Buckets = Buckets::new(&[
    0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0,
]);

/// Storage of one series kind. `Total` is the plain value a scrape reads and
/// aggregates add up.
pub(crate) trait Cell: Default + Send + Sync {
    type Total: Default + Clone;
    /// The `# TYPE` word.
    const TYPE: &'static str;
    fn add_to(&self, total: &mut Self::Total);
    /// Adds this cell's value into another cell (an actor's final values folded
    /// into its type's totals when the sweeper removes it). Only called with the
    /// fold lock held for writing, so `retired` has no concurrent writer and is
    /// updated with plain loads and stores rather than atomic read-modify-writes.
    fn fold_into(&self, retired: &Self);
    /// Zeroes a gauge; counters and histograms keep their totals.
    fn zero(&self) {}
    fn render(
        total: &Self::Total,
        name: &str,
        labels: &str,
        buckets: Option<&Buckets>,
        out: &mut String,
    );
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct CounterCell(pub(crate) AtomicU64);

/// A gauge; per actor it is set or moved by deltas, and zeroed when the actor stops.
#[derive(Debug, Default)]
pub struct GaugeCell(pub(crate) AtomicI64);

/// Live registrations of a label set: `actor_active`.
#[derive(Debug, Default)]
pub struct ActiveCell(pub(crate) AtomicU32);

/// A histogram: per-bucket (non-cumulative) counts, the `+Inf` bucket last, and
/// the sum as `f64` bits. The count is the sum of the buckets, so a scrape always
/// sees `_count` equal to the `+Inf` bucket.
#[derive(Debug, Default)]
pub struct HistogramCell {
    counts: [AtomicU64; MAX_BUCKETS + 1],
    sum_bits: AtomicU64,
}

/// A histogram read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramTotal {
    /// Non-cumulative counts per bucket; index `bounds.len()` is `+Inf`.
    pub counts: [u64; MAX_BUCKETS + 1],
    /// Sum of observed values.
    pub sum: f64,
}

impl HistogramTotal {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// `a += n` for a cell with no concurrent writer (see [`Cell::fold_into`]).
#[inline]
fn add_exclusive(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl CounterCell {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

impl HistogramCell {
    #[inline]
    pub(crate) fn observe(&self, bounds: &[f64], v: f64) {
        let idx = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
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
        // The bucket count is written last: a reader that sees it sees the sum too
        // (at most the sum runs ahead of the count, never behind by a whole value).
        self.counts[idx].fetch_add(1, Ordering::Release);
    }
}

impl Cell for CounterCell {
    type Total = u64;
    const TYPE: &'static str = "counter";
    fn add_to(&self, total: &mut u64) {
        *total += self.0.load(Ordering::Relaxed);
    }
    fn fold_into(&self, retired: &Self) {
        let n = self.0.load(Ordering::Relaxed);
        if n != 0 {
            add_exclusive(&retired.0, n);
        }
    }
    fn render(total: &u64, name: &str, labels: &str, _: Option<&Buckets>, out: &mut String) {
        sample_line(out, name, "", labels, None);
        push_u64(out, *total);
        out.push('\n');
    }
}

impl Cell for GaugeCell {
    type Total = i64;
    const TYPE: &'static str = "gauge";
    fn add_to(&self, total: &mut i64) {
        *total += self.0.load(Ordering::SeqCst);
    }
    fn fold_into(&self, _: &Self) {
        // A removed actor's gauges are zero (it stopped); nothing to keep.
    }
    fn zero(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
    fn render(total: &i64, name: &str, labels: &str, _: Option<&Buckets>, out: &mut String) {
        sample_line(out, name, "", labels, None);
        push_i64(out, *total);
        out.push('\n');
    }
}

impl Cell for ActiveCell {
    type Total = u64;
    const TYPE: &'static str = "gauge";
    fn add_to(&self, total: &mut u64) {
        *total += u64::from(self.0.load(Ordering::SeqCst));
    }
    fn fold_into(&self, _: &Self) {}
    fn render(total: &u64, name: &str, labels: &str, _: Option<&Buckets>, out: &mut String) {
        sample_line(out, name, "", labels, None);
        push_u64(out, *total);
        out.push('\n');
    }
}

impl Cell for HistogramCell {
    type Total = HistogramTotal;
    const TYPE: &'static str = "histogram";
    fn add_to(&self, total: &mut HistogramTotal) {
        for (t, c) in total.counts.iter_mut().zip(&self.counts) {
            *t += c.load(Ordering::Acquire);
        }
        total.sum += f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
    }
    fn fold_into(&self, retired: &Self) {
        // Most buckets of an actor's histogram are empty; only non-zero ones
        // touch the type's cells (cold cache lines otherwise left alone).
        let mut any = false;
        for (r, c) in retired.counts.iter().zip(&self.counts) {
            let n = c.load(Ordering::Acquire);
            if n != 0 {
                add_exclusive(r, n);
                any = true;
            }
        }
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        if !any && sum == 0.0 {
            return;
        }
        let cur = f64::from_bits(retired.sum_bits.load(Ordering::Relaxed));
        retired
            .sum_bits
            .store((cur + sum).to_bits(), Ordering::Relaxed);
    }
    fn render(
        total: &HistogramTotal,
        name: &str,
        labels: &str,
        buckets: Option<&Buckets>,
        out: &mut String,
    ) {
        let Some(buckets) = buckets else { return };
        let n = buckets.bounds().len();
        let mut cumulative = 0u64;
        for (i, le) in buckets.le_values().iter().enumerate() {
            cumulative += if i < n {
                total.counts[i]
            } else {
                // +Inf also holds anything counted past the declared bounds.
                total.counts[n..].iter().sum()
            };
            sample_line(out, name, "_bucket", labels, Some(le));
            push_u64(out, cumulative);
            out.push('\n');
        }
        sample_line(out, name, "_sum", labels, None);
        push_f64(out, total.sum);
        out.push('\n');
        sample_line(out, name, "_count", labels, None);
        push_u64(out, cumulative);
        out.push('\n');
    }
}

/// Writes `name{suffix}{labels[,le="…"]} ` (up to the value).
fn sample_line(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Largest integer that `f64` holds exactly; below it, integer and float
/// formatting agree, so the fast integer path writes what `TextEncoder` writes.
const EXACT_F64_INT: u64 = 1 << 53;

pub(crate) fn push_u64(out: &mut String, v: u64) {
    if v < EXACT_F64_INT {
        out.push_str(itoa::Buffer::new().format(v));
    } else {
        push_f64(out, v as f64);
    }
}

pub(crate) fn push_i64(out: &mut String, v: i64) {
    if v.unsigned_abs() < EXACT_F64_INT {
        out.push_str(itoa::Buffer::new().format(v));
    } else {
        push_f64(out, v as f64);
    }
}

/// `f64` as `TextEncoder` writes it (`Display`, so `1` not `1.0`; `+Inf`/`-Inf`/`NaN`).
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// Cells of an enum-labelled family: one block with a cell per variant, allocated
/// on the first use of any variant, and a bitmask of the variants used, so an
/// actor exports only the values it used. One allocation per family instead of
/// one per variant keeps an entry's allocations (and the sweep's frees) few.
#[derive(Debug)]
pub struct Labelled<C, const N: usize> {
    used: AtomicU32,
    cells: OnceLock<Box<[C; N]>>,
}

impl<C, const N: usize> Default for Labelled<C, N> {
    fn default() -> Self {
        const { assert!(N <= 32, "the used-variant mask is a u32") };
        Labelled {
            used: AtomicU32::new(0),
            cells: OnceLock::new(),
        }
    }
}

impl<C: Cell, const N: usize> Labelled<C, N> {
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &C {
        let cells = self
            .cells
            .get_or_init(|| Box::new(std::array::from_fn(|_| C::default())));
        let bit = 1u32 << index;
        // Marked before the caller writes, so a scrape that sees a value sees the variant.
        if self.used.load(Ordering::Relaxed) & bit == 0 {
            self.used.fetch_or(bit, Ordering::Release);
        }
        &cells[index]
    }

    pub(crate) fn used(&self) -> impl Iterator<Item = (usize, &C)> {
        let used = self.used.load(Ordering::Acquire);
        self.cells.get().into_iter().flat_map(move |cells| {
            cells
                .iter()
                .enumerate()
                .filter(move |(i, _)| used & (1 << i) != 0)
        })
    }

    pub(crate) fn zero(&self) {
        self.used().for_each(|(_, c)| c.zero());
    }

    pub(crate) fn add_to(&self, total: &mut [Option<C::Total>; N]) {
        for (i, c) in self.used() {
            c.add_to(total[i].get_or_insert_with(Default::default));
        }
    }

    pub(crate) fn fold_into(&self, retired: &Self) {
        let used = self.used.load(Ordering::Acquire);
        let Some(cells) = self.cells.get() else {
            return;
        };
        // The retired side marks what it received, as a recording would.
        retired.used.fetch_or(used, Ordering::Release);
        let into = retired
            .cells
            .get_or_init(|| Box::new(std::array::from_fn(|_| C::default())));
        for (i, (c, r)) in cells.iter().zip(into.iter()).enumerate() {
            if used & (1 << i) != 0 {
                c.fold_into(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_formatting_matches_f64_display() {
        for v in [0u64, 1, 42, 1 << 52, (1 << 53) - 1, 1 << 53, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, (v as f64).to_string(), "value {v}");
        }
        for v in [-1i64, -(1 << 53), i64::MIN] {
            let mut s = String::new();
            push_i64(&mut s, v);
            assert_eq!(s, (v as f64).to_string(), "value {v}");
        }
    }

    #[test]
    fn histogram_buckets_and_sum() {
        let h = HistogramCell::default();
        let b = &ACTION_BUCKETS;
        for v in [0.0005, 0.001, 0.2, 100.0] {
            h.observe(b.bounds(), v);
        }
        let mut t = HistogramTotal::default();
        h.add_to(&mut t);
        assert_eq!(t.count(), 4);
        assert_eq!(t.counts[0], 2); // 0.0005 and 0.001 (le is inclusive)
        assert_eq!(t.counts[7], 1); // 0.2 <= 0.25
        assert_eq!(t.counts[b.bounds().len()], 1); // +Inf
        assert!((t.sum - 100.2015).abs() < 1e-9);
        let mut out = String::new();
        HistogramCell::render(&t, "h", "a=\"1\"", Some(b), &mut out);
        assert!(out.starts_with("h_bucket{a=\"1\",le=\"0.001\"} 2\n"));
        assert!(out.contains("h_bucket{a=\"1\",le=\"+Inf\"} 4\n"));
        assert!(out.ends_with("h_count{a=\"1\"} 4\n"));
    }
}
