//! The slot: one exemplar in a seqlock of atomics (see the [module docs](super)).

use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::{Exemplar, SpanId, TraceId};
use crate::buckets::{Buckets, MAX_BUCKETS};

/// A write is under way.
const WRITING: u64 = 1;
/// The kept exemplar has been exported: the next offer replaces it.
const EXPORTED: u64 = 2;
/// One write's step of the version.
const VERSION: u64 = 4;

/// How many times a read tries before it reports nothing. A try fails only
/// when a write to the same slot overlaps it; with the keep policy writes are
/// rare, so a scrape that gives up here was unlucky on a very hot slot.
pub const READ_ATTEMPTS: usize = 64;

// The value first: an offer reads the sequence word and the value only, and
// the first 16 bytes of a slot never straddle a cache line (slots are 48
// bytes, so they start at 0, 48, 32 or 16 modulo 64).
const VALUE: usize = 0;
const TRACE_HI: usize = 1;
const TRACE_LO: usize = 2;
const SPAN: usize = 3;
const TIME: usize = 4;

/// One exemplar, written by concurrent observers and read by scrapes (see the
/// [module docs](super)). 48 bytes.
#[derive(Debug)]
pub struct ExemplarSlot {
    /// Version (in steps of [`VERSION`]), [`WRITING`], [`EXPORTED`].
    seq: AtomicU64,
    words: [AtomicU64; 5],
}

impl Default for ExemplarSlot {
    fn default() -> Self {
        ExemplarSlot {
            // Empty counts as exported: the first offer takes the slot.
            seq: AtomicU64::new(EXPORTED),
            words: Default::default(),
        }
    }
}

/// How many write attempts an offer makes: a failed compare-and-swap is
/// retried once when it failed only because an export set its bit.
const WRITE_ATTEMPTS: usize = 2;

impl ExemplarSlot {
    /// Keeps `e` if the slot is empty, its exemplar was exported, or `e` is
    /// larger (the slowest since the last export); returns whether it was
    /// kept. A NaN value is never kept. Never waits and never allocates.
    ///
    /// The common case, a slot that already holds a slower call of this
    /// interval, is inlined: two loads and a compare. Taking the slot is not.
    #[inline]
    pub fn offer(&self, e: &Exemplar) -> bool {
        // Acquire: the value read below is at least the one this version
        // published; if the compare-and-swap then succeeds, no write came in
        // between, so it was exactly that one.
        let s = self.seq.load(Ordering::Acquire);
        if s & (WRITING | EXPORTED) == 0 {
            let kept = f64::from_bits(self.words[VALUE].load(Ordering::Relaxed));
            // Not greater: smaller, equal, or either one NaN.
            if e.value.partial_cmp(&kept) != Some(std::cmp::Ordering::Greater) {
                return false;
            }
        }
        self.take_for(s, e)
    }

    /// As [`ExemplarSlot::offer`] for an observation of `value`, whose
    /// exemplar `make` builds only when it is kept: a call that loses to the
    /// kept one (the common case) never builds its exemplar.
    #[inline]
    pub fn offer_with(&self, value: f64, make: impl FnOnce() -> Exemplar) -> bool {
        let s = self.seq.load(Ordering::Acquire);
        if s & (WRITING | EXPORTED) == 0 {
            let kept = f64::from_bits(self.words[VALUE].load(Ordering::Relaxed));
            if value.partial_cmp(&kept) != Some(std::cmp::Ordering::Greater) {
                return false;
            }
        }
        self.take_for(s, &make())
    }

    /// The rest of [`ExemplarSlot::offer`]: `e` beats what the slot held at
    /// sequence `s`, or the slot was exported (or is being written).
    #[cold]
    #[inline(never)]
    fn take_for(&self, s: u64, e: &Exemplar) -> bool {
        self.write_if(s, e, |s| {
            if s & EXPORTED == 0 {
                let kept = f64::from_bits(self.words[VALUE].load(Ordering::Relaxed));
                e.value.partial_cmp(&kept) == Some(std::cmp::Ordering::Greater)
            } else {
                !e.value.is_nan()
            }
        })
    }

    /// Keeps `e` whatever the slot holds (the latest); returns whether it was
    /// written (false when another write held the slot). Never waits and
    /// never allocates.
    #[inline]
    pub fn store(&self, e: &Exemplar) -> bool {
        self.write_if(self.seq.load(Ordering::Relaxed), e, |_| true)
    }

