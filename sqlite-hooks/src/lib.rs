//! Per-actor SQLite metrics from rusqlite hooks.
//!
//! [`instrument`] installs, on one connection, hooks that feed one actor's
//! [`ActorMetrics`]; [`open`] opens an actor's database file in WAL mode (lean,
//! if [`HookOptions`] asks: see [Memory](#memory)), checks that it is a
//! database, and instruments it.
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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use actor_metrics::ActorMetrics;
use actor_metrics::labels::{LabelEnum, SqliteOp, StatementKind};
use rusqlite::hooks::Action;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode};

/// How [`open`] sets a connection up and how its hooks behave. `Default` gives
/// SQLite's own defaults.
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
    /// The `synchronous` setting [`open`] applies. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// `PRAGMA locking_mode = EXCLUSIVE`, set by [`open`] before the first
    /// access: in WAL mode SQLite then keeps the WAL index in the heap and never
    /// creates the `-shm` file or its shared mapping (one descriptor less per
    /// connection), and no other connection or process can open the database
    /// while this one is open. Default `false`.
    pub exclusive: bool,
    /// Bound of the page cache, in KiB (`PRAGMA cache_size = -N`). Default
    /// `None`: SQLite's (2000 KiB).
    pub cache_kib: Option<u32>,
    /// Page size of a database that [`open`] creates (`PRAGMA page_size`, set
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
    /// Checks the options [`open`] would refuse.
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
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Errors of [`open`] and [`instrument`].
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
    /// [`HookOptions::page_size`] is not a power of two from 512 to 65536.
    #[error("SQLite page size {0} is not a power of two from 512 to 65536")]
    PageSize(u32),
    /// Any other SQLite error while setting the connection up.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Opens (creating if needed) the database at `path` in WAL mode, set up as
/// `options` say (lookaside, locking mode, page size of a new database, busy
/// timeout, cache bound, `synchronous`), checks that it is a readable SQLite
/// database, and instruments it for `metrics`.
///
/// ## Errors
///
/// [`SqliteHooksError::PageSize`] for a bad page size (nothing is opened);
/// [`SqliteHooksError::NotADatabase`] for a file that is not a database or is
/// corrupt; [`SqliteHooksError::Open`] for any other failure to open or set up.
pub fn open(
    path: impl AsRef<Path>,
    metrics: ActorMetrics,
    options: &HookOptions,
) -> Result<Connection, SqliteHooksError> {
    options.check()?;
    let path = path.as_ref();
    let classify = |source: rusqlite::Error| {
        if matches!(
            source.sqlite_error_code(),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        ) {
            SqliteHooksError::NotADatabase {
                path: path.to_owned(),
                source,
            }
        } else {
            SqliteHooksError::Open {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut conn = Connection::open(path).map_err(classify)?;
    // Order matters: lookaside goes before anything uses it; locking mode and
    // page size before the first access (journal_mode is the first read).
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        if !options.lookaside {
            no_lookaside(conn)?;
        }
        if options.exclusive {
            conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| {
                r.get::<_, String>(0)
            })?;
        }
        if let Some(size) = options.page_size {
            conn.pragma_update(None, "page_size", size)?;
        }
        conn.busy_timeout(options.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite kept a non-WAL journal mode; commits will not be timed");
        }
        if let Some(kib) = options.cache_kib {
            conn.pragma_update(None, "cache_size", -i64::from(kib))?;
        }
        conn.pragma_update(None, "synchronous", options.synchronous.pragma())?;
        // Reading the schema is what fails on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    };
    setup(&conn).map_err(classify)?;
    instrument(&mut conn, metrics, options)?;
    Ok(conn)
}

/// Turns off the connection's lookaside allocator (see [`HookOptions::lookaside`]).
fn no_lookaside(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: `handle` is the live connection's pointer, used only for this call
    // while `conn` is borrowed; SQLITE_DBCONFIG_LOOKASIDE takes (void*, int, int)
    // and a null buffer with size 0 and count 0 means "no lookaside". It is
    // called right after open, before any lookaside memory is in use.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            Some("turning off lookaside".to_owned()),
        ))
    }
}

/// Pages the page cache of every connection allocates in one block at its
/// first read, as the linked SQLite was compiled (`SQLITE_DEFAULT_PCACHE_INITSZ`;
/// SQLite's default is 20). The block is sized before `PRAGMA cache_size`
/// can apply and is kept until the connection closes; 0 means pages are
/// allocated one by one as the cache fills. This workspace builds the bundled
/// SQLite with 0 (`.cargo/config.toml`).
pub fn bulk_page_cache_pages() -> u32 {
    const NAME: &str = "DEFAULT_PCACHE_INITSZ=";
    (0..)
        .map_while(|i| {
            // SAFETY: sqlite3_compileoption_get takes any index and returns a
            // pointer to a static NUL-terminated string, or null past the end.
            let p = unsafe { rusqlite::ffi::sqlite3_compileoption_get(i) };
            // SAFETY: non-null pointers from it are static C strings.
            (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) })
        })
        .find_map(|option| option.to_str().ok()?.strip_prefix(NAME)?.parse().ok())
        .unwrap_or(20)
}

