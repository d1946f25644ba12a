//! The actor task: start phases, the inbox loop with its idle timer, and the one
//! place its stop is recorded.
//!
//! The task knows nothing of the host: it tells whoever started it about its
//! own end through an [`ExitReport`] callback, once when it stops taking calls
//! ([`Exit::Closing`]) and once when it has ended, its database closed
//! ([`Exit::Ended`]). Which files a destroy removes is not the task's business
//! either: the host deletes them after the task has ended, whatever way it ended.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actor_metrics::exemplar::InCall;
use actor_metrics::labels::{Inbox, ShutdownReason, StartupPhase};
use actor_metrics::{ActionMetrics, ActorMetrics};
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::action::{CallError, CallResult};
use crate::behaviour::Behaviour;
use crate::budget::Charge;
use crate::context::{ActorInfo, Context, Limits};
use crate::payload::Payload;
use crate::shutdown;
use crate::trace::TraceContext;

/// A message in an actor's inbox.
pub(crate) enum Msg {
    /// An action call.
    Call {
        action: &'static str,
        recorder: ActionMetrics,
        payload: Payload,
        reply: oneshot::Sender<Answer>,
        /// The payload's charges on the host's bytes (held until the action
        /// returns) and on the inbox's bytes (held while it waits).
        charges: (Charge, Charge),
        /// The caller's trace, when it traced the call (boxed: an untraced
        /// call's message grows by one pointer, not by the context).
        trace: Option<Box<TraceContext>>,
    },
    /// Stop the actor for `reason`; the reply comes once it has ended.
    Stop {
        reason: ShutdownReason,
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

/// An actor's answer to one call.
pub(crate) enum Answer {
    /// The action ran (or panicked) and this is its result.
    Ran(CallResult),
    /// The actor stopped before running it; the payload comes back so the call
    /// can be offered to the next generation.
    NotRun { payload: Payload, why: &'static str },
}

/// What an actor task reports about its own end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It takes no more calls (sent before its inbox closes); calls already in
    /// its inbox are answered [`Answer::NotRun`].
    Closing,
    /// It has ended: user tasks drained, database closed, stop recorded.
    Ended,
}

/// Where an actor task reports its end.
pub(crate) type ExitReport = Arc<dyn Fn(&ActorInfo, Exit) + Send + Sync>;

/// Everything an actor task starts from.
pub(crate) struct Start {
    pub(crate) behaviour: Arc<dyn Behaviour>,
    pub(crate) info: ActorInfo,
    pub(crate) metrics: ActorMetrics,
    pub(crate) db_path: PathBuf,
    pub(crate) db: actor_sqlite_hooks::HookOptions,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) limits: Limits,
    /// Sleep after this long with no call, connection or user task.
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) inbox: mpsc::Receiver<Msg>,
    /// The previous generation's task: this one opens the database only after it ended.
    pub(crate) previous: Option<tokio::task::JoinHandle<()>>,
    pub(crate) started: oneshot::Sender<Result<(), String>>,
    pub(crate) report: ExitReport,
    /// Whether nothing holds the actor awake, for the host's choice of whom to put to sleep.
    pub(crate) idle: Arc<AtomicBool>,
    /// One of the host's live-actor permits, held until the database is closed.
    pub(crate) permit: OwnedSemaphorePermit,
    /// The host's shutdown deadline once a shutdown has begun: an action still
    /// running then is cancelled, and no new one starts.
    pub(crate) shutdown: watch::Receiver<Option<Instant>>,
}

/// Records the stop and reports the end if the task unwinds past the explicit
/// ones (a panic outside an action); after them it does nothing.
struct EndGuard {
    metrics: ActorMetrics,
    info: ActorInfo,
    report: ExitReport,
    reported: bool,
}

