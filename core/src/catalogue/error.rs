//! What can go wrong with the catalogue, one variant per cause.

use std::path::PathBuf;
use std::time::Duration;

use super::{LOCK_FILE_NAME, QUARANTINE_DIR_NAME, SCHEMA_VERSION};

/// Errors of the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The data directory, the lock file or the catalogue file cannot be used.
    #[error("catalogue {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the data directory.
    #[error("catalogue {} is held by another actor-host ({holder}); gave up after {waited:?}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
        /// How long this host waited.
        waited: Duration,
    },
    /// The catalogue file is not a SQLite database or is damaged.
    #[error("catalogue {} is not a SQLite database or is corrupt ({detail}); restore it from a backup (start-up moves actor databases a restored catalogue does not list to {QUARANTINE_DIR_NAME}/ in the data dir, it never deletes them) or move the data dir away", path.display())]
    Corrupt {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The catalogue file is sound but another process holds a lock on it: an
    /// actor-host on the same data dir whose lock file was removed, or a tool.
    #[error("catalogue {} is in use by another process ({detail}); is another actor-host running on this data dir (its {LOCK_FILE_NAME} removed)? Stop it first; the catalogue itself is not damaged", path.display())]
    Busy {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The catalogue was written by a newer host.
    #[error("catalogue {} has schema version {found}; this actor-host reads version {SCHEMA_VERSION}", path.display())]
    Schema {
        /// The catalogue file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// Actor databases exist but no catalogue says whose they are.
    #[error("{count} actor database file(s) such as {} exist but there is no catalogue at {}; refusing to hand them to new keys (restore the catalogue, and start-up moves any file it does not list to {QUARANTINE_DIR_NAME}/ in the data dir, or move the files away)", example.display(), path.display())]
    Uncatalogued {
        /// The catalogue file that is missing.
        path: PathBuf,
        /// How many database files were found.
        count: usize,
        /// One of them.
        example: PathBuf,
    },
    /// A read or write of the catalogue failed.
    #[error("catalogue {}: {detail}", path.display())]
    Sqlite {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// Every id a new key could get is taken: the id sequence has reached
    /// [`MAX_FILE_ID`](super::MAX_FILE_ID). Keys that exist go on working; only creates fail.
    #[error(
        "ids exhausted: the catalogue has handed out (or reserved for files found at start-up) every actor id up to {max}, the largest kept exact in JSON; no new key can be created, existing keys still work"
    )]
    IdsExhausted {
        /// The largest id ([`MAX_FILE_ID`](super::MAX_FILE_ID)).
        max: u64,
    },
    /// The catalogue's thread has ended (the host is going away).
    #[error("the catalogue is closed")]
    Closed,
}