/// Installs the hooks on `conn`, feeding `metrics`. Replaces any commit,
/// rollback, update, WAL, trace and busy callbacks the connection had.
/// The hooks hold `metrics` until the connection closes.
pub fn instrument(
    conn: &mut Connection,
    metrics: ActorMetrics,
    options: &HookOptions,
) -> Result<(), SqliteHooksError> {
    let state = std::sync::Arc::new(State {
        metrics,
        epoch: Instant::now(),
        commit_started: AtomicU64::new(0),
        pending_rows: Default::default(),
        wal_pages: AtomicU64::new(0),
        panicked: AtomicBool::new(false),
    });

    let s = state.clone();
    conn.commit_hook(Some(move || {
        s.guard("commit", || {
            s.commit_started.store(s.since_epoch(), Relaxed);
            s.metrics.sqlite_commits_total().inc();
            for (op, pending) in SqliteOp::ALL.iter().zip(&s.pending_rows) {
                let n = pending.swap(0, Relaxed);
                if n > 0 {
                    s.metrics.sqlite_rows_changed_total(*op).inc_by(n);
                }
            }
        });
        // Continue with the commit: instrumenting never turns it into a rollback.
        false
    }))?;

    let s = state.clone();
    conn.rollback_hook(Some(move || {
        s.guard("rollback", || {
            s.metrics.sqlite_rollbacks_total().inc();
            for pending in &s.pending_rows {
                pending.store(0, Relaxed);
            }
        });
    }))?;

    let s = state.clone();
    conn.update_hook(Some(move |action: Action, _: &str, _: &str, _: i64| {
        s.guard("update", || {
            let op = match action {
                Action::SQLITE_INSERT => SqliteOp::Insert,
                Action::SQLITE_UPDATE => SqliteOp::Update,
                Action::SQLITE_DELETE => SqliteOp::Delete,
                _ => return,
            };
            s.pending_rows[op.index()].fetch_add(1, Relaxed);
        });
    }))?;

    let s = state.clone();
    let checkpoint_pages = u64::from(options.checkpoint_pages);
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
        let pages = u64::try_from(pages).unwrap_or(0);
        s.guard("wal", || {
            let started = s.commit_started.swap(0, Relaxed);
            if started != 0 {
                let took = s.since_epoch().saturating_sub(started);
                s.metrics
                    .sqlite_commit_duration_seconds()
                    .observe_duration(Duration::from_nanos(took));
            }
            let last = s.wal_pages.swap(pages, Relaxed);
            // The WAL restarts from its start after a complete checkpoint.
            let grew = if pages >= last { pages - last } else { pages };
            s.metrics.sqlite_wal_pages_total().inc_by(grew);
        });
        if checkpoint_pages > 0 && pages >= checkpoint_pages {
            // Passive: never waits on readers or writers. A checkpoint that
            // cannot finish now is retried at the next commit; the commit itself
            // has happened, so no error is reported back to SQLite.
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, "passive WAL checkpoint did not run");
            }
        }
        Ok(())
    }))?;

    let s = state.clone();
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(move |event: TraceEvent<'_>| {
            if let TraceEvent::Profile(stmt, took) = event {
                s.guard("profile", || {
                    let kind = classify(&stmt.sql());
                    s.metrics
                        .sqlite_statement_duration_seconds(kind)
                        .observe_duration(took);
                });
            }
        }),
    )?;

    let s = state;
    let timeout = options.busy_timeout;
    conn.busy_handler(Some(move |count: i32| {
        s.guard("busy", || s.metrics.sqlite_busy_total().inc());
        match busy_delay(count, timeout) {
            Some(delay) => {
                std::thread::sleep(delay);
                true
            }
            None => false,
        }
    }))?;
    Ok(())
}

/// What the hooks of one connection share. The hooks of a connection run on the
/// thread using it, one at a time, so relaxed atomics are enough (they are
/// atomics only because the connection may move between threads).
struct State {
    metrics: ActorMetrics,
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the pending commit started; 0 if none.
    commit_started: AtomicU64,
    /// Rows changed by the open transaction, by [`SqliteOp`] index.
    pending_rows: [AtomicU64; SqliteOp::COUNT],
    /// WAL size in pages at the previous WAL hook.
    wal_pages: AtomicU64,
    /// A hook panicked already (logged once per connection).
    panicked: AtomicBool,
}

impl State {
    fn since_epoch(&self) -> u64 {
        // At least 1, so 0 keeps meaning "no commit pending".
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Runs a hook body; a panic is logged (once per connection) and swallowed so
    /// it never unwinds into SQLite and never changes the statement's outcome.
    fn guard(&self, hook: &'static str, body: impl FnOnce()) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            tests::maybe_inject_panic();
            body();
        }));
        if let Err(panic) = result
            && !self.panicked.swap(true, Relaxed)
        {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(
                hook,
                message,
                actor_id_gen = self.metrics.labels().actor_id_gen(),
                "a SQLite metrics hook panicked; the event was not recorded (further panics on this connection are not logged)"
            );
        }
    }
}

