//! A small but real actor host on tokio, instrumented end to end.
//!
//! Every metric of the catalogue is fed here by a real event: an actor is a tokio
//! task with an inbox; its code (a [`Behaviour`]) runs actions, sends queue
//! messages, accepts connections, spawns user tasks, mutates state and writes to
//! its own SQLite database, opened through `actor-sqlite-hooks`.
//!
//! The layout follows an actor's life:
//!
//! * [`host`]: the [`Host`], which knows every actor by `(name, key)`, creates,
//!   wakes, puts to sleep and destroys them, and shuts them all down;
//! * [`actor`]: the actor task (start phases, inbox loop, stop) and the
//!   [`Context`] actor code works through;
//! * [`action`]: action calls and their errors;
//! * [`task`]: user tasks with a kind, tracked for the shutdown drain;
//! * [`shutdown`]: draining user tasks with a timeout, recording why and how long;
//! * [`counter`]: the built-in `counter` actor type;
//! * [`app`]: the JSON app API; [`workload`]: the demo workload.
//!
//! Why stop is explicit: an actor's end is recorded with
//! [`ActorMetrics::stopped`](actor_metrics::ActorMetrics::stopped) at a known
//! point of the task's exit (also after a panic), never left to `Drop` of the
//! last handle. The host's tables hold actors weakly where a callback would
//! otherwise keep one alive, so a forgotten clone cannot leave a gauge stuck.

#![deny(missing_docs)]

pub mod action;
pub mod actor;
pub mod app;
pub mod counter;
pub mod host;
pub mod shutdown;
pub mod task;
pub mod workload;

use std::path::PathBuf;
use std::time::Duration;

pub use action::{ActionError, CallError};
pub use actor::{Behaviour, Context};
pub use host::{ActorInfo, Host, HostError};

/// Default time an actor's stop waits for its user tasks: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of an actor's inbox: 1024 messages.
pub const DEFAULT_INBOX_CAPACITY: usize = 1024;
/// Longest actor key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// How a [`Host`] behaves. Every field has a documented default except the data
/// directory, which the binary makes a fresh temp dir when not given.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where each actor's SQLite database lives (`{data_dir}/{actor_name}/{actor_id}.db`).
    pub data_dir: PathBuf,
    /// How long stopping an actor waits for its user tasks before aborting them. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Capacity of each actor's inbox. Default 1024.
    pub inbox_capacity: usize,
    /// SQLite options (checkpoint threshold, busy timeout, `synchronous`).
    /// Default: the crate's defaults with `synchronous = NORMAL`, SQLite's
    /// recommendation for WAL databases: a commit survives a crash of the
    /// process; only a power cut can lose the last commits. Actions run on the
    /// runtime's threads, so a sync per commit would stall them.
    pub sqlite: actor_sqlite_hooks::HookOptions,
}

impl HostConfig {
    /// Defaults with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            inbox_capacity: DEFAULT_INBOX_CAPACITY,
            sqlite: actor_sqlite_hooks::HookOptions {
                synchronous: actor_sqlite_hooks::Synchronous::Normal,
                ..actor_sqlite_hooks::HookOptions::default()
            },
        }
    }
}
