//! The host: every actor by `(name, key)`, and the lifecycle requests on them.
//!
//! The actor table is one `parking_lot::Mutex<HashMap>`, held only for map work,
//! never across an `.await`. An actor's task holds the host weakly, so the host
//! ends when its owner drops it even while actors run.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actor_metrics::labels::{Inbox, ShutdownReason};
use actor_metrics::{ActionMetrics, ActorMetrics, ActorType, Metrics};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::action::{CallError, CallResult};
use crate::actor::{self, Behaviour, Msg, Start};
use crate::{HostConfig, MAX_KEY_BYTES};

/// Who an actor is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorInfo {
    /// The actor type (`actor_name` label).
    pub actor_name: String,
    /// The user key.
    pub key: String,
    /// The id, stable across sleep and wake, new after destroy.
    pub actor_id: String,
    /// Starts at 1; each wake adds one (a new label set).
    pub generation: u64,
}

impl fmt::Display for ActorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{:?} ({}:{})",
            self.actor_name, self.key, self.actor_id, self.generation
        )
    }
}

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

/// A live actor: where to send, and its series for the inbox gauges.
#[derive(Clone)]
struct Live {
    tx: mpsc::Sender<Msg>,
    metrics: ActorMetrics,
    info: ActorInfo,
}

/// What the host remembers of one `(name, key)`.
struct Slot {
    id: u64,
    generation: u64,
    live: Option<Live>,
    /// The latest generation's task, awaited by the next one before it opens the database.
    exit: Option<tokio::task::JoinHandle<()>>,
}

/// Shared state of a [`Host`].
pub struct HostInner {
    metrics: Metrics,
    config: HostConfig,
    types: HashMap<&'static str, TypeEntry>,
    actors: Mutex<HashMap<(&'static str, String), Slot>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    calls: AtomicU64,
}

impl Host {
    /// A host with the built-in `counter` type, recording into `metrics`.
    pub fn new(metrics: Metrics, config: HostConfig) -> Result<Host, HostError> {
        Self::with_types(metrics, config, vec![Arc::new(crate::counter::Counter)])
    }

    /// A host with the given actor types. Checks that the data directory is writable.
    pub fn with_types(
        metrics: Metrics,
        config: HostConfig,
        behaviours: Vec<Arc<dyn Behaviour>>,
    ) -> Result<Host, HostError> {
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
        Ok(Host {
            inner: Arc::new(HostInner {
                metrics,
                config,
                types,
                actors: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                calls: AtomicU64::new(0),
            }),
        })
    }

    /// The metrics instance this host records into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Creates the actor, or wakes it (a new generation) if it sleeps. A live
    /// actor is returned as it is. Returns once the actor has started.
    pub async fn create(&self, name: &str, key: &str) -> Result<ActorInfo, CallError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(CallError::ShuttingDown);
        }
        check_key(key)?;
        let (type_name, ty) = inner
            .types
            .get_key_value(name)
            .ok_or_else(|| CallError::UnknownType(name.to_owned()))?;
        let (info, started) = {
            let mut actors = inner.actors.lock();
            let slot = actors
                .entry((*type_name, key.to_owned()))
                .or_insert_with(|| Slot {
                    id: inner.next_id.fetch_add(1, Ordering::Relaxed),
                    generation: 0,
                    live: None,
                    exit: None,
                });
            if let Some(live) = &slot.live {
                return Ok(live.info.clone());
            }
            slot.generation += 1;
            let info = ActorInfo {
                actor_name: (*type_name).to_owned(),
                key: key.to_owned(),
                actor_id: slot.id.to_string(),
                generation: slot.generation,
            };
            let metrics = ty
                .metrics
                .register(&info.actor_id, Some(info.generation), key);
            let (tx, rx) = mpsc::channel(inner.config.inbox_capacity);
            let (started_tx, started) = oneshot::channel();
            let start = Start {
                behaviour: ty.behaviour.clone(),
                info: info.clone(),
                metrics: metrics.clone(),
                db_path: inner.db_path(type_name, &info.actor_id),
                sqlite: inner.config.sqlite.clone(),
                shutdown_timeout: inner.config.shutdown_timeout,
                inbox: rx,
                previous: slot.exit.take(),
                started: started_tx,
                host: Arc::downgrade(&self.inner),
            };
            slot.exit = Some(tokio::spawn(actor::run(start)));
            slot.live = Some(Live {
                tx,
                metrics,
                info: info.clone(),
            });
            (info, started)
        };
        match started.await {
            Ok(Ok(())) => Ok(info),
            Ok(Err(reason)) => Err(CallError::StartFailed(reason)),
            Err(_) => Err(CallError::StartFailed(
                "the actor task ended while starting".to_owned(),
            )),
        }
    }

    /// Calls `action` on the actor, waking it if it sleeps. Unknown types and
    /// actions are refused here, before anything is recorded.
    pub async fn call(&self, name: &str, key: &str, action: &str, payload: Value) -> CallResult {
        let inner = &self.inner;
        let ty = inner
            .types
            .get(name)
            .ok_or_else(|| CallError::UnknownType(name.to_owned()))?;
        let (action, recorder) = ty
            .actions
            .get_key_value(action)
            .map(|(a, r)| (*a, r.clone()))
            .ok_or_else(|| CallError::UnknownAction {
                actor_name: name.to_owned(),
                action: action.to_owned(),
            })?;
        check_key(key)?;
        let live = match inner.live(name, key)? {
            Some(live) => live,
            None => {
                self.create(name, key).await?;
                inner.live(name, key)?.ok_or_else(|| {
                    CallError::Stopped("the actor stopped right after waking".to_owned())
                })?
            }
        };
        let (reply, answer) = oneshot::channel();
        inner.calls.fetch_add(1, Ordering::Relaxed);
        send(
            &live,
            Msg::Call {
                action,
                recorder,
                payload,
                reply,
            },
        )?;
        answer
            .await
            .map_err(|_| CallError::Stopped("the actor ended without answering".to_owned()))?
    }

    /// Puts the actor to sleep: its task ends after draining user tasks, its state
    /// stays on disk, and its series are retained. The next call or create wakes it.
    pub async fn sleep(&self, name: &str, key: &str) -> Result<(), CallError> {
        let live = {
            let mut actors = self.inner.actors.lock();
            let slot = actors
                .get_mut(&self.inner.slot_key(name, key)?)
                .ok_or_else(|| not_found(name, key))?;
            slot.live.take()
        };
        match live {
            Some(live) => stop(&live, ShutdownReason::Sleep, false).await,
            None => Ok(()),
        }
    }

    /// Destroys the actor: it stops, its database is deleted and the host forgets
    /// its id (a later create gets a new id).
    pub async fn destroy(&self, name: &str, key: &str) -> Result<(), CallError> {
        let slot = self
            .inner
            .actors
            .lock()
            .remove(&self.inner.slot_key(name, key)?)
            .ok_or_else(|| not_found(name, key))?;
        match slot.live {
            Some(live) => stop(&live, ShutdownReason::Destroy, true).await,
            None => {
                // A sleeping actor: wait for its last task, then delete its files.
                if let Some(exit) = slot.exit {
                    let _ = exit.await;
                }
                let path = self.inner.db_path(name, &slot.id.to_string());
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
                Ok(())
            }
        }
    }

    /// Every live actor.
    pub fn list(&self) -> Vec<ActorInfo> {
        let mut list: Vec<ActorInfo> = self
            .inner
            .actors
            .lock()
            .values()
            .filter_map(|s| s.live.as_ref().map(|l| l.info.clone()))
            .collect();
        list.sort_by(|a, b| (&a.actor_name, &a.key).cmp(&(&b.actor_name, &b.key)));
        list
    }

    /// How many actors are live.
    pub fn live_count(&self) -> usize {
        self.inner
            .actors
            .lock()
            .values()
            .filter(|s| s.live.is_some())
            .count()
    }

    /// Action calls sent to actors since start.
    pub fn calls_total(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Stops every actor (reason `host_shutdown`, each draining its user tasks up
    /// to the shutdown timeout, all at once) and refuses new ones. Returns when
    /// every actor task has ended.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let (lives, exits): (Vec<_>, Vec<_>) = {
            let mut actors = self.inner.actors.lock();
            actors
                .values_mut()
                .map(|s| (s.live.take(), s.exit.take()))
                .unzip()
        };
        let stops = lives
            .into_iter()
            .flatten()
            .map(|live| async move { stop(&live, ShutdownReason::HostShutdown, false).await });
        futures::future::join_all(stops).await;
        for exit in exits.into_iter().flatten() {
            let _ = exit.await;
        }
    }
}

