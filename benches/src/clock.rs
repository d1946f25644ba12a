//! [`ManualClock`]: a [`Clock`] the benches move by hand, so retention and
//! sweeps are driven without a runtime and without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_metrics::clock::Clock;

/// A clock the bench moves by hand: a fixed base plus an offset in nanoseconds.
#[derive(Debug)]
pub struct ManualClock {
    base: tokio::time::Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at its base instant.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            base: tokio::time::Instant::now(),
            offset_nanos: AtomicU64::new(0),
        })
    }

    /// The instant `offset` after the base.
    pub fn at(&self, offset: Duration) -> tokio::time::Instant {
        self.base + offset
    }

    /// Moves the clock to `offset` after the base.
    pub fn set(&self, offset: Duration) {
        let nanos = u64::try_from(offset.as_nanos()).expect("bench offsets fit in u64 nanos");
        self.offset_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).expect("bench offsets fit in u64 nanos");
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> tokio::time::Instant {
        self.base + Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}
