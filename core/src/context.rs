//! What actor code sees: who the actor is ([`ActorInfo`]) and what it works
//! through ([`Context`]): its database, queue, connections, user tasks and state
//! mutations, each recorded in the actor's resolved series.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actor_metrics::ActorMetrics;
use actor_metrics::labels::{Inbox, MutationReason, TaskKind};
use serde::Serialize;
use serde_json::Value;

use crate::budget::{Charge, HostBudget, LimitError};
use crate::task::UserTasks;
use crate::trace::TraceContext;

/// What a queued message holds beyond its text: its slot in the queue and its
/// text's heap block.
const QUEUE_ENTRY_BYTES: usize = 48;

/// Who an actor is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorInfo {
    /// The actor type (`actor_name` label).
    pub actor_name: String,
    /// The user key.
    pub key: String,
    /// The id, stable for the key across sleep, wake and host restarts (recorded
    /// in the host's catalogue); a destroyed key gets a new id when created again.
    pub actor_id: String,
    /// Starts at 1; each wake adds one, also across host restarts (a new label set).
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

/// Bounds of an actor's queue ([`HostConfig::queue_max_messages`] and
/// [`HostConfig::queue_max_bytes`](crate::HostConfig::queue_max_bytes)).
///
/// [`HostConfig::queue_max_messages`]: crate::HostConfig::queue_max_messages
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages held.
    pub max_messages: usize,
    /// Most bytes held, counted as each message is stored: its JSON text.
    pub max_bytes: usize,
}

/// Every bound an actor's code works within.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) queue: QueueLimits,
    /// Most user tasks of this actor at once.
    pub(crate) max_tasks: usize,
    /// The host's bytes and tasks, shared by every actor.
    pub(crate) host: HostBudget,
    /// Where dropped queue messages are counted, host-wide.
    pub(crate) queue_dropped: Arc<AtomicU64>,
}

/// Why [`Context::send_queue`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue is at one of its limits; receive from it first.
    #[error("the actor's queue is full ({messages} messages, {bytes} bytes; the limits are {} messages and {} bytes); dequeue first", limits.max_messages, limits.max_bytes)]
    Full {
        /// Messages held.
        messages: usize,
        /// Bytes held.
        bytes: usize,
        /// The queue's limits.
        limits: QueueLimits,
    },
    /// The host holds as many bytes for clients as it may
    /// ([`HostConfig::max_client_bytes`](crate::HostConfig::max_client_bytes)).
    #[error(transparent)]
    Host(#[from] LimitError),
    /// The message alone is larger than the queue may hold.
    #[error(
        "a queue message of {bytes} bytes is larger than the queue's limit of {max_bytes} bytes"
    )]
    TooLarge {
        /// The message's size (its JSON text).
        bytes: usize,
        /// The queue's byte limit.
        max_bytes: usize,
    },
}

impl QueueError {
    /// The HTTP status the app API answers with: 503 for a full queue (try
    /// again after a dequeue), 413 for a message that can never fit.
    pub fn http_status(&self) -> u16 {
        match self {
            QueueError::Full { .. } => 503,
            QueueError::TooLarge { .. } => 413,
            QueueError::Host(e) => e.http_status(),
        }
    }
}

/// What actor code works through.
#[derive(Debug)]
pub struct Context {
    info: ActorInfo,
    metrics: ActorMetrics,
    db: rusqlite::Connection,
    pub(crate) tasks: UserTasks,
    /// Messages as their JSON text, each with its charge on the host's bytes.
    queue: VecDeque<(Box<str>, Charge)>,
    queue_bytes: usize,
    limits: Limits,
    connections: u32,
    /// The trace of the call running now, if its caller traced it.
    trace: Option<Box<TraceContext>>,
}

impl Context {
    pub(crate) fn new(
        info: ActorInfo,
        metrics: ActorMetrics,
        db: rusqlite::Connection,
        limits: Limits,
    ) -> Self {
        Context {
            tasks: UserTasks::new(metrics.clone(), limits.max_tasks, limits.host.clone()),
            info,
            metrics,
            db,
            queue: VecDeque::new(),
            queue_bytes: 0,
            limits,
            connections: 0,
            trace: None,
        }
    }

