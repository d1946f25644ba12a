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

/// What actor code works through.
#[derive(Debug)]
pub struct Context {
    info: ActorInfo,
    metrics: ActorMetrics,
    db: rusqlite::Connection,
    pub(crate) tasks: UserTasks,
    queue: VecDeque<Value>,
    connections: u32,
}

impl Context {
    pub(crate) fn new(info: ActorInfo, metrics: ActorMetrics, db: rusqlite::Connection) -> Self {
        Context {
            tasks: UserTasks::new(metrics.clone()),
            info,
            metrics,
            db,
            queue: VecDeque::new(),
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

    /// Whether nothing holds the actor awake: no open connection and no user task.
    /// (An action in progress is the actor loop's own business.)
    pub fn is_idle(&self) -> bool {
        self.connections == 0 && self.tasks.is_empty()
    }
}
