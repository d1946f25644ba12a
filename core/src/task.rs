//! User tasks: background work an actor spawns, with a kind, tracked so that
//! stopping the actor can wait for them (with a timeout) and abort the rest.

use std::future::Future;

use actor_metrics::ActorMetrics;
use actor_metrics::labels::TaskKind;
use tokio::task::JoinSet;

use crate::budget::{Bound, Charge, HostBudget, LimitError};

/// What a user task holds beyond its future: tokio's task cell, its
/// [`JoinSet`] entry and the guard that records its end (measured: about 850
/// bytes for a task sleeping in `counter`'s `spawn_task`, its future included).
const TASK_OVERHEAD_BYTES: usize = 768;

/// The user tasks of one actor.
#[derive(Debug)]
pub struct UserTasks {
    set: JoinSet<()>,
    metrics: ActorMetrics,
    /// Most tasks of this actor at once.
    max: usize,
    host: HostBudget,
}

impl UserTasks {
    /// An empty set recording into `metrics`, holding at most `max` tasks and
    /// charging each to the `host`'s tasks and bytes.
    pub fn new(metrics: ActorMetrics, max: usize, host: HostBudget) -> Self {
        UserTasks {
            set: JoinSet::new(),
            metrics,
            max,
            host,
        }
    }

    /// Spawns `work` as a user task of `kind`: `actor_user_tasks_active{kind}` is
    /// up while it runs and its run time goes to `actor_user_task_duration_seconds{kind}`.
    /// A task that panics or is aborted leaves the gauge too (a guard's `Drop`),
    /// but only a task that finished records a duration.
    ///
    /// ## Errors
    ///
    /// [`LimitError`] past this actor's bound, the host's bound on tasks, or
    /// the host's bytes for clients; nothing is spawned.
    pub fn spawn<F>(&mut self, kind: TaskKind, work: F) -> Result<(), LimitError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Reap finished tasks first, so a long-lived actor does not keep
        // their results and only running tasks count.
        while self.set.try_join_next().is_some() {}
        if self.set.len() >= self.max {
            return Err(LimitError::Full {
                bound: Bound::ActorTasks,
                held: self.set.len(),
                wanted: 1,
                limit: self.max,
            });
        }
        let task = self.host.tasks.charge(1)?;
        let bytes = self
            .host
            .bytes
            .charge(std::mem::size_of::<F>() + TASK_OVERHEAD_BYTES)?;
        self.metrics.user_tasks_active(kind).inc();
        let guard = Running {
            metrics: self.metrics.clone(),
            kind,
            started: tokio::time::Instant::now(),
            finished: false,
            _charges: (task, bytes),
        };
        self.set.spawn(async move {
            // Move the whole guard in (not just the field) so it drops with the task.
            let mut guard = guard;
            work.await;
            guard.finished = true;
        });
        Ok(())
    }

    /// Tasks not yet reaped (running or finished since the last reap).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits until one task ends and reaps it; pending forever while there is
    /// none, so the actor loop can wait on it next to its inbox and notice when
    /// the last task ended.
    pub async fn next_finished(&mut self) {
        if self.set.is_empty() {
            std::future::pending::<()>().await;
        }
        self.set.join_next().await;
    }

    /// Waits for every task to finish.
    pub async fn join_all(&mut self) {
        while self.set.join_next().await.is_some() {}
    }

    /// Aborts every task still running and waits for them to end; returns how many were aborted.
    pub async fn abort_all(&mut self) -> usize {
        let left = self.set.len();
        self.set.abort_all();
        while self.set.join_next().await.is_some() {}
        left
    }
}

/// Leaves `actor_user_tasks_active{kind}` however the task ends.
struct Running {
    metrics: ActorMetrics,
    kind: TaskKind,
    started: tokio::time::Instant,
    finished: bool,
    /// Released with the task, however it ends.
    _charges: (Charge, Charge),
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.finished {
            self.metrics
                .user_task_duration_seconds(self.kind)
                .observe_duration(self.started.elapsed());
        }
        self.metrics.user_tasks_active(self.kind).dec();
    }
}
