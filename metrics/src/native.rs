//! Native (exponential) histogram buckets, recorded beside the classic ones.
//!
//! Prometheus native histograms index buckets by a *schema*: at schema `s`
//! every power of two is split into `2^s` buckets, bucket `k` covering
//! `(2^((k-1)/2^s), 2^(k/2^s)]`. Every family here uses **schema 3**: a bucket
//! is 2^(1/8) ≈ 1.09 times as wide as the one before, so a quantile read from
//! it is within 9.05 % of the true value, the widest schema under 10 %. Values
//! at or below [`ZERO_THRESHOLD`] (2^-20 s, just under 1 µs) count in the zero
//! bucket.
//!
//! Storage is sparse and allocation-free after warm-up: the buckets of one
//! octave (8 buckets, one power of two) form a *span*, with the split counts
//! of the classic bounds inside that octave (see `HistogramCell`). The first
//! octave a histogram observes is held inline in its cell, in the words the
//! classic counts take when native buckets are off, so a histogram that stays
//! within one octave (most of one actor's) allocates nothing and an expired
//! actor's histograms are folded and freed with the entry. A second octave's
//! span sits in one small block allocated when that octave is first seen;
//! later octaves get a span each, boxed in a table ([`Others`]). An
//! observation is an index computation (exponent bits, a table load and one
//! compare), a head-word load and compare (one or two more loads for a
//! boxed span) and one atomic add: no lock, and no allocation once its span
//! exists.
//!
//! **The cap.** Each family covers a fixed range of octaves (its
//! [`NativeRange`], listed in METRICS.md): at most `8 × octaves` buckets. A value
//! above the range is counted in its top bucket (merged: the count and the sum
//! stay exact, the value's position is bounded by the top bucket), so a
//! histogram never holds more buckets than its range, whatever it observes.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::lazy::LazyBox;

/// What a native observation needs of its histogram's classic bounds, so it
/// can count the part of a split bucket above the bound inside it: a bucket
/// set ([`Buckets`](crate::buckets::Buckets)) implements it from tables it
/// builds with this module's keys and spans.
pub(crate) trait ClassicSplits {
    /// The highest native key of the set's range (values above merge into it).
    fn max_key(&self) -> i32;
    /// The head of `octave`'s span: which classic bounds lie inside it.
    fn head_of(&self, octave: i32) -> Head;
    /// The rank, among the classic bounds inside the octave of native bucket
    /// `k`, of the bound inside bucket `k`, if there is one.
    fn split_rank(&self, k: i32) -> Option<usize>;
    /// Classic bound `i`.
    fn bound(&self, i: usize) -> f64;
}

/// The bucket schema of every native histogram here.
pub const SCHEMA: i32 = 3;
/// Buckets per power of two at [`SCHEMA`].
pub(crate) const PER_OCTAVE: i32 = 1 << SCHEMA;
/// Width of the zero bucket: values at or below it (and negative ones) count there.
pub const ZERO_THRESHOLD: f64 = 1.0 / (1u64 << 20) as f64;
/// The octave just above the zero bucket: `(2^-20, 2^-19]`.
const LOWEST_OCTAVE: i32 = -20;
/// The highest octave any range may reach: `(2^13, 2^14]`, about 4.5 hours.
const HIGHEST_OCTAVE: i32 = 13;
/// Octaves from the lowest to the highest: the size of a histogram's span table.
const MAX_OCTAVES: usize = (HIGHEST_OCTAVE - LOWEST_OCTAVE + 1) as usize;

/// Where each schema-3 bucket starts within a power of two, as client_golang
/// has them (`nativeHistogramBounds[3]`), so keys match the reference client's
/// to the last bit: `frac ∈ [0.5, 1)` of `v = frac × 2^exp` falls in the first
/// bucket whose bound is `>= frac`.
const BOUNDS: [f64; 8] = [
    0.5,
    0.5452538663326288,
    0.5946035575013605,
    0.6484197773255048,
    0.7071067811865475,
    0.7711054127039704,
    0.8408964152537144,
    0.9170040432046711,
];