impl EndGuard {
    fn end(&mut self) {
        self.metrics.stopped();
        if !self.reported {
            self.reported = true;
            (self.report)(&self.info, Exit::Ended);
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.end();
    }
}

/// The actor task: start, serve its inbox until a stop, close.
pub(crate) async fn run(start: Start) {
    let Start {
        behaviour,
        info,
        metrics,
        db_path,
        db,
        shutdown_timeout,
        limits,
        idle_timeout,
        mut inbox,
        previous,
        started,
        report,
        idle,
        permit,
        mut shutdown,
    } = start;
    let mut end = EndGuard {
        metrics: metrics.clone(),
        info: info.clone(),
        report: report.clone(),
        reported: false,
    };
    let opened = start_up(&behaviour, &info, &metrics, db_path, db, limits, previous).await;
    let mut ctx = match opened {
        Ok(ctx) => {
            let _ = started.send(Ok(()));
            ctx
        }
        Err(e) => {
            // It never ran: its label set goes at once, not retained for the
            // retention window (a client retrying a broken actor would fill
            // the cap). The host logs the failure, rate-limited.
            metrics.abandoned();
            end.end();
            // Calls sent while it was starting get the same answer as the caller that woke it.
            drain_inbox(&mut inbox, &metrics, |msg| {
                if let Msg::Call { reply, .. } = msg {
                    let _ = reply.send(Answer::Ran(Err(CallError::StartFailed(e.clone()))));
                }
            });
            let _ = started.send(Err(e));
            return;
        }
    };
    let actor = Serving {
        behaviour: &*behaviour,
        info: &info,
        metrics: &metrics,
        idle: &idle,
        idle_timeout,
    };
    let (reason, reply) = actor.serve(&mut ctx, &mut inbox, &mut shutdown).await;
    report(&info, Exit::Closing);
    let replies = close(
        ctx,
        &info,
        &metrics,
        inbox,
        reason,
        reply,
        &shutdown,
        shutdown_timeout,
    )
    .await;
    // The database is closed: the live-actor permit can serve another actor.
    drop(permit);
    end.end();
    for reply in replies {
        let _ = reply.send(());
    }
}

/// Waits for the previous generation to end, then opens the database and
/// runs the behaviour's start hooks.
///
/// Opening can block: another process holding the file's lock makes SQLite
/// wait up to its busy timeout, and `load_state` is the behaviour's own
/// synchronous code. So it runs on the blocking pool, never on a runtime
/// worker that every other actor needs.
async fn start_up(
    behaviour: &Arc<dyn Behaviour>,
    info: &ActorInfo,
    metrics: &ActorMetrics,
    db_path: PathBuf,
    db: actor_sqlite_hooks::HookOptions,
    limits: Limits,
    previous: Option<tokio::task::JoinHandle<()>>,
) -> Result<Context, String> {
    if let Some(previous) = previous {
        // A panic of the previous generation was already recorded by its own guard.
        let _ = previous.await;
    }
    let (behaviour, info, metrics) = (behaviour.clone(), info.clone(), metrics.clone());
    let opening = tokio::task::spawn_blocking(move || {
        open(&*behaviour, &info, &metrics, &db_path, &db, limits)
    });
    match opening.await {
        Ok(opened) => opened,
        Err(e) if e.is_panic() => Err("the actor panicked while starting".to_owned()),
        Err(_) => Err("the actor's start was cancelled".to_owned()),
    }
}

/// Closes the inbox and hands every message still in it to `each`.
fn drain_inbox(inbox: &mut mpsc::Receiver<Msg>, metrics: &ActorMetrics, mut each: impl FnMut(Msg)) {
    inbox.close();
    while let Ok(msg) = inbox.try_recv() {
        metrics.inbox_depth(msg.inbox()).dec();
        each(msg);
    }
}

/// What the inbox loop works with.
struct Serving<'a> {
    behaviour: &'a dyn Behaviour,
    info: &'a ActorInfo,
    metrics: &'a ActorMetrics,
    /// Whether nothing holds the actor awake, for the host's choice of whom to put to sleep.
    idle: &'a AtomicBool,
    idle_timeout: Option<Duration>,
}

/// How one call ended, for the inbox loop.
enum Served {
    /// Answered; the actor goes on.
    Answered,
    /// The actor must stop for this reason.
    Stop(ShutdownReason),
}

