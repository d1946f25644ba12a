//! Histogram bucket sets, one per kind of duration: the classic bounds, and
//! the range its native (exponential) buckets cover.
//!
//! Each histogram family names its set in `families.rs`; the sets and their
//! reasons are listed in METRICS.md.

use crate::native::{ClassicSplits, Head, MAX_KEY, MIN_KEY, SPLITS_PER_OCTAVE, key, span_of};
pub use crate::native::{NativeRange, SCHEMA, ZERO_THRESHOLD, upper_bound as native_upper_bound};

/// Words of a bitmap over every native key.
const KEY_WORDS: usize = ((MAX_KEY - MIN_KEY + 1) as usize).div_ceil(64);

/// Most finite bucket bounds a histogram family may declare.
pub const MAX_BUCKETS: usize = 12;

/// A histogram's finite bucket upper bounds, in seconds (`+Inf` is implied),
/// and the range of its native buckets.
///
/// With native buckets on, a histogram stores its classic counts through them:
/// each classic bound falls inside one native bucket (its *split* bucket), and
/// the cell counts only the observations of a split bucket that lie above the
/// bound. Every classic count is then exact and derived at scrape time, and an
/// observation costs one bucket increment, not two.
#[derive(Debug)]
pub struct Buckets {
    name: &'static str,
    bounds: &'static [f64],
    native: NativeRange,
    /// The native key each classic bound falls in.
    split_keys: [i32; MAX_BUCKETS],
    /// Bit `key - MIN_KEY` is set for every split key.
    split_mask: [u64; KEY_WORDS],
    /// The classic index by octave, for [`Buckets::index_by_octave`].
    octaves: Octaves,
}

/// Octaves (powers of two) covered from the first bound's: every set spans
/// fewer.
const OCTAVES: usize = 32;

/// The classic bucket index by the binary exponent of a value: with at most
/// one bound per octave `[2^e, 2^(e+1))`, a value in octave `e` is in bucket
/// `base[e]`, or the next one if it is above `bound[e]` (`+∞` when the octave
/// has no bound). One table load and one compare instead of a compare per
/// bound; it serves exemplar slots, which choose their bucket apart from the
/// observation.
#[derive(Debug)]
struct Octaves {
    /// Biased exponent of the first bound; `None` when a set does not fit
    /// (two bounds in one octave, or a span past [`OCTAVES`]).
    first: Option<u64>,
    base: [u8; OCTAVES],
    bound: [f64; OCTAVES],
}

/// The biased binary exponent of a positive finite `v`.
const fn exponent(v: f64) -> u64 {
    (v.to_bits() >> 52) & 0x7ff
}

impl Octaves {
    const fn new(bounds: &[f64]) -> Octaves {
        let mut o = Octaves {
            first: None,
            base: [0; OCTAVES],
            bound: [f64::INFINITY; OCTAVES],
        };
        let n = bounds.len();
        if n == 0 || exponent(bounds[n - 1]) - exponent(bounds[0]) >= OCTAVES as u64 {
            return o;
        }
        let first = exponent(bounds[0]);
        let mut i = 0;
        while i < n {
            let e = (exponent(bounds[i]) - first) as usize;
            if o.bound[e] != f64::INFINITY {
                return o;
            }
            o.bound[e] = bounds[i];
            i += 1;
        }
        // base[e]: the bounds in octaves below e, all below any value in e.
        let (mut e, mut below) = (0, 0u8);
        while e < OCTAVES {
            o.base[e] = below;
            if o.bound[e] != f64::INFINITY {
                below += 1;
            }
            e += 1;
        }
        o.first = Some(first);
        o
    }
}

impl ClassicSplits for Buckets {
    #[inline]
    fn max_key(&self) -> i32 {
        self.native.max_key()
    }

    /// The rank, among the classic bounds inside the octave of native
    /// bucket `k`, of the bound inside bucket `k`, if there is one: with the
    /// span's first split index it gives the bound's index. Bit operations on
    /// the split mask, no search (bucket `k`'s octave is one byte of the mask).
    #[inline]
    fn split_rank(&self, k: i32) -> Option<usize> {
        let bit = (k - MIN_KEY) as usize;
        let slot = bit % 8;
        let octave = (self.split_mask[bit / 64] >> (bit % 64 - slot)) as u8;
        (octave & (1 << slot) != 0).then(|| (octave & ((1 << slot) - 1)).count_ones() as usize)
    }