impl HostInner {
    fn db_path(&self, type_name: &str, actor_id: &str) -> PathBuf {
        self.config
            .data_dir
            .join(type_name)
            .join(format!("{actor_id}.db"))
    }

    fn slot_key(&self, name: &str, key: &str) -> Result<(&'static str, String), CallError> {
        let (type_name, _) = self
            .types
            .get_key_value(name)
            .ok_or_else(|| CallError::UnknownType(name.to_owned()))?;
        check_key(key)?;
        Ok((*type_name, key.to_owned()))
    }

    fn live(&self, name: &str, key: &str) -> Result<Option<Live>, CallError> {
        let slot_key = self.slot_key(name, key)?;
        let actors = self.actors.lock();
        let slot = actors.get(&slot_key).ok_or_else(|| not_found(name, key))?;
        Ok(slot.live.clone())
    }

    /// Called by an actor task as it ends: that generation is no longer live.
    pub(crate) fn forget_live(&self, info: &ActorInfo) {
        let Some((type_name, _)) = self.types.get_key_value(info.actor_name.as_str()) else {
            return;
        };
        let mut actors = self.actors.lock();
        if let Some(slot) = actors.get_mut(&(*type_name, info.key.clone()))
            && slot
                .live
                .as_ref()
                .is_some_and(|l| l.info.generation == info.generation)
        {
            slot.live = None;
        }
    }
}

/// Sends without waiting: a full inbox is an error the caller sees, not a stall.
fn send(live: &Live, msg: Msg) -> Result<(), CallError> {
    let inbox: Inbox = msg.inbox();
    live.metrics.inbox_depth(inbox).inc();
    live.tx.try_send(msg).map_err(|e| {
        live.metrics.inbox_depth(inbox).dec();
        match e {
            mpsc::error::TrySendError::Full(_) => CallError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => {
                CallError::Stopped("the actor is stopping".to_owned())
            }
        }
    })
}

/// Asks a live actor to stop and waits until it has.
async fn stop(live: &Live, reason: ShutdownReason, destroy: bool) -> Result<(), CallError> {
    let (reply, done) = oneshot::channel();
    live.metrics.inbox_depth(Inbox::Lifecycle).inc();
    if live
        .tx
        .send(Msg::Stop {
            reason,
            destroy,
            reply,
        })
        .await
        .is_err()
    {
        // The task already ended (it panicked); its stop is recorded.
        live.metrics.inbox_depth(Inbox::Lifecycle).dec();
        return Ok(());
    }
    // A dropped reply means the task ended another way; either way it stopped.
    let _ = done.await;
    Ok(())
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
fn check_writable(dir: &Path) -> Result<(), HostError> {
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
