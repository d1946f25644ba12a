//! Liveness of the host process, for `/healthz`: a task that must not have
//! ended (the metrics sweeper) and the host runtime's heartbeat (a wedged
//! runtime stops beating). Each is a check an `actor-metrics-server` `Health`
//! runs on its own thread, so the answer does not depend on the host runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Default time between heartbeats: 1 second.
pub const DEFAULT_BEAT_EVERY: Duration = Duration::from_secs(1);
/// Default heartbeat age past which the runtime counts as wedged: 10 seconds.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10);

/// A check that fails once `task` has ended (finished, panicked or aborted):
/// `Err("{what} ended")`.
pub fn task_alive(
    task: Arc<JoinHandle<()>>,
    what: &'static str,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    move || {
        if task.is_finished() {
            Err(format!("{what} ended"))
        } else {
            Ok(())
        }
    }
}

/// A task on the host runtime that records when it last ran.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last: Arc<AtomicU64>,
    stale_after: Duration,
}

impl Heartbeat {
    /// Starts beating every `every` on the current runtime. The check fails
    /// when the last beat is older than `stale_after`.
    pub fn spawn(every: Duration, stale_after: Duration) -> (Heartbeat, JoinHandle<()>) {
        let beat = Heartbeat {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
            stale_after,
        };
        let task = {
            let beat = beat.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    beat.last.store(beat.elapsed_ms(), Ordering::Release);
                }
            })
        };
        (beat, task)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `Ok` while the runtime beat within `stale_after`.
    pub fn check(&self) -> Result<(), String> {
        let age = self
            .elapsed_ms()
            .saturating_sub(self.last.load(Ordering::Acquire));
        if Duration::from_millis(age) > self.stale_after {
            Err(format!(
                "the host runtime has not run its heartbeat for {:.1} s",
                age as f64 / 1000.0
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_that_stops_running_is_reported_after_the_stale_age() {
        let (beat, task) = Heartbeat::spawn(Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..30 {
            tokio::time::advance(Duration::from_secs(1)).await;
            tokio::task::yield_now().await;
            assert_eq!(beat.check(), Ok(()), "beating every second");
        }
        // The heartbeat gets no more turns, as on a wedged runtime.
        task.abort();
        let _ = task.await;
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(beat.check(), Ok(()), "not before the stale age");
        tokio::time::advance(Duration::from_millis(1500)).await;
        let err = beat.check().unwrap_err();
        assert_eq!(err, "the host runtime has not run its heartbeat for 11.5 s");
    }

    #[tokio::test]
    async fn a_check_on_a_task_fails_once_it_ended() {
        let task = Arc::new(tokio::spawn(std::future::pending::<()>()));
        let check = task_alive(task.clone(), "the sweeper");
        assert_eq!(check(), Ok(()));
        task.abort();
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        assert_eq!(check(), Err("the sweeper ended".into()));
    }
}
