//! The hooks that feed one actor's [`ActorMetrics`]: [`instrument`] and its one
//! installer per hook, the [`State`] they share, and SQLite's busy schedule.
//! Every hook body runs under [`State::guard`], so none can unwind into SQLite.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use actor_metrics::ActorMetrics;
use actor_metrics::labels::{LabelEnum, SqliteOp};
use rusqlite::Connection;
use rusqlite::hooks::Action;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::wal::CheckpointMode;

use crate::classify::classify;
use crate::error::SqliteHooksError;
use crate::options::HookOptions;

/// Installs the hooks on `conn`, feeding `metrics`. Replaces any commit,
/// rollback, update, WAL, trace and busy callbacks the connection had.
/// The hooks hold `metrics` until the connection closes.
pub fn instrument(
    conn: &mut Connection,
    metrics: ActorMetrics,
    options: &HookOptions,
) -> Result<(), SqliteHooksError> {
    let state = Arc::new(State::new(metrics));
    on_commit(conn, state.clone())?;
    on_rollback(conn, state.clone())?;
    on_update(conn, state.clone())?;
    on_wal(conn, state.clone(), options.checkpoint_pages)?;
    on_profile(conn, state.clone())?;
    on_busy(conn, state, options.busy_timeout)?;
    Ok(())
}

/// Commit hook: counts the commit, marks its start for the WAL hook, and
/// counts the rows the transaction changed.
fn on_commit(conn: &mut Connection, s: Arc<State>) -> rusqlite::Result<()> {
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
    }))
}

/// Rollback hook: counts the rollback and forgets the transaction's rows.
fn on_rollback(conn: &mut Connection, s: Arc<State>) -> rusqlite::Result<()> {
    conn.rollback_hook(Some(move || {
        s.guard("rollback", || {
            s.metrics.sqlite_rollbacks_total().inc();
            for pending in &s.pending_rows {
                pending.store(0, Relaxed);
            }
        });
    }))
}

/// Update hook: a changed row, held until its transaction commits.
fn on_update(conn: &mut Connection, s: Arc<State>) -> rusqlite::Result<()> {
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
    }))
}

/// WAL hook: the end of a commit (its duration), the WAL's growth, and a
/// passive checkpoint once the WAL holds `checkpoint_pages` (0: never).
fn on_wal(conn: &mut Connection, s: Arc<State>, checkpoint_pages: u32) -> rusqlite::Result<()> {
    let checkpoint_pages = u64::from(checkpoint_pages);
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
        let pages = u64::try_from(pages).unwrap_or(0);
        s.guard("wal", || {
            let started = s.commit_started.swap(0, Relaxed);
            if started != 0 {
                let ended = s.since_epoch();
                let took = Duration::from_nanos(ended.saturating_sub(started));
                // With the call's trace as an exemplar when a traced action commits.
                let at = s.epoch + Duration::from_nanos(ended);
                s.metrics.record_sqlite_commit(took, at);
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
    }))
}

/// Profile trace: each statement's duration, by [`classify`]'s kind.
fn on_profile(conn: &mut Connection, s: Arc<State>) -> rusqlite::Result<()> {
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
    )
}

/// Busy handler: counts each wait and retries on SQLite's own schedule
/// ([`busy_delay`]) until `timeout`.
fn on_busy(conn: &mut Connection, s: Arc<State>, timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_handler(Some(move |count: i32| {
        s.guard("busy", || s.metrics.sqlite_busy_total().inc());
        match busy_delay(count, timeout) {
            Some(delay) => {
                std::thread::sleep(delay);
                true
            }
            None => false,
        }
    }))
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
    fn new(metrics: ActorMetrics) -> Self {
        State {
            metrics,
            epoch: Instant::now(),
            commit_started: AtomicU64::new(0),
            pending_rows: Default::default(),
            wal_pages: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::open;
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