/// The octaves a family's native buckets cover: from just above the zero
/// bucket up to `(2^top, 2^(top+1)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeRange {
    top: i32,
}

impl NativeRange {
    /// Buckets up to `2^(top+1)` seconds.
    pub const fn up_to_octave(top: i32) -> Self {
        assert!(top > LOWEST_OCTAVE, "a range covers at least two octaves");
        assert!(top <= HIGHEST_OCTAVE, "a range ends by 2^14 s");
        NativeRange { top }
    }

    /// Largest bucket upper bound, in seconds.
    pub fn upper_bound(self) -> f64 {
        2f64.powi(self.top + 1)
    }

    /// Octaves covered.
    pub fn octaves(self) -> usize {
        (self.top - LOWEST_OCTAVE + 1) as usize
    }

    /// Most buckets a histogram of this range holds (the cap).
    pub fn max_buckets(self) -> usize {
        self.octaves() * PER_OCTAVE as usize
    }

    /// The key of the range's top bucket.
    pub(crate) const fn max_key(self) -> i32 {
        (self.top + 1) * PER_OCTAVE
    }
}

/// Mantissa bits that index [`WITHIN`].
const TABLE_BITS: u32 = 8;

/// For each of the 256 equal slices of `frac ∈ [0.5, 1)` (by the top 8 bits of
/// the mantissa): how many of [`BOUNDS`] lie at or below the slice's start.
/// Bounds are at least 0.045 apart and a slice is 1/512 wide, so at most one
/// bound lies inside a slice, and one compare finishes the count.
const WITHIN: [u8; 1 << TABLE_BITS] = {
    let mut table = [0u8; 1 << TABLE_BITS];
    let mut i = 0;
    while i < table.len() {
        let start = 0.5 + (i as f64) / ((2 << TABLE_BITS) as f64);
        let mut n = 0;
        while n < BOUNDS.len() && BOUNDS[n] < start {
            n += 1;
        }
        table[i] = n as u8;
        i += 1;
    }
    table
};

/// The schema-3 bucket key of `v > 0` (finite or not): bucket `k` covers
/// `(2^((k-1)/8), 2^(k/8)]`. A `const fn`, so bucket sets can place their
/// classic bounds at compile time.
#[inline]
pub(crate) const fn key(v: f64) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    // v = frac × 2^exp with frac in [0.5, 1) (normal numbers; smaller ones are
    // under the zero threshold and never get here).
    let exp = biased - 1022;
    let frac = f64::from_bits((bits & ((1 << 52) - 1)) | (1022 << 52));
    // How many bounds lie below `frac`: the table gives the count up to the
    // start of frac's slice; one compare adds the bound inside the slice, if
    // any. No data-dependent branch (a mispredict costs more than the rest).
    let slice = ((bits >> (52 - TABLE_BITS)) & ((1 << TABLE_BITS) - 1)) as usize;
    let n = WITHIN[slice] as usize;
    let next = if n < BOUNDS.len() {
        BOUNDS[n]
    } else {
        f64::INFINITY
    };
    let within = n as i32 + (next < frac) as i32;
    (exp - 1) * PER_OCTAVE + within
}

/// The smallest key above the zero bucket.
pub(crate) const MIN_KEY: i32 = LOWEST_OCTAVE * PER_OCTAVE + 1;
/// The largest key any range reaches.
pub(crate) const MAX_KEY: i32 = (HIGHEST_OCTAVE + 1) * PER_OCTAVE;

/// Most classic bounds one octave may hold: each span keeps a split count
/// for every bound inside its octave (checked when a bucket set is declared).
pub(crate) const SPLITS_PER_OCTAVE: usize = 4;

/// Words of a histogram cell's shared storage: the classic counts (one per
/// bucket, `+Inf` last), or the native zero bucket and the first span inline.
pub(crate) const CELL_WORDS: usize = 1 + PER_OCTAVE as usize + SPLITS_PER_OCTAVE;

