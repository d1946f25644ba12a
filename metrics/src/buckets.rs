//! Histogram bucket sets, one per kind of duration: the classic bounds, and
//! the range its native (exponential) buckets cover.
//!
//! Each histogram family names its set in `families.rs`; the sets and their
//! reasons are listed in METRICS.md.

pub use crate::native::{NativeRange, SCHEMA, ZERO_THRESHOLD, upper_bound as native_upper_bound};

/// Most finite bucket bounds a histogram family may declare.
pub const MAX_BUCKETS: usize = 12;

/// A histogram's finite bucket upper bounds, in seconds (`+Inf` is implied).
#[derive(Debug)]
pub struct Buckets {
    name: &'static str,
    bounds: &'static [f64],
    native: NativeRange,
}

impl Buckets {
    /// Declares a bucket set: at most [`MAX_BUCKETS`] increasing finite classic
    /// bounds, and the range of its native buckets.
    pub const fn new(name: &'static str, bounds: &'static [f64], native: NativeRange) -> Self {
        assert!(bounds.len() <= MAX_BUCKETS, "too many buckets");
        Buckets {
            name,
            bounds,
            native,
        }
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

    /// Index of the bucket `v` falls in (`le` is inclusive); `bounds().len()` is `+Inf`.
    #[inline]
    pub(crate) fn index_of(&self, v: f64) -> usize {
        self.bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len())
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
