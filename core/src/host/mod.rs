//! The host: every actor by `(name, key)`, and the lifecycle steps on them
//! (wake, sleep, destroy, shutdown).
//!
//! * Ids and generations come from the [catalogue](crate::catalogue), written
//!   durably before an actor's database is opened.
//! * Live actors are bounded ([`HostConfig::max_live_actors`]): each holds a
//!   permit until its database is closed, and a wake at the bound puts the least
//!   recently used idle actor to sleep first.
//! * The slot table is one `parking_lot::Mutex`, held only for map work, never
//!   across an `.await`. Lifecycle steps on one key (wake, sleep, destroy) are
//!   serialised by that key's step lock, so a create never races a destroy into
//!   the same file; a call to a live actor takes only the table lock.
//! * Actor tasks report their own end through a callback holding the host
//!   weakly; a slot is dropped once its actor has ended and no step holds it, so
//!   memory follows live actors, not every key ever seen.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Host`]'s public operations and its shared state |
//! | `builder.rs` | [`HostBuilder`], [`HostError`]: actor types, data dir, catalogue |
//! | `table.rs` | the slot table (keys, live actors in LRU order, failed starts) and sending to a live actor |
//! | `lifecycle.rs` | the steps on one key: wake (admitting past the live bound), the key's step lock, an actor task's end |

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actor_metrics::labels::ShutdownReason;
use actor_metrics::{ActionMetrics, ActorType, Metrics};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::Instant;

use crate::action::{CallError, CallResult};
use crate::actor::{self, ExitReport, Msg};
use crate::behaviour::Behaviour;
use crate::budget::HostBudget;
use crate::catalogue::Catalogue;
use crate::config::{HostConfig, MAX_KEY_BYTES};
use crate::context::ActorInfo;
use crate::database;
use crate::lru::Lru;
use crate::payload::Payload;
use crate::throttle::LogThrottle;
use crate::trace::TraceContext;

mod builder;
mod lifecycle;
mod table;

pub use builder::{HostBuilder, HostError};
use table::{SendError, Table, request_stop, send, stop};

/// At most one "actor failed to start" line per this long; the next one says
/// how many were left out.
const START_FAILURE_LOG_EVERY: Duration = Duration::from_secs(5);

/// How long past the shutdown deadline [`Host::shutdown`] waits for actor
/// tasks (closing databases, an open still on the blocking pool) before it
/// aborts them.
const SHUTDOWN_ABORT_AFTER: Duration = Duration::from_secs(1);

/// How many times a call is offered to an actor that stops before running it
/// (slept, evicted, idle, panicked while it waited) before the caller is told.
const CALL_ATTEMPTS: usize = 3;

/// A running actor host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("data_dir", &self.inner.config.data_dir)
            .field("live", &self.live_count())
            .finish_non_exhaustive()
    }
}

/// One actor type, resolved once.
struct TypeEntry {
    behaviour: Arc<dyn Behaviour>,
    metrics: ActorType,
    actions: HashMap<&'static str, ActionMetrics>,
}

/// Shared state of a [`Host`].
struct HostInner {
    metrics: Metrics,
    config: HostConfig,
    types: HashMap<&'static str, TypeEntry>,
    catalogue: Catalogue,
    table: Mutex<Table>,
    /// One permit per live actor, held by its task until its database is closed.
    permits: Arc<Semaphore>,
    report: ExitReport,
    shutting_down: AtomicBool,
    /// The shutdown deadline, once [`Host::shutdown`] has begun; every actor
    /// task watches it.
    deadline: watch::Sender<Option<Instant>>,
    calls: AtomicU64,
    /// What clients hold in memory, host-wide: bytes and user tasks.
    budget: HostBudget,
    /// Queued messages dropped with their actor's generation (sleep on
    /// request, destroy, panic, host stop), for the progress line.
    queue_dropped: Arc<AtomicU64>,
    /// Rate limit of the "actor failed to start" log line.
    start_failures: LogThrottle,
}

impl Host {
    /// Starts building a host that records into `metrics`; register its actor
    /// types with [`HostBuilder::behaviour`].
    pub fn builder(metrics: Metrics, config: HostConfig) -> HostBuilder {
        HostBuilder::new(metrics, config)
    }

    /// The metrics instance this host records into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Creates the actor, or wakes it (a new generation) if it sleeps. A live
    /// actor is returned as it is. Returns once the actor has started.
    pub async fn create(&self, name: &str, key: &str) -> Result<ActorInfo, CallError> {
        let type_name = self.inner.resolve(name, key)?;
        Ok(self.inner.wake(type_name, key, true).await?.info)
    }