/// The cell's mode bits in its head word (see `HistogramCell`): set by the
/// first observation, never cleared.
pub(crate) const MODE_CLASSIC: u64 = 1 << 63;
pub(crate) const MODE_NATIVE: u64 = 1 << 62;
/// The bits of a head word that hold a span's [`Head`].
const HEAD_BITS: u64 = (1 << 24) - 1;
/// The bits of a head word that say which octave its span holds (0: none yet).
const TAG_BITS: u64 = 0xff;

/// What a span holds: its octave (bits 0..8, as `octave - LOWEST_OCTAVE + 1`,
/// so 0 means no span), the classic index of the first bound inside the
/// octave (bits 8..16) and how many bounds lie inside it (bits 16..24). A
/// reader needs no bucket set to put the split counts back in their place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head(u64);

impl Head {
    /// The tag of `octave`: what bits 0..8 of its head hold.
    #[inline]
    const fn tag(octave: i32) -> u64 {
        (octave - LOWEST_OCTAVE + 1) as u64
    }

    /// The head of `octave`'s span, whose bounds are classic indices
    /// `first_split..first_split + splits`.
    pub(crate) const fn new(octave: i32, first_split: usize, splits: usize) -> Self {
        assert!(splits <= SPLITS_PER_OCTAVE);
        Head(Self::tag(octave) | (first_split as u64) << 8 | (splits as u64) << 16)
    }

    fn octave(self) -> i32 {
        (self.0 & TAG_BITS) as i32 - 1 + LOWEST_OCTAVE
    }

    pub(crate) fn first_split(self) -> usize {
        ((self.0 >> 8) & 0xff) as usize
    }

    fn splits(self) -> usize {
        ((self.0 >> 16) & 0xff) as usize
    }
}

/// The octave (span) of key `k` and the bucket's slot in it.
#[inline]
pub(crate) const fn span_of(k: i32) -> (i32, usize) {
    let k1 = k - 1;
    (
        k1.div_euclid(PER_OCTAVE),
        k1.rem_euclid(PER_OCTAVE) as usize,
    )
}

/// `a += n` for a cell with no concurrent writer (see `Cell::fold_into`), with
/// a plain load and store instead of an atomic read-modify-write.
#[inline]
pub(crate) fn add_exclusive(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A span past a histogram's first: one octave's counts, allocated on the
/// first observation in that octave.
#[derive(Debug)]
pub(crate) struct Span {
    /// Set before the span is published, never changed.
    head: Head,
    words: SpanWords,
}

/// One span's counters: its bucket counts, then its split counts (the
/// observations of a split bucket above its classic bound). `repr(C)`: the
/// same layout as the 12 words after a cell's zero bucket, which hold its
/// first span.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct SpanWords {
    counts: [AtomicU64; PER_OCTAVE as usize],
    above: [AtomicU64; SPLITS_PER_OCTAVE],
}

const _: () = assert!(size_of::<SpanWords>() == (CELL_WORDS - 1) * size_of::<AtomicU64>());

/// Every span past a histogram's first, allocated when it sees a second
/// octave: that octave's span inline, claimed by its head word (0 until
/// then), and the others boxed in a table by `octave - LOWEST_OCTAVE`,
/// allocated when a third octave is seen. A histogram over two octaves
/// (a fast path and a slow one) costs one small block, not a table.
#[derive(Debug, Default)]
pub(crate) struct Others {
    head: AtomicU64,
    words: SpanWords,
    rest: LazyBox<[LazyBox<Span>; MAX_OCTAVES]>,
}

impl Others {
    /// The inline span, given its head word's value.
    #[inline]
    fn second(&self, head: u64) -> SpanRef<'_> {
        SpanRef {
            head: Head(head & HEAD_BITS),
            w: &self.words,
        }
    }
}

/// Claims the span whose head word is `word` for `head` (with `mode` bits) if
/// no octave holds it yet; returns the word as it then stands.
fn claim(word: &AtomicU64, head: Head, mode: u64) -> u64 {
    let mut cur = word.load(Ordering::Acquire);
    while cur & TAG_BITS == 0 {
        let new = cur | mode | head.0;
        match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return new,
            Err(now) => cur = now,
        }
    }
    cur
}

