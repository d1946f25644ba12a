//! The actor task: start phases, the inbox loop, and the one place its stop is
//! recorded.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use actor_metrics::labels::{Inbox, MutationReason, ShutdownReason, StartupPhase, TaskKind};
use actor_metrics::{ActionMetrics, ActorMetrics};
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::action::{ActionError, CallError, CallResult};
use crate::host::{ActorInfo, HostInner};
use crate::shutdown;
use crate::task::UserTasks;

/// A boxed future, as actor code returns from [`Behaviour::call`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The code of one actor type. One value serves every actor of the type; an
/// actor's own state lives in its [`Context`] (its database, queue, connections).
pub trait Behaviour: Send + Sync + 'static {
    /// The type name (`actor_name` label); `[a-z0-9_-]+`.
    fn name(&self) -> &'static str;

    /// Every action this type handles. Calls to other names are refused before
    /// they reach the actor, so they never create a label value.
    fn actions(&self) -> &'static [&'static str];

    /// Start phase `load_state`: migrate and read persisted state.
    fn load_state(&self, ctx: &mut Context) -> Result<(), ActionError> {
        let _ = ctx;
        Ok(())
    }

    /// Start phase `on_start`: anything the actor does once it is loaded.
    fn on_start(&self, ctx: &mut Context) -> Result<(), ActionError> {
        let _ = ctx;
        Ok(())
    }

    /// Handles one action call. `action` is one of [`Behaviour::actions`].
    fn call<'a>(
        &'a self,
        ctx: &'a mut Context,
        action: &'static str,
        payload: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>>;
}

/// What actor code works through: its database, queue, connections, user tasks
/// and state mutations, each recorded in the actor's resolved series.
#[derive(Debug)]
pub struct Context {
    info: ActorInfo,
    metrics: ActorMetrics,
    db: rusqlite::Connection,
    tasks: UserTasks,
    queue: VecDeque<Value>,
    connections: u32,
}

impl Context {
    /// Who this actor is.
    pub fn info(&self) -> &ActorInfo {
        &self.info
    }

    /// The actor's series, for events not covered by the methods below.
    pub fn metrics(&self) -> &ActorMetrics {
        &self.metrics
    }

    /// The actor's own SQLite database (instrumented: commits, rows, statements).
    pub fn db(&mut self) -> &mut rusqlite::Connection {
        &mut self.db
    }

    /// Records one mutation of the actor's state.
    pub fn mutated(&self, reason: MutationReason) {
        self.metrics.state_mutations_total(reason).inc();
    }

    /// Sends a message to the actor's queue.
    pub fn send_queue(&mut self, message: Value) {
        self.queue.push_back(message);
        self.metrics.queue_messages_sent_total().inc();
        self.queue_gauges();
    }

    /// Receives the oldest message of the actor's queue, if any.
    pub fn receive_queue(&mut self) -> Option<Value> {
        let message = self.queue.pop_front()?;
        self.metrics.queue_messages_received_total().inc();
        self.queue_gauges();
        Some(message)
    }

    fn queue_gauges(&self) {
        let depth = i64::try_from(self.queue.len()).unwrap_or(i64::MAX);
        self.metrics.queue_depth().set(depth);
        self.metrics.inbox_depth(Inbox::Queue).set(depth);
    }

    /// Accepts a connection; returns how many are open.
    pub fn accept_connection(&mut self) -> u32 {
        self.connections += 1;
        self.metrics.connections_total().inc();
        self.metrics.connections_active().inc();
        self.connections
    }

    /// Closes a connection; returns how many are left, or `None` if none was open.
    pub fn close_connection(&mut self) -> Option<u32> {
        self.connections = self.connections.checked_sub(1)?;
        self.metrics.connections_active().dec();
        Some(self.connections)
    }

    /// Spawns a user task of `kind`; the actor's stop waits for it (with a timeout).
    pub fn spawn_task<F>(&mut self, kind: TaskKind, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(kind, work);
    }
}

/// A message in an actor's inbox.
pub(crate) enum Msg {
    /// An action call.
    Call {
        action: &'static str,
        recorder: ActionMetrics,
        payload: Value,
        reply: oneshot::Sender<CallResult>,
    },
    /// Stop the actor for `reason`; `destroy` also deletes its database.
    Stop {
        reason: ShutdownReason,
        destroy: bool,
        reply: oneshot::Sender<()>,
    },
}

impl Msg {
    /// Which inbox gauge this message counts in.
    pub(crate) fn inbox(&self) -> Inbox {
        match self {
            Msg::Call { .. } => Inbox::Action,
            Msg::Stop { .. } => Inbox::Lifecycle,
        }
    }
}

/// Everything an actor task starts from.
pub(crate) struct Start {
    pub(crate) behaviour: Arc<dyn Behaviour>,
    pub(crate) info: ActorInfo,
    pub(crate) metrics: ActorMetrics,
    pub(crate) db_path: PathBuf,
    pub(crate) sqlite: actor_sqlite_hooks::HookOptions,
    pub(crate) shutdown_timeout: std::time::Duration,
    pub(crate) inbox: mpsc::Receiver<Msg>,
    /// The previous generation's task: this one opens the database only after it ended.
    pub(crate) previous: Option<tokio::task::JoinHandle<()>>,
    pub(crate) started: oneshot::Sender<Result<(), String>>,
    pub(crate) host: Weak<HostInner>,
}

