//! Per-actor SQLite metrics from rusqlite hooks.
//!
//! [`instrument`] installs, on one connection, hooks that feed one actor's
//! [`ActorMetrics`](actor_metrics::ActorMetrics); [`open`] opens an actor's
//! database file in WAL mode (lean, if [`HookOptions`] asks: see
//! [Memory](#memory)), checks that it is a database, and instruments it.
//!
//! | hook | family |
//! |---|---|
//! | commit | `actor_sqlite_commits_total`, and the commit's start time |
//! | WAL | `actor_sqlite_commit_duration_seconds` (commit start until the WAL hook, that is until the transaction is in the log and synced as `synchronous` asks), `actor_sqlite_wal_pages_total`, and a passive checkpoint every [`HookOptions::checkpoint_pages`] |
//! | rollback | `actor_sqlite_rollbacks_total` |
//! | update | `actor_sqlite_rows_changed_total{op}`, counted when the transaction commits |
//! | trace_v2 profile | `actor_sqlite_statement_duration_seconds{kind}` |
//! | busy handler | `actor_sqlite_busy_total`, retrying like SQLite's own busy timeout |
//!
//! Every hook only touches cells that the actor's handle already holds: an update
//! is an atomic operation, with no label lookup, lock or allocation (an
//! enum-labelled cell, such as `op="delete"`, is allocated once, on the actor's
//! first use of that value). No hook can unwind into SQLite: each one runs its
//! body under `catch_unwind`, and a panic is logged and the event dropped, never
//! turned into a rollback or an error of the statement.
//!
//! Limits, as SQLite reports events:
//! - the update hook does not fire for `WITHOUT ROWID` tables or for the
//!   truncate optimisation (`DELETE FROM t` without `WHERE`), so those rows are not
//!   counted; rows of a transaction that rolls back are not counted, rows undone by
//!   `ROLLBACK TO` a savepoint are;
//! - the commit duration needs WAL mode (the WAL hook marks the end), which
//!   [`open`] sets; on a rollback-journal connection commits are counted but not timed;
//! - `wal_pages_total` adds the growth of the WAL between this connection's
//!   commits (the WAL hook reports the log's size, not the frames one commit wrote),
//!   which is exact for a database with one writing connection, as an actor's is;
//! - setting `PRAGMA busy_timeout` or `wal_autocheckpoint` on the connection
//!   afterwards replaces the busy handler or the WAL hook that this crate installed.
//!
//! # Memory
//!
//! A host keeps thousands of these connections open, so what one costs matters.
//! SQLite's heap per connection on a small database, measured with the
//! bundled SQLite 3.54 (`cargo run --release -p actor-core --example
//! connection_memory`): 155 KB with [`HookOptions::default`], plus the WAL
//! index's 32 KiB `-shm` mapping. Of that, 48 KB is the lookaside allocator
//! ([`HookOptions::lookaside`]) and 88 KB the page cache's bulk allocation: 20
//! page slots at the first read, before any `cache_size` applies, kept until
//! the connection closes (a compile-time option, see
//! [`bulk_page_cache_pages`]). [`HookOptions::exclusive`] moves the WAL index
//! (32 KiB, fixed by SQLite's WAL format) into the heap and drops the `-shm`
//! descriptor. Without lookaside and bulk allocation what is left is the WAL
//! index, page-sized buffers (the pager's and the B-tree's scratch space and
//! each cached page: five for a small database, hence
//! [`HookOptions::page_size`]) and ~13 KB of connection, schema and registered
//! extensions (FTS3, FTS5 and R-tree register theirs in every connection,
//! ~5 KB): 49 KB with 1 KiB pages, 61 KB with 4 KiB.
//!
//! # Layout
//!
//! | file | concept |
//! |---|---|
//! | `options.rs` | [`HookOptions`] and [`Synchronous`] |
//! | `connection.rs` | [`open`]: opening and setting a connection up; the FFI calls ([`bulk_page_cache_pages`], turning lookaside off) |
//! | `hooks.rs` | [`instrument`]: one installer per hook, the state they share, the panic guard, the busy schedule |
//! | `classify.rs` | a statement's `kind` from its first keyword |
//! | `error.rs` | [`SqliteHooksError`] |

mod classify;
mod connection;
mod error;
mod hooks;
mod options;

pub use connection::{bulk_page_cache_pages, open};
pub use error::SqliteHooksError;
pub use hooks::instrument;
pub use options::{HookOptions, Synchronous};