    /// The head of `octave`'s span: which classic bounds lie inside it.
    fn head_of(&self, octave: i32) -> Head {
        let keys = &self.split_keys[..self.bounds.len()];
        let first = keys.partition_point(|&k| span_of(k).0 < octave);
        let splits = keys[first..]
            .iter()
            .take_while(|&&k| span_of(k).0 == octave)
            .count();
        Head::new(octave, first, splits)
    }

    #[inline]
    fn bound(&self, i: usize) -> f64 {
        self.bounds[i]
    }
}

impl Buckets {
    /// Declares a bucket set: at most [`MAX_BUCKETS`] increasing finite classic
    /// bounds inside the native range, no two in one native bucket and at most
    /// four in one power of two (checked at
    /// compile time), and the range of its native buckets.
    pub const fn new(name: &'static str, bounds: &'static [f64], native: NativeRange) -> Self {
        assert!(bounds.len() <= MAX_BUCKETS, "too many buckets");
        let mut split_keys = [0; MAX_BUCKETS];
        let mut split_mask = [0u64; KEY_WORDS];
        let mut i = 0;
        while i < bounds.len() {
            let b = bounds[i];
            assert!(
                b > ZERO_THRESHOLD,
                "a classic bound lies in the zero bucket"
            );
            let k = key(b);
            assert!(
                k < native.max_key(),
                "a classic bound lies at or past the native top"
            );
            assert!(
                i == 0 || k > split_keys[i - 1],
                "two classic bounds share a native bucket"
            );
            split_keys[i] = k;
            assert!(
                i < SPLITS_PER_OCTAVE
                    || span_of(split_keys[i - SPLITS_PER_OCTAVE]).0 != span_of(k).0,
                "more classic bounds in one octave than a span keeps split counts for"
            );
            let bit = (k - MIN_KEY) as usize;
            split_mask[bit / 64] |= 1 << (bit % 64);
            i += 1;
        }
        Buckets {
            name,
            bounds,
            native,
            split_keys,
            split_mask,
            octaves: Octaves::new(bounds),
        }
    }

    /// Exact classic counts (non-cumulative, `+Inf` last) from native buckets
    /// and the split counts: `above[i]` observations of bound `i`'s native
    /// bucket lie above it.
    pub(crate) fn classic_from_native(
        &self,
        zero: u64,
        native: &[(i32, u64)],
        above: &[u64],
    ) -> [u64; MAX_BUCKETS + 1] {
        let mut out = [0u64; MAX_BUCKETS + 1];
        let n = self.bounds.len();
        let mut below = zero; // observations at or below the current bound
        let mut prev = 0u64;
        let mut buckets = native.iter().peekable();
        for i in 0..n {
            let k = self.split_keys[i];
            while let Some(&&(key, count)) = buckets.peek() {
                if key > k {
                    break;
                }
                below += count;
                buckets.next();
            }
            // Bucket k was added whole; its part above the bound is not ≤ it.
            let cumulative = below.saturating_sub(above[i]);
            out[i] = cumulative.saturating_sub(prev);
            prev = cumulative;
        }
        let total = zero + native.iter().map(|(_, c)| c).sum::<u64>();
        out[n] = total.saturating_sub(prev);
        out
    }

    /// The range its native buckets cover (values above it merge into the top bucket).
    pub fn native(&self) -> NativeRange {
        self.native
    }

    /// The set's name in METRICS.md (`action`, `sqlite`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// As [`Buckets::index_of`], by the octave of `v`: one table load and
    /// one compare (every set declared here has at most one bound per
    /// octave; one that does not falls back to `index_of`).
    #[inline]
    pub(crate) fn index_by_octave(&self, v: f64) -> usize {
        let Some(first) = self.octaves.first else {
            return self.index_of(v);
        };
        let bits = v.to_bits();
        if bits >> 63 != 0 {
            // Negative, -0.0, or a NaN with its sign bit: as `index_of`.
            return if v.is_nan() { self.bounds.len() } else { 0 };
        }
        // A positive NaN or +∞ has the top exponent: past every octave.
        match usize::try_from((bits >> 52).wrapping_sub(first)) {
            Ok(e) if e < OCTAVES => {
                usize::from(self.octaves.base[e]) + usize::from(v > self.octaves.bound[e])
            }
            // Below the first bound's octave (wrapped): bucket 0.
            _ if bits >> 52 < first => 0,
            _ => self.bounds.len(),
        }
    }

