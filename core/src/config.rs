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

/// How a [`Host`](crate::Host) behaves: every setting has a setter that
/// documents its default and its bounds and refuses what is out of them, so a
/// `HostConfig` that exists is valid. Only the data directory has no default
/// (the binary makes a fresh temp dir when none is given).
///
/// ```
/// # use std::time::Duration;
/// let config = actor_core::HostConfig::new("/var/lib/actors")
///     .max_live_actors(500)?
///     .idle_timeout(Some(Duration::from_secs(60)))?
///     .shutdown_timeout(Duration::from_secs(2));
/// # Ok::<(), actor_core::config::HostConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) inbox_capacity: usize,
    pub(crate) inbox_max_bytes: usize,
    pub(crate) max_client_bytes: usize,
    pub(crate) max_tasks_per_actor: usize,
    pub(crate) max_tasks: usize,
    pub(crate) queue_max_messages: usize,
    pub(crate) queue_max_bytes: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_live_actors: usize,
    pub(crate) data_dir_lock_timeout: Duration,
    pub(crate) start_retry_after: Duration,
    pub(crate) sqlite: actor_sqlite_hooks::HookOptions,
}

/// A [`HostConfig`] setter refused its value: one variant per cause.
#[derive(Debug, thiserror::Error)]
pub enum HostConfigError {
    /// A bound of 0: nothing could ever be accepted.
    #[error("{setting} must be at least 1")]
    Zero {
        /// The setter.
        setting: &'static str,
    },
    /// An idle timeout under [`MIN_IDLE_TIMEOUT`].
    #[error(
        "idle_timeout {given:?} is shorter than the minimum {MIN_IDLE_TIMEOUT:?} (None turns idle sleep off)"
    )]
    IdleTimeoutTooShort {
        /// The timeout given.
        given: Duration,
    },
    /// SQLite options that cannot be applied (a bad page size).
    #[error("actor database options: {0}")]
    Sqlite(#[source] actor_sqlite_hooks::SqliteHooksError),
}

/// `value` if it is at least 1.
fn at_least_one(setting: &'static str, value: usize) -> Result<usize, HostConfigError> {
    if value == 0 {
        return Err(HostConfigError::Zero { setting });
    }
    Ok(value)
}

