//! How a [`Host`](crate::Host) behaves: [`HostConfig`] and its documented
//! defaults. The binary builds it from its flags; the host only reads it.

use std::path::PathBuf;
use std::time::Duration;

use crate::database;

/// Default time an actor's stop waits for its user tasks: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of an actor's inbox: 1024 messages.
pub const DEFAULT_INBOX_CAPACITY: usize = 1024;
/// Default bound of an actor's queue ([`Context::send_queue`](crate::Context::send_queue)):
/// 1024 messages.
pub const DEFAULT_QUEUE_MAX_MESSAGES: usize = 1024;
/// Default bound of an actor's queue in bytes of the messages' JSON text, as
/// stored: 1 MiB.
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 1 << 20;
/// Default bound of the calls waiting in one actor's inbox, in bytes of their
/// payloads as held (see [`HostConfig::inbox_max_bytes`]): 32 MiB, so that one
/// call with the largest body the app API takes (1 MiB of `[0,0,…]`, about
/// 17 MB once parsed) still fits.
pub const DEFAULT_INBOX_MAX_BYTES: usize = 32 << 20;
/// Default bound of everything clients put in the host's memory, in bytes:
/// 256 MiB.
pub const DEFAULT_MAX_CLIENT_BYTES: usize = 256 << 20;
/// Default bound of one actor's user tasks: 1,024.
pub const DEFAULT_MAX_TASKS_PER_ACTOR: usize = 1024;
/// Default bound of the host's user tasks: 65,536.
pub const DEFAULT_MAX_TASKS: usize = 65_536;
/// Default time after which an actor with no call, connection or user task
/// sleeps: 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Shortest idle timeout accepted: 100 ms. Each wake is a new generation (a
/// durable catalogue write and a new label set, retained for the retention
/// window), so an actor that sleeps between every two calls makes series in
/// proportion to its calls, not to the actors; below this, that is all an
/// idle timeout does.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(100);
/// Default bound on live actors: 10,000 (each holds two file descriptors, its
/// database and its WAL; the binary lowers it to fit the open-file limit).
pub const DEFAULT_MAX_LIVE_ACTORS: usize = 10_000;
/// Default wait for another host to release the data directory: 30 seconds.
pub const DEFAULT_DATA_DIR_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time after an actor failed to start during which calls to it get
/// the same error without a new start: 1 second.
pub const DEFAULT_START_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest actor key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// How a [`Host`](crate::Host) behaves. Every field has a documented default except the data
/// directory, which the binary makes a fresh temp dir when not given.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where the catalogue (`{data_dir}/catalogue.db`) and each actor's SQLite
    /// database (`{data_dir}/{actor_name}/{actor_id}.db`) live.
    pub data_dir: PathBuf,
    /// How long stopping an actor waits for its user tasks before aborting them. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Capacity of each actor's inbox, in calls. Default 1024.
    pub inbox_capacity: usize,
    /// Most bytes the calls waiting in one actor's inbox may hold; a call past
    /// it is refused (503, or 413 for a call that alone passes it). A call is
    /// counted for what its payload takes in memory: its JSON text, or the
    /// parsed value it becomes when it runs, whichever is larger (`[0,0,…]`
    /// takes 16 times its text). Default [`DEFAULT_INBOX_MAX_BYTES`].
    pub inbox_max_bytes: usize,
    /// Most bytes the whole host holds for clients: request bodies being read,
    /// call payloads from the moment they wait in an inbox until their action
    /// returns, queued messages, user tasks. Past it, new items are refused
    /// (503); nothing already accepted is dropped. Default
    /// [`DEFAULT_MAX_CLIENT_BYTES`].
    pub max_client_bytes: usize,
    /// Most user tasks one actor runs at once; a spawn past it is refused
    /// (429). Default [`DEFAULT_MAX_TASKS_PER_ACTOR`].
    pub max_tasks_per_actor: usize,
    /// Most user tasks the whole host runs at once; a spawn past it is
    /// refused (429). Default [`DEFAULT_MAX_TASKS`].
    pub max_tasks: usize,
    /// Most messages an actor's queue holds; a send past it is refused
    /// ([`QueueError::Full`](crate::context::QueueError::Full), 503). The queue
    /// is in memory: see [`Context::send_queue`](crate::Context::send_queue).
    /// Default [`DEFAULT_QUEUE_MAX_MESSAGES`].
    pub queue_max_messages: usize,
    /// Most bytes an actor's queue holds, counted as the messages are stored:
    /// their JSON text. Default [`DEFAULT_QUEUE_MAX_BYTES`]. Queued messages
    /// also count in [`HostConfig::max_client_bytes`], which bounds all queues
    /// together.
    pub queue_max_bytes: usize,
    /// An actor with no call, open connection, queued message or running user task for this long
    /// goes to sleep (its database closes, its series are retained; the next call
    /// wakes it). `None`: never. At least [`MIN_IDLE_TIMEOUT`]. Default
    /// [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Option<Duration>,
    /// Most actors live at once. Waking one more puts the least recently used
    /// idle actor to sleep; if every live actor is busy the wake is refused (503).
    /// Default [`DEFAULT_MAX_LIVE_ACTORS`].
    pub max_live_actors: usize,
    /// How long building the host waits for another process to release the data
    /// directory. Default [`DEFAULT_DATA_DIR_LOCK_TIMEOUT`].
    pub data_dir_lock_timeout: Duration,
    /// After an actor failed to start (a damaged database, say), calls to it
    /// are answered with that failure for this long without another start: a
    /// client retrying a broken actor costs no catalogue write, no generation
    /// and no label set per call. Zero: every call tries again. Default
    /// [`DEFAULT_START_RETRY_AFTER`].
    pub start_retry_after: Duration,
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
            inbox_max_bytes: DEFAULT_INBOX_MAX_BYTES,
            max_client_bytes: DEFAULT_MAX_CLIENT_BYTES,
            max_tasks_per_actor: DEFAULT_MAX_TASKS_PER_ACTOR,
            max_tasks: DEFAULT_MAX_TASKS,
            queue_max_messages: DEFAULT_QUEUE_MAX_MESSAGES,
            queue_max_bytes: DEFAULT_QUEUE_MAX_BYTES,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_live_actors: DEFAULT_MAX_LIVE_ACTORS,
            data_dir_lock_timeout: DEFAULT_DATA_DIR_LOCK_TIMEOUT,
            start_retry_after: DEFAULT_START_RETRY_AFTER,
            sqlite: database::options(),
        }
    }
}