/// One span, inline in its cell or boxed: its head and its counters. Two
/// words, so it travels in registers.
#[derive(Clone, Copy)]
struct SpanRef<'a> {
    head: Head,
    w: &'a SpanWords,
}

impl<'a> SpanRef<'a> {
    fn boxed(s: &'a Span) -> Self {
        SpanRef {
            head: s.head,
            w: &s.words,
        }
    }

    fn octave(self) -> i32 {
        self.head.octave()
    }
}

/// A histogram cell's counts: 0 in `head` until the first observation, then
/// the mode. In classic mode `words` are the classic counts (see
/// `HistogramCell`); in native mode they hold the zero bucket and the first
/// span observed (its [`Head`] in the head word's low bits), and `others` the
/// other spans.
///
/// Most histograms of one actor stay within one octave, so their native
/// buckets are inside the cell: no allocation, and nothing to free when the
/// actor goes. One struct, so that the hot path reaches all of it from the
/// cell's address alone.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) head: AtomicU64,
    pub(crate) words: [AtomicU64; CELL_WORDS],
    pub(crate) others: LazyBox<Others>,
}

impl Counts {
    #[inline]
    fn zero(&self) -> &AtomicU64 {
        &self.words[0]
    }

    /// The first span, given the head word's value.
    #[inline]
    fn first(&self, head: u64) -> SpanRef<'_> {
        let words = self.words.as_ptr();
        SpanRef {
            head: Head(head & HEAD_BITS),
            // SAFETY: `SpanWords` is `repr(C)` of 12 `AtomicU64` with no
            // padding (asserted above), the layout of `words[1..]`, which
            // this borrow of the cell keeps alive and which only atomics
            // touch.
            w: unsafe { &*words.add(1).cast::<SpanWords>() },
        }
    }

    /// Counts `v` (not NaN) in its native bucket, clamped to `buckets`' range,
    /// and above its classic bound when `v` lies in a split bucket past it.
    #[inline]
    pub(crate) fn observe(&self, buckets: &impl ClassicSplits, v: f64) {
        let head = self.head.load(Ordering::Acquire);
        if v <= ZERO_THRESHOLD {
            if head & MODE_NATIVE == 0 {
                self.head.fetch_or(MODE_NATIVE, Ordering::AcqRel);
            }
            self.zero().fetch_add(1, Ordering::Relaxed);
            return;
        }
        let k = key(v).min(buckets.max_key());
        let (octave, slot) = span_of(k);
        let span = if head & TAG_BITS == Head::tag(octave) {
            self.first(head)
        } else if let Some(span) = self.other(octave) {
            span
        } else {
            self.create(octave, buckets.head_of(octave))
        };
        span.w.counts[slot].fetch_add(1, Ordering::Relaxed);
        if let Some(r) = buckets.split_rank(k) {
            let i = span.head.first_split() + r;
            if v > buckets.bound(i) {
                // After the bucket's count, Release: a reader that sees the
                // split count sees the count it belongs to.
                span.w.above[r].fetch_add(1, Ordering::Release);
            }
        }
    }

    /// The span of `octave` past the first, if it exists.
    #[inline]
    fn other(&self, octave: i32) -> Option<SpanRef<'_>> {
        let others = self.others.get()?;
        let head = others.head.load(Ordering::Acquire);
        if head & TAG_BITS == Head::tag(octave) {
            return Some(others.second(head));
        }
        // Keys are clamped to a range's top (at most HIGHEST_OCTAVE), and the
        // lowest key above the zero threshold is in LOWEST_OCTAVE.
        let i = (octave - LOWEST_OCTAVE) as usize;
        others.rest.get()?[i].get().map(SpanRef::boxed)
    }

    /// The span of `octave`, found or created with `head`: the cell's own if
    /// it is still unclaimed, or else the second, or else a boxed one.
    #[cold]
    fn create(&self, octave: i32, head: Head) -> SpanRef<'_> {
        let tag = Head::tag(octave);
        let first = claim(&self.head, head, MODE_NATIVE);
        if first & TAG_BITS == tag {
            return self.first(first);
        }
        let others = self.others.get_or_init(Box::default);
        let second = claim(&others.head, head, 0);
        if second & TAG_BITS == tag {
            return others.second(second);
        }
        let rest = others
            .rest
            .get_or_init(|| Box::new(std::array::from_fn(|_| LazyBox::default())));
        let i = (octave - LOWEST_OCTAVE) as usize;
        SpanRef::boxed(rest[i].get_or_init(|| {
            Box::new(Span {
                head,
                words: SpanWords::default(),
            })
        }))
    }

    /// The span of `octave`, found or created with `head`.
    fn span(&self, octave: i32, head: Head) -> SpanRef<'_> {
        let cur = self.head.load(Ordering::Acquire);
        if cur & TAG_BITS == Head::tag(octave) {
            return self.first(cur);
        }
        self.other(octave)
            .unwrap_or_else(|| self.create(octave, head))
    }

    /// Every span, in no particular order.
    fn spans(&self) -> impl Iterator<Item = SpanRef<'_>> {
        let head = self.head.load(Ordering::Acquire);
        let first = (head & TAG_BITS != 0).then(|| self.first(head));
        let others = self.others.get();
        let second = others.and_then(|o| {
            let head = o.head.load(Ordering::Acquire);
            (head & TAG_BITS != 0).then(|| o.second(head))
        });
        let rest = others
            .and_then(|o| o.rest.get())
            .into_iter()
            .flat_map(|r| r.iter());
        first
            .into_iter()
            .chain(second)
            .chain(rest.filter_map(LazyBox::get).map(SpanRef::boxed))
    }

    /// Observations held (zero bucket included).
    pub(crate) fn count(&self) -> u64 {
        let zero = self.zero().load(Ordering::Relaxed);
        let buckets: u64 = self
            .spans()
            .flat_map(|s| s.w.counts.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        zero + buckets
    }

    /// Observations in buckets whose key is above `k` (every value above
    /// `upper_bound(k)`), without collecting the buckets.
    pub(crate) fn count_above(&self, k: i32) -> u64 {
        self.spans()
            .map(|span| {
                let first = span.octave() * PER_OCTAVE + 1;
                let from = (k + 1 - first).clamp(0, PER_OCTAVE) as usize;
                span.w.counts[from..]
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .sum::<u64>()
            })
            .sum()
    }

    /// Adds the native buckets into `total` and the split counts into
    /// `above` (by classic index).
    pub(crate) fn add_to(&self, total: &mut NativeTotal, above: &mut [u64]) {
        total.zero += self.zero().load(Ordering::Relaxed);
        for span in self.spans() {
            // Split counts first (Acquire): a split count seen means its
            // bucket's count is seen too.
            let from = span.head.first_split();
            for (a, c) in above[from..]
                .iter_mut()
                .zip(&span.w.above[..span.head.splits()])
            {
                *a = a.wrapping_add(c.load(Ordering::Acquire));
            }
            for (slot, c) in span.w.counts.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n != 0 {
                    let k = span.octave() * PER_OCTAVE + slot as i32 + 1;
                    total.add(k, n);
                }
            }
        }
    }

    /// Adds these native buckets into `retired`'s, which have no concurrent
    /// writer (see `Cell::fold_into`: the fold lock is held for writing).
    pub(crate) fn fold_into(&self, retired: &Counts) {
        if retired.head.load(Ordering::Relaxed) & MODE_NATIVE == 0 {
            retired.head.fetch_or(MODE_NATIVE, Ordering::Relaxed);
        }
        let zero = self.zero().load(Ordering::Relaxed);
        if zero != 0 {
            add_exclusive(retired.zero(), zero);
        }
        for span in self.spans() {
            let into = retired.span(span.octave(), span.head);
            for (c, r) in span.w.counts.iter().zip(&into.w.counts) {
                let n = c.load(Ordering::Relaxed);
                if n != 0 {
                    add_exclusive(r, n);
                }
            }
            for (c, r) in span.w.above.iter().zip(&into.w.above) {
                let n = c.load(Ordering::Relaxed);
                if n != 0 {
                    add_exclusive(r, n);
                }
            }
        }
    }
}