impl Serving<'_> {
    /// Takes messages until a stop: a stop message, a panicking or cancelled
    /// call, the idle timer, or the host gone. Returns why, and who waits for
    /// the stop.
    async fn serve(
        &self,
        ctx: &mut Context,
        inbox: &mut mpsc::Receiver<Msg>,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) -> (ShutdownReason, Option<oneshot::Sender<()>>) {
        let mut last_used = Instant::now();
        loop {
            let idle_at = self
                .idle_timeout
                .filter(|_| ctx.is_idle())
                .map(|t| last_used + t);
            self.idle.store(ctx.is_idle(), Ordering::Relaxed);
            let idle_timer = async {
                match idle_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                msg = inbox.recv() => {
                    let Some(msg) = msg else {
                        // Every sender is gone: the host itself was dropped.
                        return (ShutdownReason::HostShutdown, None);
                    };
                    self.idle.store(false, Ordering::Relaxed);
                    self.metrics.inbox_depth(msg.inbox()).dec();
                    match msg {
                        Msg::Call { action, recorder, payload, reply, charges, trace } => {
                            // A traced call runs in its span; an untraced one
                            // creates none (no span cost without a caller's trace).
                            let span = trace.as_deref().map(|t| action_span(self.info, action, t));
                            let call = Call { action, recorder, payload, reply, charges, trace };
                            let served = match span {
                                Some(span) => self.call(ctx, call, shutdown).instrument(span).await,
                                None => self.call(ctx, call, shutdown).await,
                            };
                            if let Served::Stop(reason) = served {
                                return (reason, None);
                            }
                        }
                        Msg::Stop { reason, reply } => return (reason, Some(reply)),
                    }
                    last_used = Instant::now();
                }
                () = ctx.tasks.next_finished() => last_used = Instant::now(),
                () = idle_timer => {
                    tracing::debug!(actor = %self.info, "idle; going to sleep");
                    return (ShutdownReason::Sleep, None);
                }
            }
        }
    }

    /// Runs one call, racing the host's shutdown deadline, records it and answers it.
    async fn call(
        &self,
        ctx: &mut Context,
        call: Call,
        shutdown: &mut watch::Receiver<Option<Instant>>,
    ) -> Served {
        let Call {
            action,
            recorder,
            payload,
            reply,
            charges: (held, waiting),
            trace,
        } = call;
        // Out of the inbox; its bytes stay charged to the host until it returns.
        drop(waiting);
        if shutdown.borrow().is_some() {
            // The host is stopping: no new action starts.
            let why = stop_word(ShutdownReason::HostShutdown);
            let _ = reply.send(Answer::NotRun { payload, why });
            return Served::Answered;
        }
        // The trace is the call context's while the action runs (actor code
        // reads it through `Context::trace`), and comes back for the recording.
        // While the action's future is polled, its trace is the thread's
        // current one: a commit it makes gets the call's exemplar.
        // Only a sampled trace: an exemplar of a trace the caller chose not
        // to record would link to nothing (OpenTelemetry's default filter).
        let in_call = trace
            .as_deref()
            .filter(|t| t.sampled())
            .map(TraceContext::call_trace);
        ctx.set_trace(trace);
        let t0 = Instant::now();
        let running = AssertUnwindSafe(InCall::new(
            in_call,
            self.behaviour.call(ctx, action, payload.into_value()),
        ))
        .catch_unwind();
        let outcome = tokio::select! {
            biased;
            outcome = running => Some(outcome),
            () = shutdown_deadline(shutdown) => None,
        };
        let elapsed = t0.elapsed();
        let trace = ctx.set_trace(None);
        drop(held);
        // The call's exemplar: its ids and end time, with no clock read and
        // no allocation. An untraced or unsampled call has none and records
        // as before.
        let exemplar = trace
            .filter(|t| t.sampled())
            .map(|t| t.exemplar(elapsed.as_secs_f64(), t0 + elapsed));
        self.metrics.record_action_traced(
            &recorder,
            elapsed,
            matches!(outcome, Some(Ok(Ok(_)))),
            exemplar.as_ref(),
        );
        let info = self.info;
        match outcome {
            Some(Ok(result)) => {
                let _ = reply.send(Answer::Ran(result.map_err(CallError::Action)));
                Served::Answered
            }
            Some(Err(_)) => {
                tracing::error!(actor = %info, action, "action panicked; stopping the actor");
                let action = action.to_owned();
                let _ = reply.send(Answer::Ran(Err(CallError::Panicked { action })));
                Served::Stop(ShutdownReason::Panic)
            }
            None => {
                // Dropping the action's future dropped any rusqlite
                // Transaction it held (a rollback); a transaction opened by
                // hand is rolled back here.
                if !ctx.db().is_autocommit() {
                    let _ = ctx.db().execute_batch("ROLLBACK");
                }
                tracing::warn!(actor = %info, action, ran_for_s = elapsed.as_secs_f64(), "action still running at the shutdown deadline; cancelled");
                let (action, after) = (action.to_owned(), elapsed);
                let _ = reply.send(Answer::Ran(Err(CallError::Cancelled { action, after })));
                Served::Stop(ShutdownReason::HostShutdown)
            }
        }
    }
}

/// The parts of a [`Msg::Call`].
struct Call {
    action: &'static str,
    recorder: ActionMetrics,
    payload: Payload,
    reply: oneshot::Sender<Answer>,
    charges: (Charge, Charge),
    trace: Option<Box<TraceContext>>,
}

