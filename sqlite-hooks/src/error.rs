//! [`SqliteHooksError`]: what [`open`](crate::open) and
//! [`instrument`](crate::instrument) can fail with.

use std::path::PathBuf;

/// Errors of [`open`](crate::open) and [`instrument`](crate::instrument).
#[derive(Debug, thiserror::Error)]
pub enum SqliteHooksError {
    /// The file could not be opened or created (missing directory, permissions).
    #[error("cannot open the SQLite database {}: {source}", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file exists but is not a SQLite database, or is corrupt.
    #[error("{} is not a SQLite database or is corrupt: {source}", path.display())]
    NotADatabase {
        /// The database path.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// [`HookOptions::page_size`](crate::HookOptions::page_size) is not a power
    /// of two from 512 to 65536.
    #[error("SQLite page size {0} is not a power of two from 512 to 65536")]
    PageSize(u32),
    /// Any other SQLite error while setting the connection up.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