    /// Who this actor is.
    pub fn info(&self) -> &ActorInfo {
        &self.info
    }

    /// The trace of the action call running now, when its caller traced it
    /// ([`Host::call_traced`](crate::Host::call_traced)): to send its
    /// [`traceparent`](TraceContext::traceparent) on to a callee. `None`
    /// outside an action and in untraced calls.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_deref()
    }

    /// Sets the trace of the call about to run; returns the one it replaces.
    pub(crate) fn set_trace(
        &mut self,
        trace: Option<Box<TraceContext>>,
    ) -> Option<Box<TraceContext>> {
        std::mem::replace(&mut self.trace, trace)
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

    /// Sends a message to the actor's queue, within its [`QueueLimits`] and
    /// the host's bytes for clients.
    ///
    /// The queue lives in memory, in this generation of the actor, each
    /// message as its JSON text: a non-empty queue keeps the actor awake (it
    /// neither sleeps when idle nor is put to sleep to make room for another
    /// actor), but its messages are lost when the actor is destroyed, put to
    /// sleep on request, panics, or the host stops or restarts. Durable
    /// messages belong in the actor's database.
    ///
    /// ## Errors
    ///
    /// [`QueueError::Full`] at either limit, [`QueueError::TooLarge`] for a
    /// message that alone passes the byte limit, [`QueueError::Host`] when
    /// the host holds all the bytes it may for clients; the message is not
    /// queued.
    pub fn send_queue(&mut self, message: Value) -> Result<(), QueueError> {
        let limits = self.limits.queue;
        let text = message.to_string().into_boxed_str();
        let bytes = text.len();
        if bytes > limits.max_bytes {
            return Err(QueueError::TooLarge {
                bytes,
                max_bytes: limits.max_bytes,
            });
        }
        if self.queue.len() >= limits.max_messages || self.queue_bytes + bytes > limits.max_bytes {
            return Err(QueueError::Full {
                messages: self.queue.len(),
                bytes: self.queue_bytes,
                limits,
            });
        }
        let charge = self.limits.host.bytes.charge(bytes + QUEUE_ENTRY_BYTES)?;
        self.queue.push_back((text, charge));
        self.queue_bytes += bytes;
        self.metrics.queue_messages_sent_total().inc();
        self.queue_gauges();
        Ok(())
    }

    /// Receives the oldest message of the actor's queue, if any.
    pub fn receive_queue(&mut self) -> Option<Value> {
        let (text, _charge) = self.queue.pop_front()?;
        self.queue_bytes -= text.len();
        self.metrics.queue_messages_received_total().inc();
        self.queue_gauges();
        // Written by `send_queue` from a `Value`, so it parses back.
        Some(serde_json::from_str(&text).expect("a queued message is JSON written by send_queue"))
    }

    /// Messages in the actor's queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
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

    /// Spawns a user task of `kind`; the actor's stop waits for it (with a
    /// timeout).
    ///
    /// ## Errors
    ///
    /// [`LimitError`] when the actor runs
    /// [`HostConfig::max_tasks_per_actor`](crate::HostConfig::max_tasks_per_actor)
    /// tasks already, the host
    /// [`HostConfig::max_tasks`](crate::HostConfig::max_tasks), or the task
    /// would pass the host's bytes for clients; the task is not spawned.
    pub fn spawn_task<F>(&mut self, kind: TaskKind, work: F) -> Result<(), LimitError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(kind, work)
    }

    /// Records that this generation ends with its queue dropped; returns how
    /// many messages were lost.
    pub(crate) fn drop_queue(&mut self) -> usize {
        let dropped = self.queue.len();
        self.queue.clear();
        self.queue_bytes = 0;
        self.limits
            .queue_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        dropped
    }

    /// Whether nothing holds the actor awake: no open connection, no user task
    /// and no queued message. (An action in progress is the actor loop's own
    /// business.)
    pub fn is_idle(&self) -> bool {
        self.connections == 0 && self.tasks.is_empty() && self.queue.is_empty()
    }
}