    /// Writes `e` from sequence `s` while `wanted(sequence)` holds, trying
    /// again with the sequence that made a take fail; gives up when another
    /// write holds the slot or after [`WRITE_ATTEMPTS`].
    #[inline]
    fn write_if(&self, mut s: u64, e: &Exemplar, wanted: impl Fn(u64) -> bool) -> bool {
        for _ in 0..WRITE_ATTEMPTS {
            if s & WRITING != 0 || !wanted(s) {
                return false;
            }
            match self.write(s, e) {
                Ok(()) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes the slot from sequence `s`, writes `e`, publishes the next
    /// version; or returns the sequence word that made the take fail.
    #[inline]
    fn write(&self, s: u64, e: &Exemplar) -> Result<(), u64> {
        self.seq.compare_exchange(
            s,
            (s | WRITING) & !EXPORTED,
            Ordering::Acquire,
            // Acquire: an offer that retries reads the value of this version.
            Ordering::Acquire,
        )?;
        // Orders the taking store before the data stores: a reader whose
        // data loads see any of them (then its Acquire fence) sees the odd
        // sequence word on its second read.
        fence(Ordering::Release);
        let trace = u128::from_be_bytes(e.trace_id.0);
        self.words[TRACE_HI].store((trace >> 64) as u64, Ordering::Relaxed);
        self.words[TRACE_LO].store(trace as u64, Ordering::Relaxed);
        self.words[SPAN].store(u64::from_be_bytes(e.span_id.0), Ordering::Relaxed);
        self.words[VALUE].store(e.value.to_bits(), Ordering::Relaxed);
        self.words[TIME].store(e.timestamp_ns, Ordering::Relaxed);
        // Release: a reader that sees this version sees the data above.
        self.seq
            .store((s & !(WRITING | EXPORTED)) + VERSION, Ordering::Release);
        Ok(())
    }

    /// The kept exemplar, if any, without marking it exported; `None` also
    /// when [`READ_ATTEMPTS`] reads all overlapped a write.
    pub fn read(&self) -> Option<Exemplar> {
        self.read_versioned().map(|(_, e)| e)
    }

    /// The kept exemplar, marked exported: the next offer replaces it. A
    /// write that came after the read stays unexported.
    pub fn export(&self) -> Option<Exemplar> {
        let (s, e) = self.read_versioned()?;
        if s & EXPORTED == 0 {
            // Fails when a write (or another export) got in first: the write
            // then holds an exemplar nobody has read, which must stay unexported.
            let _ =
                self.seq
                    .compare_exchange(s, s | EXPORTED, Ordering::Relaxed, Ordering::Relaxed);
        }
        Some(e)
    }

    /// How many writes the slot has taken (its version). For tests.
    pub fn writes(&self) -> u64 {
        self.seq.load(Ordering::Acquire) / VERSION
    }

    fn read_versioned(&self) -> Option<(u64, Exemplar)> {
        for _ in 0..READ_ATTEMPTS {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & WRITING != 0 {
                std::hint::spin_loop();
                continue;
            }
            if s1 < VERSION {
                return None;
            }
            let w: [u64; 5] = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
            // Orders the data loads before the second sequence load: if any
            // of them saw a later write's store, this load sees that write's
            // sequence word (or a later one).
            fence(Ordering::Acquire);
            let s2 = self.seq.load(Ordering::Relaxed);
            // An export between the two loads changed only its own bit.
            if (s1 ^ s2) & !EXPORTED == 0 {
                let trace = (u128::from(w[TRACE_HI]) << 64) | u128::from(w[TRACE_LO]);
                return Some((
                    s2,
                    Exemplar {
                        trace_id: TraceId(trace.to_be_bytes()),
                        span_id: SpanId(w[SPAN].to_be_bytes()),
                        value: f64::from_bits(w[VALUE]),
                        timestamp_ns: w[TIME],
                    },
                ));
            }
        }
        None
    }
}

/// The exemplar slots of one histogram, one per classic bucket (`+Inf`
/// last), inline: `(MAX_BUCKETS + 1) × 48` bytes. An offer is the bucket's
/// index (arithmetic on the value) and its slot's two words, with no pointer
/// to follow first. Per type they are always there; one actor's are behind a
/// lazily allocated box (`kept.rs`), so an actor at `core` pays nothing.
#[derive(Debug)]
pub struct HistogramExemplars {
    slots: [ExemplarSlot; MAX_BUCKETS + 1],
}

impl Default for HistogramExemplars {
    fn default() -> Self {
        HistogramExemplars {
            slots: std::array::from_fn(|_| ExemplarSlot::default()),
        }
    }
}

impl HistogramExemplars {
    /// Offers `e` to the slot of the classic bucket of `buckets` its value
    /// falls in (see [`ExemplarSlot::offer`], which never keeps a NaN);
    /// returns whether it was kept.
    #[inline]
    pub fn offer(&self, buckets: &Buckets, e: &Exemplar) -> bool {
        self.slots[buckets.index_by_octave(e.value)].offer(e)
    }

    /// As [`HistogramExemplars::offer`] for an observation of `value`, whose
    /// exemplar `make` builds only when its bucket's slot keeps it.
    #[inline]
    pub fn offer_with(
        &self,
        buckets: &Buckets,
        value: f64,
        make: impl FnOnce() -> Exemplar,
    ) -> bool {
        self.slots[buckets.index_by_octave(value)].offer_with(value, make)
    }

    /// The slot of bucket `index` (`+Inf` at `buckets.bounds().len()`).
    pub fn slot(&self, index: usize) -> Option<&ExemplarSlot> {
        self.slots.get(index)
    }

    /// Every kept exemplar with its bucket index, marked exported.
    pub fn export(&self) -> impl Iterator<Item = (usize, Exemplar)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| slot.export().map(|e| (i, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets::ACTION_BUCKETS;
    use std::sync::atomic::AtomicBool;

    fn ex(n: u64, value: f64) -> Exemplar {
        Exemplar {
            trace_id: TraceId((u128::from(n) << 64 | 0xabc).to_be_bytes()),
            span_id: SpanId((n + 1).to_be_bytes()),
            value,
            timestamp_ns: 1_700_000_000_000_000_000 + n,
        }
    }

    #[test]
    fn ids_print_as_lowercase_hex_and_zero_ids_are_invalid() {
        let t = TraceId([
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ]);
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let s = SpanId([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert_eq!(format!("{s:?}"), "SpanId(00f067aa0ba902b7)");
        assert!(t.is_valid() && s.is_valid());
        assert!(!TraceId::default().is_valid());
        assert!(!SpanId::default().is_valid());
    }

    #[test]
    fn an_empty_slot_reads_nothing_and_the_first_offer_is_kept_whole() {
        let slot = ExemplarSlot::default();
        assert_eq!(slot.read(), None);
        assert_eq!(slot.export(), None);
        assert!(slot.offer(&ex(7, 0.004)));
        assert_eq!(slot.read(), Some(ex(7, 0.004)));
        assert_eq!(slot.writes(), 1);
    }

    #[test]
    fn a_bucket_keeps_the_slowest_until_exported_then_takes_the_next() {
        let slot = ExemplarSlot::default();
        assert!(slot.offer(&ex(1, 0.5)));
        assert!(!slot.offer(&ex(2, 0.2)), "smaller: the slowest stays");
        assert!(!slot.offer(&ex(3, 0.5)), "equal: the first stays");
        assert!(slot.offer(&ex(4, 0.9)), "larger replaces");
        assert_eq!(slot.read(), Some(ex(4, 0.9)), "a read does not export");
        assert!(!slot.offer(&ex(5, 0.1)));
        assert_eq!(slot.export(), Some(ex(4, 0.9)));
        assert_eq!(
            slot.export(),
            Some(ex(4, 0.9)),
            "still readable after its export"
        );
        assert!(slot.offer(&ex(6, 0.1)), "exported: any offer replaces it");
        assert!(
            !slot.offer(&ex(7, 0.05)),
            "a new interval keeps its slowest"
        );
        assert_eq!(slot.read(), Some(ex(6, 0.1)));
        assert_eq!(slot.writes(), 3);
    }

    #[test]
    fn nan_is_never_kept_and_store_keeps_the_latest() {
        let slot = ExemplarSlot::default();
        assert!(!slot.offer(&ex(1, f64::NAN)), "not even into an empty slot");
        assert!(slot.offer(&ex(2, 1.0)));
        assert!(!slot.offer(&ex(3, f64::NAN)));
        assert!(slot.store(&ex(4, 1.0)));
        assert!(slot.store(&ex(5, 0.5)), "a counter keeps the latest");
        assert_eq!(slot.read(), Some(ex(5, 0.5)));
    }

    #[test]
    fn histogram_slots_are_chosen_by_bucket_and_never_keep_nan() {
        let h = HistogramExemplars::default();
        assert_eq!(h.export().count(), 0);
        assert!(!h.offer(&ACTION_BUCKETS, &ex(0, f64::NAN)));
        assert_eq!(h.export().count(), 0, "NaN is not kept");
        let bounds = ACTION_BUCKETS.bounds();
        // On a bound (le is inclusive), just above it, and past the last one.
        assert!(h.offer(&ACTION_BUCKETS, &ex(1, bounds[0])));
        assert!(h.offer(&ACTION_BUCKETS, &ex(2, bounds[0] * 1.01)));
        assert!(h.offer(&ACTION_BUCKETS, &ex(3, bounds[bounds.len() - 1] * 2.0)));
        let got: Vec<_> = h.export().collect();
        assert_eq!(
            got,
            [
                (0, ex(1, bounds[0])),
                (1, ex(2, bounds[0] * 1.01)),
                (bounds.len(), ex(3, bounds[bounds.len() - 1] * 2.0)),
            ]
        );
        assert!(h.slot(2).is_some_and(|s| s.read().is_none()));
        assert!(h.slot(bounds.len() + 1).is_none_or(|s| s.read().is_none()));
    }

    /// An exemplar whose every word follows from `r`, so a reader can tell a
    /// whole one from a mix of two.
    fn consistent(r: u64) -> Exemplar {
        Exemplar {
            trace_id: TraceId(((u128::from(r) << 64) | u128::from(!r)).to_be_bytes()),
            span_id: SpanId(r.rotate_left(17).to_be_bytes()),
            value: (r >> 11) as f64,
            timestamp_ns: r ^ 0x5555_5555_5555_5555,
        }
    }

    fn is_whole(e: &Exemplar) -> bool {
        let r = u64::from_be_bytes(e.trace_id.0[..8].try_into().expect("8 bytes"));
        *e == consistent(r)
    }

    /// Writers store whole exemplars as fast as they can while a reader reads
    /// and exports: no read is ever a mix of two, and the slot's version counts
    /// exactly the writes that reported success. The writers go on until the
    /// reader has made all its reads and each has had `MIN_KEPT` writes kept,
    /// so every read overlaps writing; the reader goes on until it has read
    /// `READS` exemplars (a read that gives up under the writes is retried).
    /// Both are counts, not times: a loaded machine makes it slower, not
    /// flaky (a fixed number of attempts once kept 97,072 writes of 100,000).
    #[test]
    fn concurrent_writers_and_a_reader_never_see_a_torn_exemplar() {
        const WRITERS: u64 = 3;
        const MIN_KEPT: u64 = 30_000;
        const READS: u64 = 300_000;
        /// Reads that gave up, at most: far more than any run needs.
        const MAX_GIVE_UPS: u64 = 100 * READS;
        let slot = ExemplarSlot::default();
        let reading = AtomicBool::new(true);
        let start_line = std::sync::Barrier::new(WRITERS as usize + 1);
        let (written, (whole, torn, none)) = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                start_line.wait();
                // Reads of the empty slot before the first write prove nothing.
                while slot.writes() == 0 {
                    std::thread::yield_now();
                }
                let (mut whole, mut torn, mut none) = (0u64, 0u64, 0u64);
                let mut n = 0u64;
                while whole + torn < READS && none < MAX_GIVE_UPS {
                    n += 1;
                    let got = if n.is_multiple_of(2) {
                        slot.read()
                    } else {
                        slot.export()
                    };
                    match got {
                        Some(e) if is_whole(&e) => whole += 1,
                        Some(_) => torn += 1,
                        None => none += 1,
                    }
                }
                reading.store(false, Ordering::Relaxed);
                (whole, torn, none)
            });
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (slot, reading, start_line) = (&slot, &reading, &start_line);
                    s.spawn(move || {
                        start_line.wait();
                        let mut ok = 0u64;
                        let mut i = 0u64;
                        while ok < MIN_KEPT || reading.load(Ordering::Relaxed) {
                            let r = (w + 1) << 48 | i;
                            // Half latest, half slowest-since-export: both paths race.
                            let kept = if i.is_multiple_of(2) {
                                slot.store(&consistent(r))
                            } else {
                                slot.offer(&consistent(r))
                            };
                            ok += u64::from(kept);
                            i += 1;
                        }
                        ok
                    })
                })
                .collect();
            let written: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
            (written, reader.join().expect("reader"))
        });
        assert_eq!(torn, 0, "{torn} torn reads of {}", whole + torn);
        assert_eq!(whole, READS, "{whole} whole reads, {none} gave up");
        assert_eq!(
            slot.writes(),
            written,
            "the version counts every kept write"
        );
        assert!(written >= WRITERS * MIN_KEPT, "{written} writes kept");
        assert!(is_whole(&slot.read().expect("written")));
    }
}