    /// Calls `action` on the actor, waking it if it sleeps. Unknown types and
    /// actions are refused here, before anything is recorded. A call that an
    /// actor gave back unrun because it stopped first is offered to its next
    /// generation.
    ///
    /// While it waits in the inbox and runs, the call is charged
    /// [`Payload::held_bytes`] against the actor's inbox bound
    /// ([`HostConfig::inbox_max_bytes`], while it waits) and the host's
    /// ([`HostConfig::max_client_bytes`], until its action returns); past
    /// either it is refused with [`CallError::Limit`] and nothing is sent.
    pub async fn call(
        &self,
        name: &str,
        key: &str,
        action: &str,
        payload: impl Into<Payload>,
    ) -> CallResult {
        self.call_in(name, key, action, payload.into(), None).await
    }

    /// As [`Host::call`], in the caller's trace: the action runs inside a
    /// `tracing` span carrying the actor's labels, the action and the trace
    /// (see [`trace`](crate::trace)), and its code sees the trace through
    /// [`Context::trace`](crate::Context::trace).
    pub async fn call_traced(
        &self,
        name: &str,
        key: &str,
        action: &str,
        payload: impl Into<Payload>,
        trace: TraceContext,
    ) -> CallResult {
        self.call_in(name, key, action, payload.into(), Some(trace))
            .await
    }

