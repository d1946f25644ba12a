//! [`HookOptions`]: how [`open`](crate::open) sets a connection up and how its
//! hooks behave.

use std::time::Duration;

use crate::error::SqliteHooksError;

/// How [`open`](crate::open) sets a connection up and how its hooks behave.
/// `Default` gives SQLite's own defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOptions {
    /// Pages in the WAL at which the WAL hook runs a passive checkpoint (as
    /// SQLite's automatic checkpoint does, which installing a WAL hook turns
    /// off). Default 1000 pages (about 4 MiB with 4 KiB pages); 0 never
    /// checkpoints.
    pub checkpoint_pages: u32,
    /// How long a statement waits on a lock held by another connection before
    /// it fails with `SQLITE_BUSY`. Default 5 s, as rusqlite's default.
    pub busy_timeout: Duration,
    /// The `synchronous` setting [`open`](crate::open) applies. Default
    /// [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// `PRAGMA locking_mode = EXCLUSIVE`, set by [`open`](crate::open) before the first
    /// access: in WAL mode SQLite then keeps the WAL index in the heap and never
    /// creates the `-shm` file or its shared mapping (one descriptor less per
    /// connection), and no other connection or process can open the database
    /// while this one is open. Default `false`.
    pub exclusive: bool,
    /// Bound of the page cache, in KiB (`PRAGMA cache_size = -N`). Default
    /// `None`: SQLite's (2000 KiB).
    pub cache_kib: Option<u32>,
    /// Page size of a database that [`open`](crate::open) creates (`PRAGMA page_size`, set
    /// before the first write); an existing database keeps its own. A power of
    /// two from 512 to 65536. Default `None`: SQLite's (4096). Each cached page
    /// and two scratch buffers per connection are one page each, so small
    /// databases cost less memory with small pages; large ones need more pages
    /// (deeper B-trees, more WAL frames per commit).
    pub page_size: Option<u32>,
    /// SQLite's lookaside allocator: slots for small allocations that each
    /// connection takes at open (48 KB in this build). Turning it off costs a
    /// little speed on statement preparation. Default `true` (SQLite's).
    pub lookaside: bool,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            checkpoint_pages: 1000,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            exclusive: false,
            cache_kib: None,
            page_size: None,
            lookaside: true,
        }
    }
}

impl HookOptions {
    /// Checks the options [`open`](crate::open) would refuse.
    ///
    /// ## Errors
    ///
    /// [`SqliteHooksError::PageSize`] for a page size SQLite would silently ignore.
    pub fn check(&self) -> Result<(), SqliteHooksError> {
        match self.page_size {
            Some(size) if !(size.is_power_of_two() && (512..=65536).contains(&size)) => {
                Err(SqliteHooksError::PageSize(size))
            }
            _ => Ok(()),
        }
    }
}

/// SQLite's `PRAGMA synchronous`, as far as a WAL database needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// The WAL is synced at checkpoints only: a commit survives a crash of the
    /// process, not always a power cut.
    Normal,
    /// The WAL is synced at every commit (SQLite's default).
    #[default]
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}
