//! A CPU prefetch hint for walks over entries scattered in the heap.
//!
//! A scrape or a totals read walks thousands of entries, in slab slots scattered
//! by churn: asking for the entry [`PREFETCH_AHEAD`] places ahead overlaps the
//! cache misses instead of waiting on each one. A hint only: it changes no
//! result, only when memory is loaded.

/// How many entries ahead a walk over a snapshot asks for memory.
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading the cache lines of `bytes` bytes at `p`, so a
/// walk over entries scattered in the heap overlaps its misses instead of
/// waiting on each one. A hint: no effect on what the program computes.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut off = 0;
        while off < bytes {
            // SAFETY: `prefetch` never faults, whatever the address (it is a
            // hint), and SSE, its target feature, is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}