    /// Index of the bucket `v` falls in (`le` is inclusive); `bounds().len()` is `+Inf`.
    #[inline]
    pub(crate) fn index_of(&self, v: f64) -> usize {
        // The bounds increase, so the first bound >= v is at the count of
        // bounds below v; counted without branches (NaN counts none: bucket 0,
        // though callers drop NaN before). A data-dependent early exit would
        // mispredict on most observations of a spread distribution.
        if v.is_nan() {
            return self.bounds.len();
        }
        self.bounds.iter().map(|b| usize::from(*b < v)).sum()
    }
}

/// Action calls: 1 ms to 10 s; native up to 512 s.
pub static ACTION_BUCKETS: Buckets = Buckets::new(
    "action",
    &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ],
    NativeRange::up_to_octave(8),
);
/// SQLite commits and statements: 50 µs to 500 ms; native up to 64 s.
pub static SQLITE_BUCKETS: Buckets = Buckets::new(
    "sqlite",
    &[
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
    ],
    NativeRange::up_to_octave(5),
);
/// User tasks: 10 ms to 1 h (tasks run long); native up to 4.5 h.
pub static TASK_BUCKETS: Buckets = Buckets::new(
    "task",
    &[
        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ],
    NativeRange::up_to_octave(13),
);
/// Shutdown waits: 1 ms to 60 s (timeouts are seconds long); native up to 512 s.
pub static SHUTDOWN_BUCKETS: Buckets = Buckets::new(
    "shutdown",
    &[
        0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ],
    NativeRange::up_to_octave(8),
);
/// Startup phases: 0.5 ms to 5 s; native up to 128 s.
pub static STARTUP_BUCKETS: Buckets = Buckets::new(
    "startup",
    &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    ],
    NativeRange::up_to_octave(6),
);
/// The sweeper's own tick duration: 10 µs to 1 s (a classic-only self-metric).
pub static SWEEP_BUCKETS: Buckets = Buckets::new(
    "sweep",
    &[
        0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0,
    ],
    NativeRange::up_to_octave(4),
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bucket set declared here.
    const SETS: [&Buckets; 6] = [
        &ACTION_BUCKETS,
        &SQLITE_BUCKETS,
        &TASK_BUCKETS,
        &SHUTDOWN_BUCKETS,
        &STARTUP_BUCKETS,
        &SWEEP_BUCKETS,
    ];

    /// A span's first split plus the rank is the index of the bound inside
    /// each split bucket, and no other bucket has a rank.
    #[test]
    fn split_ranks_name_the_bound_inside_each_bucket() {
        for b in SETS {
            for k in MIN_KEY..=b.native().max_key() {
                let inside = b.bounds().iter().position(|bound| key(*bound) == k);
                let (octave, _) = span_of(k);
                let at = b.split_rank(k).map(|r| b.head_of(octave).first_split() + r);
                assert_eq!(at, inside, "{} key {k}", b.name());
            }
        }
    }

    #[test]
    fn the_octave_index_agrees_with_the_compares_for_every_set() {
        for b in SETS {
            assert!(b.octaves.first.is_some(), "{} fits the table", b.name());
            let mut values = vec![
                0.0,
                -0.0,
                -1.0,
                f64::MIN_POSITIVE / 2.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                -f64::NAN,
                f64::MAX,
            ];
            for bound in b.bounds() {
                values.extend([
                    bound.next_down(),
                    *bound,
                    bound.next_up(),
                    bound * 0.7,
                    bound * 1.4,
                ]);
            }
            for i in 0..4000 {
                values.push(1e-7 * 1.01f64.powi(i));
            }
            for v in values {
                assert_eq!(b.index_by_octave(v), b.index_of(v), "{} at {v:e}", b.name());
            }
        }
        // A set with two bounds in one octave falls back to the compares.
        static CLOSE: Buckets = Buckets::new(
            "close",
            &[0.001, 0.0015, 0.01],
            NativeRange::up_to_octave(4),
        );
        assert!(CLOSE.octaves.first.is_none());
        for v in [0.0005, 0.001, 0.0012, 0.0015, 0.002, 0.02] {
            assert_eq!(CLOSE.index_by_octave(v), CLOSE.index_of(v));
        }
    }

    #[test]
    fn le_is_inclusive_and_past_the_last_bound_is_inf() {
        let b = &ACTION_BUCKETS;
        assert_eq!(b.index_of(0.0), 0);
        assert_eq!(b.index_of(0.001), 0);
        assert_eq!(b.index_of(0.0011), 1);
        assert_eq!(b.index_of(10.0), 11);
        assert_eq!(b.index_of(10.5), 12);
        assert_eq!(b.index_of(f64::NAN), 12, "NaN lands in +Inf, never panics");
    }
}