impl HostConfig {
    /// Defaults with the given data directory: where the catalogue
    /// (`{data_dir}/catalogue.db`) and each actor's SQLite database
    /// (`{data_dir}/{actor_name}/{actor_id}.db`) live.
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

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// How long stopping an actor waits for its user tasks before aborting
    /// them; at a host shutdown, also how long an action in flight may still
    /// run. Default [`DEFAULT_SHUTDOWN_TIMEOUT`] (5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Most calls waiting in one actor's inbox; past it a call is refused
    /// (503). Default [`DEFAULT_INBOX_CAPACITY`] (1,024).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn inbox_capacity(mut self, calls: usize) -> Result<Self, HostConfigError> {
        self.inbox_capacity = at_least_one("inbox_capacity", calls)?;
        Ok(self)
    }

    /// Most bytes the calls waiting in one actor's inbox may hold; a call past
    /// it is refused (503, or 413 for a call that alone passes it). A call is
    /// counted for what its payload takes in memory: its JSON text, or the
    /// parsed value it becomes when it runs, whichever is larger (`[0,0,…]`
    /// takes 16 times its text). Default [`DEFAULT_INBOX_MAX_BYTES`] (32 MiB).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn inbox_max_bytes(mut self, bytes: usize) -> Result<Self, HostConfigError> {
        self.inbox_max_bytes = at_least_one("inbox_max_bytes", bytes)?;
        Ok(self)
    }

    /// Most bytes the whole host holds for clients: request bodies being read,
    /// call payloads from the moment they wait in an inbox until their action
    /// returns, queued messages, user tasks. Past it, new items are refused
    /// (503); nothing already accepted is dropped. Default
    /// [`DEFAULT_MAX_CLIENT_BYTES`] (256 MiB).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn max_client_bytes(mut self, bytes: usize) -> Result<Self, HostConfigError> {
        self.max_client_bytes = at_least_one("max_client_bytes", bytes)?;
        Ok(self)
    }

    /// Most user tasks one actor runs at once; a spawn past it is refused
    /// (429). Default [`DEFAULT_MAX_TASKS_PER_ACTOR`] (1,024).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn max_tasks_per_actor(mut self, tasks: usize) -> Result<Self, HostConfigError> {
        self.max_tasks_per_actor = at_least_one("max_tasks_per_actor", tasks)?;
        Ok(self)
    }

    /// Most user tasks the whole host runs at once; a spawn past it is
    /// refused (429). Default [`DEFAULT_MAX_TASKS`] (65,536).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn max_tasks(mut self, tasks: usize) -> Result<Self, HostConfigError> {
        self.max_tasks = at_least_one("max_tasks", tasks)?;
        Ok(self)
    }

    /// Most messages an actor's queue holds; a send past it is refused
    /// ([`QueueError::Full`](crate::context::QueueError::Full), 503). The queue
    /// is in memory: see [`Context::send_queue`](crate::Context::send_queue).
    /// Default [`DEFAULT_QUEUE_MAX_MESSAGES`] (1,024).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn queue_max_messages(mut self, messages: usize) -> Result<Self, HostConfigError> {
        self.queue_max_messages = at_least_one("queue_max_messages", messages)?;
        Ok(self)
    }

    /// Most bytes an actor's queue holds, counted as the messages are stored:
    /// their JSON text. Queued messages also count in
    /// [`HostConfig::max_client_bytes`], which bounds all queues together.
    /// Default [`DEFAULT_QUEUE_MAX_BYTES`] (1 MiB).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn queue_max_bytes(mut self, bytes: usize) -> Result<Self, HostConfigError> {
        self.queue_max_bytes = at_least_one("queue_max_bytes", bytes)?;
        Ok(self)
    }

    /// An actor with no call, open connection, queued message or running user
    /// task for this long goes to sleep (its database closes, its series are
    /// retained; the next call wakes it). `None`: never. Default
    /// [`DEFAULT_IDLE_TIMEOUT`] (5 minutes).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::IdleTimeoutTooShort`] under [`MIN_IDLE_TIMEOUT`]
    /// (100 ms): each wake is a new generation and label set.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Result<Self, HostConfigError> {
        if let Some(given) = timeout.filter(|t| *t < MIN_IDLE_TIMEOUT) {
            return Err(HostConfigError::IdleTimeoutTooShort { given });
        }
        self.idle_timeout = timeout;
        Ok(self)
    }

    /// Most actors live at once. Waking one more puts the least recently used
    /// idle actor to sleep; if every live actor is busy the wake is refused
    /// (503). Default [`DEFAULT_MAX_LIVE_ACTORS`] (10,000; each live actor
    /// holds two file descriptors).
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Zero`] for 0.
    pub fn max_live_actors(mut self, actors: usize) -> Result<Self, HostConfigError> {
        self.max_live_actors = at_least_one("max_live_actors", actors)?;
        Ok(self)
    }

    /// How long building the host waits for another process to release the
    /// data directory. Default [`DEFAULT_DATA_DIR_LOCK_TIMEOUT`] (30 s).
    pub fn data_dir_lock_timeout(mut self, timeout: Duration) -> Self {
        self.data_dir_lock_timeout = timeout;
        self
    }

    /// After an actor failed to start (a damaged database, say), calls to it
    /// are answered with that failure for this long without another start: a
    /// client retrying a broken actor costs no catalogue write, no generation
    /// and no label set per call. Zero: every call tries again. Default
    /// [`DEFAULT_START_RETRY_AFTER`] (1 s).
    pub fn start_retry_after(mut self, window: Duration) -> Self {
        self.start_retry_after = window;
        self
    }

    /// How actor databases are opened: WAL checkpoint threshold, busy timeout,
    /// `synchronous`, locking mode, page cache bound, page size of new
    /// databases, lookaside. Default [`database::options`]: lean connections
    /// (about 50 KB each for a small database) with `synchronous = NORMAL`, so
    /// a commit survives a crash of the process.
    ///
    /// ## Errors
    ///
    /// [`HostConfigError::Sqlite`] for options SQLite cannot apply.
    pub fn sqlite(
        mut self,
        options: actor_sqlite_hooks::HookOptions,
    ) -> Result<Self, HostConfigError> {
        options.check().map_err(HostConfigError::Sqlite)?;
        self.sqlite = options;
        Ok(self)
    }

    /// The SQLite options, to change one and give them back with
    /// [`HostConfig::sqlite`].
    pub fn sqlite_options(&self) -> &actor_sqlite_hooks::HookOptions {
        &self.sqlite
    }
}
