//! Draining an actor's user tasks when it stops: wait up to a timeout, abort the
//! rest, and record how long the stop waited and whether it gave up.

use std::time::Duration;

use actor_metrics::ActorMetrics;
use actor_metrics::labels::ShutdownReason;

use crate::task::UserTasks;

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Whether the timeout ran out.
    pub timed_out: bool,
    /// Tasks aborted because the timeout ran out.
    pub aborted: usize,
}

/// Waits for `tasks` up to `timeout`, then aborts what is left. Observes the wait
/// in `actor_shutdown_wait_seconds{reason}` and counts a timeout in
/// `actor_shutdown_timeouts_total{reason}`.
pub async fn drain(
    tasks: &mut UserTasks,
    metrics: &ActorMetrics,
    reason: ShutdownReason,
    timeout: Duration,
) -> Drained {
    let started = tokio::time::Instant::now();
    let drained = match tokio::time::timeout(timeout, tasks.join_all()).await {
        Ok(()) => Drained {
            timed_out: false,
            aborted: 0,
        },
        Err(_) => {
            metrics.shutdown_timeouts_total(reason).inc();
            let aborted = tasks.abort_all().await;
            tracing::warn!(
                actor = %metrics.labels().actor_id_gen(),
                reason = reason_str(reason),
                aborted,
                "user tasks outlived the shutdown timeout and were aborted"
            );
            Drained {
                timed_out: true,
                aborted,
            }
        }
    };
    metrics
        .shutdown_wait_seconds(reason)
        .observe_duration(started.elapsed());
    drained
}

fn reason_str(reason: ShutdownReason) -> &'static str {
    use actor_metrics::labels::LabelEnum;
    reason.as_str()
}
