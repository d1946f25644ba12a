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

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use actor_metrics::labels::{Inbox, ShutdownReason};
use actor_metrics::{ActionMetrics, ActorMetrics, ActorType, Metrics};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::action::{CallError, CallResult};
use crate::actor::{self, Exit, ExitReport, Msg, Start};
use crate::behaviour::Behaviour;
use crate::catalogue::{Catalogue, CatalogueError};
use crate::config::{HostConfig, MAX_KEY_BYTES, MIN_IDLE_TIMEOUT};
use crate::context::{ActorInfo, QueueLimits};
use crate::database;
use crate::lru::{Lru, Tick};
use crate::throttle::LogThrottle;

/// Most keys whose failed start is remembered (for
/// [`HostConfig::start_retry_after`]); past it, expired ones are dropped, and
/// if none has expired a new failure is not remembered.
const MAX_FAILED_STARTS: usize = 4096;
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

/// Errors building a [`Host`].
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The data directory cannot be created or written.
    #[error("data directory {path} is not writable: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An actor type name is not `[a-z0-9_-]+` or is registered twice.
    #[error("bad actor type name {0:?}")]
    BadTypeName(String),
    /// No actor type was registered.
    #[error("no actor type registered; add one with HostBuilder::behaviour")]
    NoBehaviour,
    /// `max_live_actors` is 0.
    #[error("max_live_actors must be at least 1")]
    NoLiveActors,
    /// `idle_timeout` is under [`MIN_IDLE_TIMEOUT`].
    #[error(
        "idle_timeout {given:?} is shorter than the minimum {MIN_IDLE_TIMEOUT:?} (None turns idle sleep off)"
    )]
    IdleTimeoutTooShort {
        /// The timeout given.
        given: Duration,
    },
    /// The SQLite options are refused (a bad page size).
    #[error("actor database options: {0}")]
    SqliteOptions(#[source] actor_sqlite_hooks::SqliteHooksError),
    /// The catalogue cannot be opened.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

/// Builds a [`Host`] from the actor types it is given.
pub struct HostBuilder {
    metrics: Metrics,
    config: HostConfig,
    behaviours: Vec<Arc<dyn Behaviour>>,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("config", &self.config)
            .field(
                "behaviours",
                &self.behaviours.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    /// Registers an actor type.
    pub fn behaviour(mut self, behaviour: impl Behaviour) -> Self {
        self.behaviours.push(Arc::new(behaviour));
        self
    }

    /// Checks the types and the data directory, then takes and opens the
    /// catalogue (waiting up to [`HostConfig::data_dir_lock_timeout`] for
    /// another host to release it).
    ///
    /// ## Errors
    ///
    /// [`HostError`]: a bad or repeated type name, no type at all, a zero bound,
    /// an idle timeout under [`MIN_IDLE_TIMEOUT`],
    /// bad SQLite options, a data directory that cannot be written, or a
    /// catalogue that is locked, damaged or missing next to existing actor
    /// databases.
    pub async fn build(self) -> Result<Host, HostError> {
        let HostBuilder {
            metrics,
            config,
            behaviours,
        } = self;
        if behaviours.is_empty() {
            return Err(HostError::NoBehaviour);
        }
        if config.max_live_actors == 0 {
            return Err(HostError::NoLiveActors);
        }
        if let Some(given) = config.idle_timeout.filter(|t| *t < MIN_IDLE_TIMEOUT) {
            return Err(HostError::IdleTimeoutTooShort { given });
        }
        config.sqlite.check().map_err(HostError::SqliteOptions)?;
        let bulk = actor_sqlite_hooks::bulk_page_cache_pages();
        if bulk > 0 {
            tracing::warn!(
                pages = bulk,
                "SQLite was built with a bulk page-cache allocation: each live actor holds that many pages more than it uses (build inside the workspace, whose .cargo/config.toml turns it off)"
            );
        }
        let mut types = HashMap::new();
        for behaviour in behaviours {
            let name = behaviour.name();
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid || types.contains_key(name) {
                return Err(HostError::BadTypeName(name.to_owned()));
            }
            let ty = metrics.actor_type(name);
            let actions = behaviour
                .actions()
                .iter()
                .map(|a| (*a, ty.action(a)))
                .collect();
            check_writable(&config.data_dir.join(name))?;
            types.insert(
                name,
                TypeEntry {
                    behaviour,
                    metrics: ty,
                    actions,
                },
            );
        }
        let names: Vec<&'static str> = types.keys().copied().collect();
        let catalogue =
            Catalogue::open(&config.data_dir, &names, config.data_dir_lock_timeout).await?;
        let table = Table {
            slots: types.keys().map(|name| (*name, HashMap::new())).collect(),
            lru: Lru::default(),
            failed: HashMap::new(),
        };
        let inner = Arc::new_cyclic(|host: &Weak<HostInner>| {
            let host = host.clone();
            let report: ExitReport = Arc::new(move |info: &ActorInfo, exit: Exit| {
                if let Some(host) = host.upgrade() {
                    host.on_exit(info, exit);
                }
            });
            HostInner {
                permits: Arc::new(Semaphore::new(config.max_live_actors)),
                metrics,
                config,
                types,
                catalogue,
                table: Mutex::new(table),
                report,
                shutting_down: AtomicBool::new(false),
                deadline: watch::Sender::new(None),
                calls: AtomicU64::new(0),
                start_failures: LogThrottle::new(START_FAILURE_LOG_EVERY),
            }
        });
        Ok(Host { inner })
    }
}

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

/// A live actor: where to send, its series for the inbox gauges, and its place
/// in the LRU order.
#[derive(Clone)]
struct Live {
    tx: mpsc::Sender<Msg>,
    metrics: ActorMetrics,
    info: ActorInfo,
    idle: Arc<AtomicBool>,
    tick: Tick,
}

/// What the host holds of one key while anything is going on with it.
#[derive(Default)]
struct Slot {
    /// Held across one lifecycle step (wake, sleep, destroy) of this key.
    step: Arc<tokio::sync::Mutex<()>>,
    /// The generation that takes calls.
    live: Option<Live>,
    /// The latest generation's task, until it reports its end.
    task: Option<(u64, tokio::task::JoinHandle<()>)>,
}

impl Slot {
    /// Nothing runs and no step holds or waits for the key: the slot can go.
    fn is_unused(&self) -> bool {
        self.live.is_none() && self.task.is_none() && Arc::strong_count(&self.step) == 1
    }
}

type LruKey = (&'static str, Arc<str>);

struct Table {
    /// Per actor type, per key.
    slots: HashMap<&'static str, HashMap<Arc<str>, Slot>>,
    /// Every live actor, least recently used first.
    lru: Lru<LruKey>,
    /// Keys whose last start failed: when, and why.
    failed: HashMap<(&'static str, String), (Instant, String)>,
}

impl Table {
    fn slot(&mut self, type_name: &'static str, key: &str) -> Option<&mut Slot> {
        self.slots.get_mut(type_name)?.get_mut(key)
    }

    fn slot_or_insert(&mut self, type_name: &'static str, key: &str) -> &mut Slot {
        self.slots
            .entry(type_name)
            .or_default()
            .entry(Arc::from(key))
            .or_default()
    }

    /// The live generation of the key, marked as just used.
    fn touch_live(&mut self, type_name: &'static str, key: &str) -> Option<Live> {
        let Table { slots, lru, .. } = self;
        let live = slots.get_mut(type_name)?.get_mut(key)?.live.as_mut()?;
        live.tick = lru.touch(live.tick);
        Some(live.clone())
    }

    /// Takes the key's live generation out of the table (it takes no more calls).
    fn take_live(&mut self, type_name: &'static str, key: &str) -> Option<Live> {
        let live = self.slot(type_name, key)?.live.take()?;
        self.lru.remove(live.tick);
        Some(live)
    }

    /// Takes the least recently used idle live actor out of the table.
    fn take_lru_idle(&mut self) -> Option<Live> {
        let (type_name, key) = self.lru.oldest_first().find_map(|(_, (t, k))| {
            let live = self.slots.get(t)?.get(&**k)?.live.as_ref()?;
            live.idle.load(Ordering::Relaxed).then(|| (*t, k.clone()))
        })?;
        self.take_live(type_name, &key)
    }

    /// Why the key's last start failed, if that was less than `window` ago.
    fn recent_failure(
        &self,
        type_name: &'static str,
        key: &str,
        window: Duration,
    ) -> Option<String> {
        let (at, why) = self.failed.get(&(type_name, key.to_owned()))?;
        (at.elapsed() < window).then(|| why.clone())
    }

    /// Remembers a failed start, within [`MAX_FAILED_STARTS`].
    fn record_failure(&mut self, type_name: &'static str, key: &str, window: Duration, why: &str) {
        if self.failed.len() >= MAX_FAILED_STARTS {
            self.failed.retain(|_, (at, _)| at.elapsed() < window);
        }
        if self.failed.len() < MAX_FAILED_STARTS {
            self.failed.insert(
                (type_name, key.to_owned()),
                (Instant::now(), why.to_owned()),
            );
        }
    }

    fn forget_failure(&mut self, type_name: &'static str, key: &str) {
        if !self.failed.is_empty() {
            self.failed.remove(&(type_name, key.to_owned()));
        }
    }

    fn remove_if_unused(&mut self, type_name: &'static str, key: &str) {
        if let Some(slots) = self.slots.get_mut(type_name)
            && slots.get(key).is_some_and(Slot::is_unused)
        {
            slots.remove(key);
        }
    }
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
    /// Rate limit of the "actor failed to start" log line.
    start_failures: LogThrottle,
}

impl Host {
    /// Starts building a host that records into `metrics`; register its actor
    /// types with [`HostBuilder::behaviour`].
    pub fn builder(metrics: Metrics, config: HostConfig) -> HostBuilder {
        HostBuilder {
            metrics,
            config,
            behaviours: Vec::new(),
        }
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
    pub async fn call(
        &self,
        name: &str,
        key: &str,
        action: &str,
        mut payload: Value,
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
            let (reply, answer) = oneshot::channel();
            let msg = Msg::Call {
                action,
                recorder: recorder.clone(),
                payload,
                reply,
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

impl HostInner {
    /// The registered type name for `name`, with `key` checked.
    fn resolve(&self, name: &str, key: &str) -> Result<&'static str, CallError> {
        check_key(key)?;
        self.type_name(name)
    }

    fn type_name(&self, name: &str) -> Result<&'static str, CallError> {
        self.types
            .get_key_value(name)
            .map(|(n, _)| *n)
            .ok_or_else(|| CallError::UnknownType(name.to_owned()))
    }

    /// The key's live generation, woken (or, with `create`, created) if there is
    /// none. Returns once it has started.
    async fn wake(
        &self,
        type_name: &'static str,
        key: &str,
        create: bool,
    ) -> Result<Live, CallError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(CallError::ShuttingDown);
        }
        if let Some(live) = self.table.lock().touch_live(type_name, key) {
            return Ok(live);
        }
        self.stepped(type_name, key, async || {
            let retry_after = self.config.start_retry_after;
            {
                let mut table = self.table.lock();
                if let Some(live) = table.touch_live(type_name, key) {
                    return Ok(live);
                }
                if let Some(why) = table.recent_failure(type_name, key, retry_after) {
                    return Err(CallError::StartFailed(format!(
                        "{why} (not tried again until {} after the failed start)",
                        humantime::format_duration(retry_after)
                    )));
                }
            }
            let permit = self.admit().await?;
            let entry = self
                .catalogue
                .wake(type_name, key, create)
                .await?
                .ok_or_else(|| not_found(type_name, key))?;
            let ty = &self.types[type_name];
            let info = ActorInfo {
                actor_name: type_name.to_owned(),
                key: key.to_owned(),
                actor_id: entry.id.to_string(),
                generation: entry.generation,
            };
            let (tx, inbox) = mpsc::channel(self.config.inbox_capacity);
            let (started_tx, started) = oneshot::channel();
            let idle = Arc::new(AtomicBool::new(false));
            let live = {
                let mut table = self.table.lock();
                // Checked under the lock that shutdown takes everything under.
                if self.shutting_down.load(Ordering::SeqCst) {
                    return Err(CallError::ShuttingDown);
                }
                let metrics = ty
                    .metrics
                    .register(&info.actor_id, Some(info.generation), key);
                let tick = table.lru.insert((type_name, Arc::from(key)));
                let slot = table.slot_or_insert(type_name, key);
                let start = Start {
                    behaviour: ty.behaviour.clone(),
                    info: info.clone(),
                    metrics: metrics.clone(),
                    db_path: database::path(&self.config.data_dir, type_name, entry.id),
                    db: self.config.sqlite.clone(),
                    shutdown_timeout: self.config.shutdown_timeout,
                    queue_limits: QueueLimits {
                        max_messages: self.config.queue_max_messages,
                        max_bytes: self.config.queue_max_bytes,
                    },
                    idle_timeout: self.config.idle_timeout,
                    inbox,
                    previous: slot.task.take().map(|(_, task)| task),
                    started: started_tx,
                    report: self.report.clone(),
                    idle: idle.clone(),
                    permit,
                    shutdown: self.deadline.subscribe(),
                };
                slot.task = Some((info.generation, tokio::spawn(actor::run(start))));
                let live = Live {
                    tx,
                    metrics,
                    info,
                    idle,
                    tick,
                };
                slot.live = Some(live.clone());
                live
            };
            let failed = match started.await {
                Ok(Ok(())) => {
                    self.table.lock().forget_failure(type_name, key);
                    return Ok(live);
                }
                Ok(Err(reason)) => reason,
                Err(_) => "the actor task ended while starting".to_owned(),
            };
            self.table
                .lock()
                .record_failure(type_name, key, retry_after, &failed);
            if let Some(suppressed) = self.start_failures.admit() {
                tracing::error!(
                    actor = %live.info,
                    error = %failed,
                    retry_after = %humantime::format_duration(retry_after),
                    suppressed,
                    "actor failed to start; calls to it get this error until retry_after has passed (suppressed: lines left out since the last one)"
                );
            }
            Err(CallError::StartFailed(failed))
        })
        .await
    }

    /// A live-actor permit; at the bound, puts the least recently used idle
    /// actor to sleep to free one.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return Ok(permit);
            }
            let victim = self.table.lock().take_lru_idle();
            match victim {
                // Its permit comes back when its database is closed, before its stop returns.
                Some(victim) => stop(&victim, ShutdownReason::Sleep).await,
                None => {
                    return Err(CallError::AtCapacity {
                        max: self.config.max_live_actors,
                    });
                }
            }
        }
    }

    /// `Ok` if the catalogue knows the key, else not found.
    async fn known(&self, type_name: &'static str, key: &str) -> Result<(), CallError> {
        match self.catalogue.lookup(type_name, key).await? {
            Some(_) => Ok(()),
            None => Err(not_found(type_name, key)),
        }
    }

    /// Runs one lifecycle step on the key under its step lock, then drops the
    /// key's slot if nothing else holds it.
    async fn stepped<T>(
        &self,
        type_name: &'static str,
        key: &str,
        step: impl AsyncFnOnce() -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let lock = self
            .table
            .lock()
            .slot_or_insert(type_name, key)
            .step
            .clone();
        let result = {
            let _held = lock.lock().await;
            step().await
        };
        drop(lock);
        self.table.lock().remove_if_unused(type_name, key);
        result
    }

    /// An actor task's report of its own end.
    fn on_exit(&self, info: &ActorInfo, exit: Exit) {
        let Ok(type_name) = self.type_name(&info.actor_name) else {
            return;
        };
        let mut table = self.table.lock();
        let Some(slot) = table.slot(type_name, &info.key) else {
            return;
        };
        let live_is_this = slot
            .live
            .as_ref()
            .is_some_and(|l| l.info.generation == info.generation);
        if exit == Exit::Ended
            && slot
                .task
                .as_ref()
                .is_some_and(|(g, _)| *g == info.generation)
        {
            slot.task = None;
        }
        if live_is_this {
            table.take_live(type_name, &info.key);
        }
        table.remove_if_unused(type_name, &info.key);
    }
}

/// Why a message did not get into an inbox.
enum SendError {
    Overloaded,
    /// The inbox is closed; the call's payload comes back to be offered again.
    Closed(Value),
}

/// Sends without waiting: a full inbox is an error the caller sees, not a stall.
fn send(live: &Live, msg: Msg) -> Result<(), SendError> {
    let inbox: Inbox = msg.inbox();
    live.metrics.inbox_depth(inbox).inc();
    live.tx.try_send(msg).map_err(|e| {
        live.metrics.inbox_depth(inbox).dec();
        match e {
            mpsc::error::TrySendError::Full(_) => SendError::Overloaded,
            mpsc::error::TrySendError::Closed(msg) => SendError::Closed(match msg {
                Msg::Call { payload, .. } => payload,
                Msg::Stop { .. } => Value::Null,
            }),
        }
    })
}

/// Asks a live actor to stop; the returned receiver answers once it has ended.
async fn request_stop(live: &Live, reason: ShutdownReason) -> Option<oneshot::Receiver<()>> {
    let (reply, done) = oneshot::channel();
    live.metrics.inbox_depth(Inbox::Lifecycle).inc();
    if live.tx.send(Msg::Stop { reason, reply }).await.is_err() {
        // The task is already closing (it panicked or went idle); its stop is its own.
        live.metrics.inbox_depth(Inbox::Lifecycle).dec();
        return None;
    }
    Some(done)
}

/// Asks a live actor to stop and waits until it has ended.
async fn stop(live: &Live, reason: ShutdownReason) {
    if let Some(done) = request_stop(live, reason).await {
        // A dropped reply means the task ended another way; either way it stopped.
        let _ = done.await;
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

/// Creates `dir` and proves a file can be written there.
fn check_writable(dir: &std::path::Path) -> Result<(), HostError> {
    let err = |source| HostError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)?;
    Ok(())
}