/// SQLite's default busy handler schedule (`sqliteDefaultBusyCallback`): waits of
/// 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 then 100 ms, until `timeout` in total.
/// `None` once the timeout is spent.
fn busy_delay(count: i32, timeout: Duration) -> Option<Duration> {
    const DELAYS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    const TOTALS: [u64; 12] = [0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228];
    let count = usize::try_from(count).unwrap_or(0);
    let (delay, prior) = match (DELAYS.get(count), TOTALS.get(count)) {
        (Some(&d), Some(&t)) => (d, t),
        _ => (100, 228 + 100 * (count as u64 - (DELAYS.len() as u64 - 1))),
    };
    let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let delay = delay.min(timeout.checked_sub(prior)?);
    (delay > 0).then(|| Duration::from_millis(delay))
}

/// The kind of a statement, from its first keyword (comments and whitespace
/// skipped). `WITH` counts as a read; anything unknown (`PRAGMA`, `EXPLAIN`,
/// `VALUES`) too.
fn classify(sql: &str) -> StatementKind {
    let word = first_keyword(sql);
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    if ["INSERT", "UPDATE", "DELETE", "REPLACE"]
        .iter()
        .any(|k| is(k))
    {
        StatementKind::Write
    } else if [
        "CREATE", "DROP", "ALTER", "REINDEX", "VACUUM", "ANALYZE", "ATTACH", "DETACH",
    ]
    .iter()
    .any(|k| is(k))
    {
        StatementKind::Ddl
    } else if ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|k| is(k))
    {
        StatementKind::Transaction
    } else {
        StatementKind::Read
    }
}

fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |i| &r[i + 1..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static INJECT_PANIC: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn maybe_inject_panic() {
        if INJECT_PANIC.get() {
            panic!("injected hook panic");
        }
    }

    fn actor(metrics: &actor_metrics::Metrics) -> ActorMetrics {
        metrics.actor_type("t").register("1", Some(1), "k")
    }

    #[test]
    fn classifies_statements() {
        for (sql, kind) in [
            ("SELECT 1", StatementKind::Read),
            ("  select * from t", StatementKind::Read),
            ("WITH x AS (SELECT 1) SELECT * FROM x", StatementKind::Read),
            ("PRAGMA user_version", StatementKind::Read),
            ("INSERT INTO t VALUES (1)", StatementKind::Write),
            ("-- note\n update t set a = 1", StatementKind::Write),
            ("/* c */ DELETE FROM t", StatementKind::Write),
            ("REPLACE INTO t VALUES (1)", StatementKind::Write),
            ("CREATE TABLE t (a)", StatementKind::Ddl),
            ("drop table t", StatementKind::Ddl),
            ("BEGIN IMMEDIATE", StatementKind::Transaction),
            ("COMMIT", StatementKind::Transaction),
            ("rollback", StatementKind::Transaction),
            ("SAVEPOINT a", StatementKind::Transaction),
            ("", StatementKind::Read),
            ("/* unterminated", StatementKind::Read),
        ] {
            assert_eq!(classify(sql), kind, "{sql:?}");
        }
    }

    #[test]
    fn busy_schedule_matches_sqlite_and_stops_at_the_timeout() {
        let t = Duration::from_millis(100);
        let waits: Vec<u64> = (0..)
            .map_while(|c| busy_delay(c, t))
            .map(|d| d.as_millis() as u64)
            .collect();
        // 1+2+5+10+15+20+25+22 = 100.
        assert_eq!(waits, [1, 2, 5, 10, 15, 20, 25, 22]);
        assert_eq!(busy_delay(0, Duration::ZERO), None);
        let long: u64 = (0..)
            .map_while(|c| busy_delay(c, Duration::from_secs(5)))
            .map(|d| d.as_millis() as u64)
            .sum();
        assert_eq!(long, 5000);
        assert_eq!(busy_delay(-3, t), Some(Duration::from_millis(1)));
    }

    #[test]
    fn a_panicking_hook_changes_nothing_for_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = actor_metrics::Metrics::new(Default::default()).unwrap();
        let m = actor(&metrics);
        let conn = open(dir.path().join("p.db"), m.clone(), &HookOptions::default()).unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER)").unwrap();
        let commits = m.sqlite_commits_total().get();

        INJECT_PANIC.set(true);
        // Every hook panics (commit, update, WAL, profile): the transaction
        // still commits, nothing is rolled back, no error reaches the caller.
        conn.execute_batch("BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); COMMIT;")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        INJECT_PANIC.set(false);

        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(m.sqlite_commits_total().get(), commits);
        assert_eq!(m.sqlite_rollbacks_total().get(), 0);
        // And the hooks work again once the panics stop.
        conn.execute("INSERT INTO t VALUES (4)", []).unwrap();
        assert_eq!(m.sqlite_commits_total().get(), commits + 1);
        assert_eq!(m.sqlite_rows_changed_total(SqliteOp::Insert).get(), 1);
    }
}