/// Records the stop if the task unwinds past the explicit stop (a panic outside
/// an action); the explicit call at task exit makes this a no-op otherwise.
struct StopOnUnwind(ActorMetrics);

impl Drop for StopOnUnwind {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

/// The actor task.
pub(crate) async fn run(start: Start) {
    let Start {
        behaviour,
        info,
        metrics,
        db_path,
        sqlite,
        shutdown_timeout,
        mut inbox,
        previous,
        started,
        host,
    } = start;
    let _fallback = StopOnUnwind(metrics.clone());
    if let Some(previous) = previous {
        // A panic of the previous generation was already recorded by its own guard.
        let _ = previous.await;
    }

    let mut ctx = match open(&*behaviour, &info, &metrics, &db_path, &sqlite) {
        Ok(ctx) => {
            let _ = started.send(Ok(()));
            ctx
        }
        Err(e) => {
            tracing::error!(actor = %info, error = %e, "actor failed to start");
            metrics.stopped();
            forget(&host, &info);
            let _ = started.send(Err(e));
            return;
        }
    };

    let (reason, destroy, reply) = loop {
        let Some(msg) = inbox.recv().await else {
            // Every sender is gone: the host itself was dropped.
            break (ShutdownReason::HostShutdown, false, None);
        };
        metrics.inbox_depth(msg.inbox()).dec();
        match msg {
            Msg::Call {
                action,
                recorder,
                payload,
                reply,
            } => {
                let t0 = tokio::time::Instant::now();
                let outcome = AssertUnwindSafe(behaviour.call(&mut ctx, action, payload))
                    .catch_unwind()
                    .await;
                let elapsed = t0.elapsed();
                match outcome {
                    Ok(Ok(value)) => {
                        metrics.record_action(&recorder, elapsed, true);
                        let _ = reply.send(Ok(value));
                    }
                    Ok(Err(e)) => {
                        metrics.record_action(&recorder, elapsed, false);
                        let _ = reply.send(Err(CallError::Action(e)));
                    }
                    Err(_) => {
                        metrics.record_action(&recorder, elapsed, false);
                        tracing::error!(actor = %info, action, "action panicked; stopping the actor");
                        let _ = reply.send(Err(CallError::Panicked {
                            action: action.to_owned(),
                        }));
                        break (ShutdownReason::Panic, false, None);
                    }
                }
            }
            Msg::Stop {
                reason,
                destroy,
                reply,
            } => break (reason, destroy, Some(reply)),
        }
    };

    // Nothing new gets in; whatever is queued is answered, not dropped silently.
    forget(&host, &info);
    inbox.close();
    while let Ok(msg) = inbox.try_recv() {
        metrics.inbox_depth(msg.inbox()).dec();
        match msg {
            Msg::Call { reply, .. } => {
                let _ = reply.send(Err(CallError::Stopped(stop_word(reason).to_owned())));
            }
            Msg::Stop { reply, .. } => {
                let _ = reply.send(());
            }
        }
    }

    shutdown::drain(&mut ctx.tasks, &metrics, reason, shutdown_timeout).await;
    drop(ctx);
    if destroy {
        remove_database(&db_path);
    }
    metrics.stopped();
    if let Some(reply) = reply {
        let _ = reply.send(());
    }
}

/// Runs the start phases, each timed in `actor_startup_duration_seconds{phase}`.
fn open(
    behaviour: &dyn Behaviour,
    info: &ActorInfo,
    metrics: &ActorMetrics,
    db_path: &std::path::Path,
    sqlite: &actor_sqlite_hooks::HookOptions,
) -> Result<Context, String> {
    let phase = |p: StartupPhase, t0: tokio::time::Instant| {
        metrics
            .startup_duration_seconds(p)
            .observe_duration(t0.elapsed());
    };
    let t0 = tokio::time::Instant::now();
    let db =
        actor_sqlite_hooks::open(db_path, metrics.clone(), sqlite).map_err(|e| e.to_string())?;
    phase(StartupPhase::OpenDb, t0);
    let mut ctx = Context {
        info: info.clone(),
        metrics: metrics.clone(),
        db,
        tasks: UserTasks::new(metrics.clone()),
        queue: VecDeque::new(),
        connections: 0,
    };
    let t0 = tokio::time::Instant::now();
    behaviour
        .load_state(&mut ctx)
        .map_err(|e| format!("load_state: {e}"))?;
    phase(StartupPhase::LoadState, t0);
    let t0 = tokio::time::Instant::now();
    behaviour
        .on_start(&mut ctx)
        .map_err(|e| format!("on_start: {e}"))?;
    phase(StartupPhase::OnStart, t0);
    Ok(ctx)
}

fn forget(host: &Weak<HostInner>, info: &ActorInfo) {
    if let Some(host) = host.upgrade() {
        host.forget_live(info);
    }
}

fn stop_word(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::Sleep => "the actor went to sleep",
        ShutdownReason::Destroy => "the actor was destroyed",
        ShutdownReason::HostShutdown => "the host is shutting down",
        ShutdownReason::Panic => "the actor panicked",
    }
}

/// Deletes a destroyed actor's database and its WAL files.
fn remove_database(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = ?p, error = %e, "could not delete a destroyed actor's database")
            }
        }
    }
}
