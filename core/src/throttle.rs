//! A rate limit for log lines that clients or the OS can repeat at will (an
//! actor that fails to start on every call, an accept loop out of file
//! descriptors): at most one line per period, and that line says how many
//! were left out since the last one.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// At most one log line per period.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the next line may be written; `None` before the first.
    next: Option<Instant>,
    /// Lines left out since the last one written.
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle of one line per `every`.
    pub fn new(every: Duration) -> Self {
        LogThrottle {
            every,
            state: Mutex::new(State::default()),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written
    /// now; `None` (and one more left out) otherwise.
    pub fn admit(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state.next.is_some_and(|next| now < next) {
            state.suppressed += 1;
            return None;
        }
        state.next = Some(now + self.every);
        Some(std::mem::take(&mut state.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_period_and_it_counts_the_lines_left_out() {
        let throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.admit(), None);
        }
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert_eq!(throttle.admit(), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(throttle.admit(), Some(1001));
        assert_eq!(throttle.admit(), None);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(throttle.admit(), Some(1));
        assert_eq!(throttle.admit(), None);
    }
}