    async fn call_in(
        &self,
        name: &str,
        key: &str,
        action: &str,
        mut payload: Payload,
        trace: Option<TraceContext>,
    ) -> CallResult {
        let inner = &self.inner;
        let type_name = inner.type_name(name)?;
        let (action, recorder) = inner.types[type_name]
            .actions
            .get_key_value(action)
            .map(|(a, r)| (*a, r.clone()))
            .ok_or_else(|| CallError::UnknownAction {
                actor_name: name.to_owned(),
                action: action.to_owned(),
            })?;
        check_key(key)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let found = inner.table.lock().touch_live(type_name, key);
            let live = match found {
                Some(live) => live,
                None => inner.wake(type_name, key, false).await?,
            };
            let held = inner.budget.bytes.charge(payload.held_bytes())?;
            let waiting = live.inbox_bytes.charge(payload.held_bytes())?;
            let (reply, answer) = oneshot::channel();
            let msg = Msg::Call {
                action,
                recorder: recorder.clone(),
                payload,
                reply,
                charges: (held, waiting),
                trace: trace.map(Box::new),
            };
            let unrun = match send(&live, msg) {
                Ok(()) => match answer.await {
                    Ok(actor::Answer::Ran(result)) => {
                        inner.calls.fetch_add(1, Ordering::Relaxed);
                        return result;
                    }
                    Ok(actor::Answer::NotRun { payload, why }) => (payload, why),
                    Err(_) => {
                        return Err(CallError::Stopped(
                            "the actor ended without answering".to_owned(),
                        ));
                    }
                },
                Err(SendError::Overloaded) => return Err(CallError::Overloaded),
                Err(SendError::Closed(payload)) => (payload, "the actor is stopping"),
            };
            if attempt >= CALL_ATTEMPTS {
                return Err(CallError::Stopped(unrun.1.to_owned()));
            }
            payload = unrun.0;
        }
    }

    /// Puts the actor to sleep: its task ends after draining user tasks, its state
    /// stays on disk, and its series are retained. The next call or create wakes it.
    pub async fn sleep(&self, name: &str, key: &str) -> Result<(), CallError> {
        let inner = &self.inner;
        let type_name = inner.resolve(name, key)?;
        inner
            .stepped(type_name, key, async || {
                let (live, running) = {
                    let mut table = inner.table.lock();
                    let live = table.take_live(type_name, key);
                    let running = table.slot(type_name, key).is_some_and(|s| s.task.is_some());
                    (live, running)
                };
                match live {
                    Some(live) => {
                        stop(&live, ShutdownReason::Sleep).await;
                        Ok(())
                    }
                    // Going to sleep on its own (idle, panicked).
                    None if running => Ok(()),
                    // Asleep already, or unknown.
                    None => inner.known(type_name, key).await,
                }
            })
            .await
    }

    /// Destroys the actor: it stops, the catalogue forgets its key, and the
    /// files of its id are deleted once its task has ended, however it ended. A
    /// later create gets a new id and an empty database.
    pub async fn destroy(&self, name: &str, key: &str) -> Result<(), CallError> {
        let inner = &self.inner;
        let type_name = inner.resolve(name, key)?;
        inner
            .stepped(type_name, key, async || {
                let (live, task) = {
                    let mut table = inner.table.lock();
                    let live = table.take_live(type_name, key);
                    let task = table.slot(type_name, key).and_then(|s| s.task.take());
                    (live, task)
                };
                let stopped = match &live {
                    Some(live) => request_stop(live, ShutdownReason::Destroy).await,
                    None => None,
                };
                match (task, stopped) {
                    // Ended, panicked or aborted: either way its database is closed.
                    (Some((_, task)), _) => {
                        let _ = task.await;
                    }
                    (None, Some(stopped)) => {
                        let _ = stopped.await;
                    }
                    (None, None) => {}
                }
                let entry = inner
                    .catalogue
                    .forget(type_name, key)
                    .await?
                    .ok_or_else(|| not_found(type_name, key))?;
                inner.table.lock().forget_failure(type_name, key);
                let path = database::path(&inner.config.data_dir, type_name, entry.id);
                database::remove(&path)
                    .map_err(|source| CallError::RemoveFiles { path, source })?;
                inner.catalogue.files_removed(type_name, entry.id);
                Ok(())
            })
            .await
    }

    /// Every live actor.
    pub fn list(&self) -> Vec<ActorInfo> {
        let mut list: Vec<ActorInfo> = self
            .inner
            .table
            .lock()
            .slots
            .values()
            .flat_map(|slots| slots.values())
            .filter_map(|s| s.live.as_ref().map(|l| l.info.clone()))
            .collect();
        list.sort_by(|a, b| (&a.actor_name, &a.key).cmp(&(&b.actor_name, &b.key)));
        list
    }

    /// How many actors are live.
    pub fn live_count(&self) -> usize {
        self.inner.table.lock().lru.len()
    }

    /// Action calls run by actors since start.
    pub fn calls_total(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Queued messages dropped since start because their actor's generation
    /// ended (see [`Context::send_queue`](crate::Context::send_queue)).
    pub fn queue_messages_dropped(&self) -> u64 {
        self.inner.queue_dropped.load(Ordering::Relaxed)
    }

    /// Bytes held for clients now, against [`HostConfig::max_client_bytes`].
    pub fn client_bytes(&self) -> usize {
        self.inner.budget.bytes.held()
    }

    /// User tasks running now, against [`HostConfig::max_tasks`].
    pub fn user_tasks(&self) -> usize {
        self.inner.budget.tasks.held()
    }

    /// A charge of `bytes` against the host's client bytes, for what a
    /// client makes the host hold outside an actor (a request body being read).
    ///
    /// ## Errors
    ///
    /// [`LimitError`](crate::budget::LimitError) past
    /// [`HostConfig::max_client_bytes`].
    pub fn charge_client_bytes(
        &self,
        bytes: usize,
    ) -> Result<crate::budget::Charge, crate::budget::LimitError> {
        self.inner.budget.bytes.charge(bytes)
    }

    /// Stops every actor (reason `host_shutdown`, all at once) and refuses new
    /// calls, within one bound: the shutdown timeout.
    ///
    /// * New calls and calls waiting in an inbox get [`CallError::ShuttingDown`].
    /// * An action still running at the deadline (the shutdown timeout from
    ///   now) is cancelled: its caller gets [`CallError::Cancelled`], and a
    ///   transaction it had open is rolled back.
    /// * User tasks get what is left until the deadline, then are aborted.
    /// * Actor tasks still running a second past the deadline
    ///   (closing a database, an open stuck on a lock) are aborted.
    ///
    /// Returns when every actor task has ended.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.shutdown_timeout;
        // Before the table is emptied, so a wake that slips in sees it.
        inner.deadline.send_replace(Some(deadline));
        inner.shutting_down.store(true, Ordering::SeqCst);
        let (lives, mut tasks): (Vec<_>, Vec<_>) = {
            let mut table = inner.table.lock();
            let Table { slots, lru, .. } = &mut *table;
            let taken = slots
                .values_mut()
                .flat_map(|slots| slots.values_mut())
                .map(|s| (s.live.take(), s.task.take()))
                .unzip();
            *lru = Lru::default();
            taken
        };
        let give_up = deadline + SHUTDOWN_ABORT_AFTER;
        let stops = lives
            .into_iter()
            .flatten()
            .map(|live| async move { stop(&live, ShutdownReason::HostShutdown).await });
        let ended = async {
            futures::future::join_all(stops).await;
            for (_, task) in tasks.iter_mut().flatten() {
                let _ = task.await;
            }
        };
        if tokio::time::timeout_at(give_up, ended).await.is_err() {
            let running: Vec<_> = tasks
                .into_iter()
                .flatten()
                .filter(|(_, t)| !t.is_finished())
                .map(|(_, t)| t)
                .collect();
            tracing::warn!(
                actors = running.len(),
                "actor tasks still running past the shutdown timeout; aborting them"
            );
            for task in &running {
                task.abort();
            }
            futures::future::join_all(running).await;
        }
    }
}

fn not_found(name: &str, key: &str) -> CallError {
    CallError::NotFound {
        actor_name: name.to_owned(),
        key: key.to_owned(),
    }
}

fn check_key(key: &str) -> Result<(), CallError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(CallError::BadKey(format!(
            "{} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}
