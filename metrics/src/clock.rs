//! Where retention deadlines read the time from.

/// Time source for retention deadlines. The default reads
/// `tokio::time::Instant::now()`, so tests pause and advance tokio time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> tokio::time::Instant;
}

/// [`Clock`] backed by `tokio::time::Instant::now()` (the real clock outside a
/// runtime, the paused clock in a paused test runtime).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
}