/// The span a traced action runs in: the actor's labels, the action, and the
/// trace. At level ERROR, the most severe, so that any filter that lets an
/// event of the action through also enables its span (a span a filter
/// disables would leave the action's log lines without their trace).
fn action_span(info: &ActorInfo, action: &'static str, trace: &TraceContext) -> tracing::Span {
    tracing::error_span!(
        "action",
        actor_name = info.actor_name.as_str(),
        // Escaped as Rust does (no quotes): a key with a newline cannot
        // forge a log line in the text format.
        actor_key = %info.key.escape_debug(),
        actor_id_gen = %format_args!("{}:{}", info.actor_id, info.generation),
        action,
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
    )
}

/// After the loop: answers what is left in the inbox, drops the queue, drains
/// the user tasks, closes the database, and answers every stop request.
#[allow(clippy::too_many_arguments)]
async fn close(
    mut ctx: Context,
    info: &ActorInfo,
    metrics: &ActorMetrics,
    mut inbox: mpsc::Receiver<Msg>,
    reason: ShutdownReason,
    reply: Option<oneshot::Sender<()>>,
    shutdown: &watch::Receiver<Option<Instant>>,
    shutdown_timeout: Duration,
) -> Vec<oneshot::Sender<()>> {
    // Nothing new gets in; whatever is queued is answered, not dropped silently.
    let mut replies: Vec<oneshot::Sender<()>> = reply.into_iter().collect();
    drain_inbox(&mut inbox, metrics, |msg| match msg {
        Msg::Call { reply, payload, .. } => {
            let why = stop_word(reason);
            let _ = reply.send(Answer::NotRun { payload, why });
        }
        Msg::Stop { reply, .. } => replies.push(reply),
    });
    // Counted host-wide (the progress line); only a panic is unexpected enough
    // for a warning: sleep on request, destroy and host stop drop the queue
    // by design (it is in memory, see `Context::send_queue`).
    let dropped = ctx.drop_queue();
    if dropped > 0 && reason == ShutdownReason::Panic {
        tracing::warn!(actor = %info, dropped, "the actor panicked with messages in its queue; they are lost (the queue is in memory)");
    } else if dropped > 0 {
        tracing::debug!(actor = %info, reason = stop_word(reason), dropped, "queued messages dropped with the actor's generation");
    }
    // Once the host is shutting down, user tasks get what is left until its
    // deadline, so the whole shutdown is bounded by one timeout.
    let drain_for = match *shutdown.borrow() {
        Some(deadline) => deadline
            .saturating_duration_since(Instant::now())
            .min(shutdown_timeout),
        None => shutdown_timeout,
    };
    shutdown::drain(&mut ctx.tasks, metrics, reason, drain_for).await;
    drop(ctx);
    replies
}

/// Completes at the host's shutdown deadline; pending until a shutdown begins
/// (and forever if the host is gone without one).
async fn shutdown_deadline(shutdown: &mut watch::Receiver<Option<Instant>>) {
    let deadline = match shutdown.wait_for(Option::is_some).await {
        Ok(deadline) => *deadline,
        Err(_) => None,
    };
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the start phases, each timed in `actor_startup_duration_seconds{phase}`.
fn open(
    behaviour: &dyn Behaviour,
    info: &ActorInfo,
    metrics: &ActorMetrics,
    db_path: &std::path::Path,
    db: &actor_sqlite_hooks::HookOptions,
    limits: Limits,
) -> Result<Context, String> {
    let phase = |p: StartupPhase, t0: Instant| {
        metrics
            .startup_duration_seconds(p)
            .observe_duration(t0.elapsed());
    };
    let t0 = Instant::now();
    let conn = actor_sqlite_hooks::open(db_path, metrics.clone(), db).map_err(|e| e.to_string())?;
    phase(StartupPhase::OpenDb, t0);
    let mut ctx = Context::new(info.clone(), metrics.clone(), conn, limits);
    let t0 = Instant::now();
    behaviour
        .load_state(&mut ctx)
        .map_err(|e| format!("load_state: {e}"))?;
    phase(StartupPhase::LoadState, t0);
    let t0 = Instant::now();
    behaviour
        .on_start(&mut ctx)
        .map_err(|e| format!("on_start: {e}"))?;
    phase(StartupPhase::OnStart, t0);
    Ok(ctx)
}

fn stop_word(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::Sleep => "the actor went to sleep",
        ShutdownReason::Destroy => "the actor was destroyed",
        ShutdownReason::HostShutdown => "the host is shutting down",
        ShutdownReason::Panic => "the actor panicked",
    }
}
