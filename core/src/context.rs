//! What actor code sees: who the actor is ([`ActorInfo`]) and what it works
//! through ([`Context`]): its database, queue, connections, user tasks and state
//! mutations, each recorded in the actor's resolved series.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;

use actor_metrics::ActorMetrics;
use actor_metrics::labels::{Inbox, MutationReason, TaskKind};
use serde::Serialize;
use serde_json::Value;

use crate::task::UserTasks;

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
    /// Most bytes held, counted as the length of each message's JSON text.
    pub max_bytes: usize,
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
    /// Messages with the length of their JSON text.
    queue: VecDeque<(Value, usize)>,
    queue_bytes: usize,
    queue_limits: QueueLimits,
    connections: u32,
}

impl Context {
    pub(crate) fn new(
        info: ActorInfo,
        metrics: ActorMetrics,
        db: rusqlite::Connection,
        queue_limits: QueueLimits,
    ) -> Self {
        Context {
            tasks: UserTasks::new(metrics.clone()),
            info,
            metrics,
            db,
            queue: VecDeque::new(),
            queue_bytes: 0,
            queue_limits,
            connections: 0,
        }
    }

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

    /// Sends a message to the actor's queue, within its [`QueueLimits`].
    ///
    /// The queue lives in memory, in this generation of the actor: a
    /// non-empty queue keeps the actor awake (it neither sleeps when idle nor
    /// is put to sleep to make room for another actor), but its messages are
    /// lost when the actor is destroyed, put to sleep on request, panics, or
    /// the host stops or restarts. Durable messages belong in the actor's
    /// database.
    ///
    /// ## Errors
    ///
    /// [`QueueError::Full`] at either limit, [`QueueError::TooLarge`] for a
    /// message that alone passes the byte limit; the message is not queued.
    pub fn send_queue(&mut self, message: Value) -> Result<(), QueueError> {
        let limits = self.queue_limits;
        let bytes = json_len(&message);
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
        self.queue.push_back((message, bytes));
        self.queue_bytes += bytes;
        self.metrics.queue_messages_sent_total().inc();
        self.queue_gauges();
        Ok(())
    }

    /// Receives the oldest message of the actor's queue, if any.
    pub fn receive_queue(&mut self) -> Option<Value> {
        let (message, bytes) = self.queue.pop_front()?;
        self.queue_bytes -= bytes;
        self.metrics.queue_messages_received_total().inc();
        self.queue_gauges();
        Some(message)
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

    /// Spawns a user task of `kind`; the actor's stop waits for it (with a timeout).
    pub fn spawn_task<F>(&mut self, kind: TaskKind, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(kind, work);
    }

    /// Whether nothing holds the actor awake: no open connection, no user task
    /// and no queued message. (An action in progress is the actor loop's own
    /// business.)
    pub fn is_idle(&self) -> bool {
        self.connections == 0 && self.tasks.is_empty() && self.queue.is_empty()
    }
}

/// The length of `value`'s JSON text, without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
