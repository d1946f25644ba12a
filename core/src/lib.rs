//! A small but real actor host on tokio, instrumented end to end.
//!
//! Every metric of the catalogue is fed here by a real event: an actor is a tokio
//! task with an inbox; its code (a [`Behaviour`], registered with the host by
//! whoever builds it) runs actions, sends queue messages, accepts connections,
//! spawns user tasks, mutates state and writes to its own SQLite database,
//! instrumented through `actor-sqlite-hooks`.
//!
//! The layout follows an actor's life, one concept per file, no import cycle
//! (the host knows the actor task; the task knows neither the host nor any
//! actor type):
//!
//! * [`behaviour`]: the [`Behaviour`] trait, what an actor type is;
//! * [`context`]: who an actor is ([`ActorInfo`]) and what its code works
//!   through ([`Context`]);
//! * [`host`]: the [`Host`] and its builder: every actor by `(name, key)`;
//!   wake, sleep, destroy, shutdown; the bound on live actors;
//! * [`catalogue`]: the durable record of each key's stable id and generation;
//! * [`database`]: an actor's SQLite files, opened lean;
//! * [`actor`]: the actor task (start phases, inbox loop, idle timer, stop),
//!   which reports its end through a callback;
//! * [`lru`]: live actors in order of last use;
//! * [`action`]: action calls and their errors;
//! * [`task`]: user tasks with a kind, tracked for the shutdown drain;
//! * [`shutdown`]: draining user tasks with a timeout, recording why and how long;
//! * [`health`]: liveness checks for `/healthz` (a task that must not end,
//!   the host runtime's heartbeat);
//! * [`counter`]: the `counter` actor type the binary registers;
//! * [`app`]: the JSON app API; [`workload`]: the demo workload.
//!
//! Why stop is explicit: an actor's end is recorded with
//! [`ActorMetrics::stopped`](actor_metrics::ActorMetrics::stopped) at a known
//! point of the task's exit (also after a panic), never left to `Drop` of the
//! last handle. Actor tasks hold the host only weakly (in their exit callback),
//! so a forgotten clone cannot leave a gauge stuck.

#![deny(missing_docs)]

pub mod action;
mod actor;
pub mod app;
pub mod behaviour;
pub mod catalogue;
pub mod context;
pub mod counter;
pub mod database;
pub mod health;
pub mod host;
mod lru;
pub mod shutdown;
pub mod task;
pub mod workload;

use std::path::PathBuf;
use std::time::Duration;

pub use action::{ActionError, CallError};
pub use behaviour::{Behaviour, BoxFuture};
pub use catalogue::CatalogueError;
pub use context::{ActorInfo, Context};
pub use host::{Host, HostBuilder, HostError};

/// Default time an actor's stop waits for its user tasks: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of an actor's inbox: 1024 messages.
pub const DEFAULT_INBOX_CAPACITY: usize = 1024;
/// Default time after which an actor with no call, connection or user task
/// sleeps: 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on live actors: 10,000 (each holds two file descriptors, its
/// database and its WAL; the binary lowers it to fit the open-file limit).
pub const DEFAULT_MAX_LIVE_ACTORS: usize = 10_000;
/// Default wait for another host to release the data directory: 30 seconds.
pub const DEFAULT_DATA_DIR_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest actor key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// How a [`Host`] behaves. Every field has a documented default except the data
/// directory, which the binary makes a fresh temp dir when not given.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where the catalogue (`{data_dir}/catalogue.db`) and each actor's SQLite
    /// database (`{data_dir}/{actor_name}/{actor_id}.db`) live.
    pub data_dir: PathBuf,
    /// How long stopping an actor waits for its user tasks before aborting them. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Capacity of each actor's inbox. Default 1024.
    pub inbox_capacity: usize,
    /// An actor with no call, open connection or running user task for this long
    /// goes to sleep (its database closes, its series are retained; the next call
    /// wakes it). `None`: never. Default [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// Most actors live at once. Waking one more puts the least recently used
    /// idle actor to sleep; if every live actor is busy the wake is refused (503).
    /// Default [`DEFAULT_MAX_LIVE_ACTORS`].
    pub max_live_actors: usize,
    /// How long building the host waits for another process to release the data
    /// directory. Default [`DEFAULT_DATA_DIR_LOCK_TIMEOUT`].
    pub data_dir_lock_timeout: Duration,
    /// How actor databases are opened: WAL checkpoint threshold, busy timeout,
    /// `synchronous`, locking mode, page cache bound, page size of new
    /// databases, lookaside. Default [`database::options`]: lean connections
    /// (about 50 KB each for a small database) with `synchronous = NORMAL`, so
    /// a commit survives a crash of the process.
    pub sqlite: actor_sqlite_hooks::HookOptions,
}

impl HostConfig {
    /// Defaults with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            inbox_capacity: DEFAULT_INBOX_CAPACITY,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_live_actors: DEFAULT_MAX_LIVE_ACTORS,
            data_dir_lock_timeout: DEFAULT_DATA_DIR_LOCK_TIMEOUT,
            sqlite: database::options(),
        }
    }
}