/// Native buckets read at one moment: the zero bucket and `(key, count)` pairs
/// sorted by key, non-zero counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeTotal {
    /// Observations at or below [`ZERO_THRESHOLD`].
    pub zero: u64,
    /// `(bucket key, count)`, increasing keys.
    pub buckets: Vec<(i32, u64)>,
}

impl NativeTotal {
    fn add(&mut self, k: i32, n: u64) {
        match self.buckets.binary_search_by_key(&k, |(key, _)| *key) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (k, n)),
        }
    }

    /// Whether no observation is held.
    pub fn is_empty(&self) -> bool {
        self.zero == 0 && self.buckets.is_empty()
    }

    /// Observations in every bucket, the zero bucket included.
    pub fn count(&self) -> u64 {
        self.zero + self.buckets.iter().map(|(_, n)| n).sum::<u64>()
    }

    /// The buckets as Prometheus encodes them: spans of consecutive keys
    /// `(offset from the previous span's end, length)` and each bucket's count as
    /// a delta from the previous bucket's.
    pub fn spans_and_deltas(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::with_capacity(self.buckets.len());
        let (mut next_key, mut prev_count) = (0i32, 0i64);
        for (i, &(k, n)) in self.buckets.iter().enumerate() {
            match spans.last_mut() {
                Some(last) if i > 0 && k == next_key => last.1 += 1,
                _ => spans.push((if i == 0 { k } else { k - next_key }, 1)),
            }
            next_key = k + 1;
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            deltas.push(n.wrapping_sub(prev_count));
            prev_count = n;
        }
        (spans, deltas)
    }
}

/// The upper bound of bucket `k` in seconds (for tests and tools).
pub fn upper_bound(k: i32) -> f64 {
    2f64.powf(f64::from(k) / f64::from(PER_OCTAVE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets::ACTION_BUCKETS;
    use crate::cells::{Cell, HistogramCell, HistogramTotal};

    /// The range of [`ACTION_BUCKETS`], which these tests observe through.
    const RANGE: NativeRange = NativeRange::up_to_octave(8);

    /// A histogram cell observed in native mode.
    #[derive(Default)]
    struct NativeCell(HistogramCell);

    impl NativeCell {
        fn observe(&self, range: NativeRange, v: f64) {
            assert_eq!(range, ACTION_BUCKETS.native());
            self.0.observe(&ACTION_BUCKETS, v, true);
        }
        fn count_above(&self, k: i32) -> u64 {
            self.0.native_above(k)
        }
        fn fold_into(&self, retired: &NativeCell) {
            self.0.fold_into(&retired.0);
        }
    }

    fn total(c: &NativeCell) -> NativeTotal {
        let mut t = HistogramTotal::default();
        c.0.add_to(&mut t);
        t.native().clone()
    }

    /// The table-driven key is the plain count of bounds below `frac`.
    #[test]
    fn the_key_table_agrees_with_counting_every_bound() {
        let mut v: f64 = 1e-6;
        while v < 1e5 {
            let bits = v.to_bits();
            let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
            let frac = f64::from_bits((bits & ((1 << 52) - 1)) | (1022 << 52));
            let counted = BOUNDS.iter().filter(|b| **b < frac).count() as i32;
            assert_eq!(key(v), (exp - 1) * PER_OCTAVE + counted, "{v}");
            v *= 1.000_37;
        }
        for b in BOUNDS {
            for x in [b, b * (1.0 + 1e-15), b * (1.0 - 1e-15)] {
                let counted = BOUNDS.iter().filter(|c| **c < x).count() as i32;
                assert_eq!(key(x), -PER_OCTAVE + counted, "{x}");
            }
        }
    }

    #[test]
    fn keys_follow_the_schema_with_inclusive_upper_bounds() {
        assert_eq!(key(1.0), 0, "1 is the upper bound of bucket 0");
        assert_eq!(key(1.0000001), 1);
        assert_eq!(key(2.0), 8);
        assert_eq!(key(0.5), -8);
        for k in -150..100 {
            let ub = upper_bound(k);
            // Exact powers of two are exact; other bounds round in the last bit.
            let below = ub * (1.0 - 1e-12);
            let above = ub * (1.0 + 1e-12);
            assert_eq!(key(below), k, "just under the bound of {k}");
            assert_eq!(key(above), k + 1, "just over the bound of {k}");
        }
    }

    /// `count_above` agrees with counting the collected buckets, at every
    /// line across and between the spans observed.
    #[test]
    fn count_above_is_the_buckets_above_the_line() {
        let c = NativeCell::default();
        let mut v = 1e-7;
        while v < 300.0 {
            c.observe(RANGE, v);
            v *= 1.07;
        }
        c.observe(RANGE, 0.0);
        let t = total(&c);
        for k in -200..100 {
            let want: u64 = t
                .buckets
                .iter()
                .filter(|(b, _)| *b > k)
                .map(|(_, n)| n)
                .sum();
            assert_eq!(c.count_above(k), want, "line {k}");
        }
        assert_eq!(c.count_above(-1000), t.count() - t.zero);
        assert_eq!(NativeCell::default().count_above(0), 0);
    }

    #[test]
    fn every_bucket_is_within_9_05_percent() {
        for k in -150..100 {
            let ratio = upper_bound(k) / upper_bound(k - 1);
            assert!((ratio - 2f64.powf(0.125)).abs() < 1e-12);
            assert!(ratio - 1.0 < 0.0906);
        }
    }

    #[test]
    fn observations_land_in_sparse_spans_and_read_back_sorted() {
        let c = NativeCell::default();
        for v in [0.003, 0.003, 0.00301, 1.5, 0.0, 1e-9, -1.0, 0.003] {
            c.observe(RANGE, v);
        }
        let t = total(&c);
        assert_eq!(t.zero, 3, "0, 1 ns and a negative value");
        assert_eq!(t.count(), 8);
        assert_eq!(t.buckets, [(key(0.003), 4), (key(1.5), 1)]);
        assert_eq!(key(0.00301), key(0.003), "same bucket");
        assert!(
            c.0.native().others.get().is_some(),
            "a second octave allocated the table"
        );
    }

    #[test]
    fn values_above_the_range_merge_into_its_top_bucket() {
        let c = NativeCell::default();
        for v in [1e6, f64::INFINITY, 600.0] {
            c.observe(RANGE, v);
        }
        let t = total(&c);
        assert_eq!(t.buckets, [(RANGE.max_key(), 3)]);
        assert_eq!(upper_bound(RANGE.max_key()), RANGE.upper_bound());
        assert_eq!(RANGE.max_buckets(), 29 * 8);
    }

    #[test]
    fn fold_adds_every_span() {
        let (a, b) = (NativeCell::default(), NativeCell::default());
        for v in [0.001, 0.1, 10.0, 0.0] {
            a.observe(RANGE, v);
        }
        b.observe(RANGE, 0.1);
        a.fold_into(&b);
        let t = total(&b);
        assert_eq!(t.zero, 1);
        assert_eq!(t.buckets, [(key(0.001), 1), (key(0.1), 2), (key(10.0), 1)]);
    }

    #[test]
    fn spans_and_deltas_as_prometheus_encodes_them() {
        let t = NativeTotal {
            zero: 0,
            buckets: vec![(-3, 2), (-2, 5), (0, 1), (4, 4), (5, 4)],
        };
        let (spans, deltas) = t.spans_and_deltas();
        assert_eq!(spans, [(-3, 2), (1, 1), (3, 2)]);
        assert_eq!(deltas, [2, 3, -4, 3, 0]);
        assert_eq!(NativeTotal::default().spans_and_deltas(), (vec![], vec![]));
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let c = std::sync::Arc::new(NativeCell::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        // Spread over many octaves so spans race to be allocated.
                        let v = 1e-5 * f64::from(1 + (i * 7 + t) % 5000);
                        c.observe(RANGE, v);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(total(&c).count(), 80_000);
    }
}
