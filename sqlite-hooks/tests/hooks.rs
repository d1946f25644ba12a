//! The hooks against real SQLite files in a temp dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actor_metrics::labels::{SqliteOp, StatementKind};
use actor_metrics::scrape::Scrape;
use actor_metrics::{ActorMetrics, Metrics};
use actor_sqlite_hooks::{HookOptions, SqliteHooksError, Synchronous, open};
use rusqlite::{Connection, ErrorCode};

fn setup() -> (tempfile::TempDir, Metrics) {
    let dir = tempfile::tempdir().unwrap();
    (dir, Metrics::new(Default::default()).unwrap())
}

fn actor(metrics: &Metrics, id: &str) -> ActorMetrics {
    metrics.actor_type("db").register(id, Some(1), "key")
}

fn fast() -> HookOptions {
    HookOptions {
        synchronous: Synchronous::Normal,
        ..HookOptions::default()
    }
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn commits_and_rollbacks_are_counted_exactly() {
    let (dir, metrics) = setup();
    let m = actor(&metrics, "1");
    let conn = open(dir.path().join("a.db"), m.clone(), &fast()).unwrap();
    assert_eq!(m.sqlite_commits_total().get(), 0, "opening commits nothing");

    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
        .unwrap();
    assert_eq!(m.sqlite_commits_total().get(), 1, "autocommit DDL");

    for i in 0..5 {
        conn.execute_batch(&format!(
            "BEGIN; INSERT INTO t (v) VALUES ('a{i}'); INSERT INTO t (v) VALUES ('b{i}'); COMMIT;"
        ))
        .unwrap();
    }
    assert_eq!(
        m.sqlite_commits_total().get(),
        6,
        "five explicit transactions"
    );

    conn.execute("INSERT INTO t (v) VALUES ('c')", []).unwrap();
    assert_eq!(m.sqlite_commits_total().get(), 7, "an autocommit insert");

    // Reads commit nothing.
    assert_eq!(count(&conn, "t"), 11);
    assert_eq!(m.sqlite_commits_total().get(), 7);

    // An explicit ROLLBACK.
    conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES ('d'); ROLLBACK;")
        .unwrap();
    assert_eq!(m.sqlite_rollbacks_total().get(), 1);

    // A constraint failure in an autocommit statement rolls its transaction back.
    let err = conn
        .execute("INSERT INTO t (v) VALUES ('c')", [])
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation)
    );
    assert_eq!(m.sqlite_rollbacks_total().get(), 2);

    // A failed statement inside a transaction, then ROLLBACK of the transaction.
    conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES ('e');")
        .unwrap();
    assert!(conn.execute("INSERT INTO t (v) VALUES ('e')", []).is_err());
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(m.sqlite_rollbacks_total().get(), 3);

    assert_eq!(
        m.sqlite_commits_total().get(),
        7,
        "no rollback counted as a commit"
    );
    assert_eq!(count(&conn, "t"), 11);

    // Commit durations: one observation per commit, all of them positive.
    let d = m.sqlite_commit_duration_seconds().get();
    assert_eq!(d.count(), 7);
    assert!(d.sum > 0.0, "{d:?}");

    // The aggregate follows.
    let s = Scrape::parse(&metrics.render()).unwrap();
    assert_eq!(
        s.get("actor_type_sqlite_commits_total", &[("actor_name", "db")]),
        Some(7.0)
    );
    assert_eq!(
        s.get("actor_type_sqlite_rollbacks_total", &[("actor_name", "db")]),
        Some(3.0)
    );
    assert_eq!(
        s.sum(
            "actor_sqlite_commit_duration_seconds_count",
            &[("actor_id_gen", "1:1")]
        ),
        7.0
    );
}

#[test]
fn rows_changed_per_op_match_the_sql() {
    let (dir, metrics) = setup();
    let m = actor(&metrics, "1");
    let conn = open(dir.path().join("a.db"), m.clone(), &fast()).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        .unwrap();
    conn.execute_batch(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
           INSERT INTO t (v) SELECT i FROM n;
         UPDATE t SET v = v + 100 WHERE v <= 4;
         DELETE FROM t WHERE v BETWEEN 8 AND 10;
         COMMIT;",
    )
    .unwrap();
    assert_eq!(conn.changes(), 3, "the delete removed 8, 9 and 10");
    let rows = |op| m.sqlite_rows_changed_total(op).get();
    assert_eq!(
        (
            rows(SqliteOp::Insert),
            rows(SqliteOp::Update),
            rows(SqliteOp::Delete)
        ),
        (10, 4, 3)
    );

    // Rows of a transaction that rolls back are not counted.
    conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES (1), (2); DELETE FROM t; ROLLBACK;")
        .unwrap();
    assert_eq!(
        (
            rows(SqliteOp::Insert),
            rows(SqliteOp::Update),
            rows(SqliteOp::Delete)
        ),
        (10, 4, 3)
    );
    assert_eq!(count(&conn, "t"), 7);

    let s = Scrape::parse(&metrics.render()).unwrap();
    assert_eq!(
        s.get(
            "actor_type_sqlite_rows_changed_total",
            &[("actor_name", "db"), ("op", "update")]
        ),
        Some(4.0)
    );
}

#[test]
fn statement_kinds_are_classified() {
    let (dir, metrics) = setup();
    let m = actor(&metrics, "1");
    let conn = open(dir.path().join("a.db"), m.clone(), &fast()).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
    conn.execute_batch("BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); COMMIT;")
        .unwrap();
    let _: i64 = conn
        .query_row("SELECT sum(v) FROM t", [], |r| r.get(0))
        .unwrap();
    let n = |k| m.sqlite_statement_duration_seconds(k).get().count();
    assert_eq!(n(StatementKind::Ddl), 1);
    assert_eq!(n(StatementKind::Write), 2);
    assert_eq!(n(StatementKind::Transaction), 2);
    assert_eq!(n(StatementKind::Read), 1);
}

#[test]
fn the_wal_stays_bounded_and_the_data_intact() {
    let (dir, metrics) = setup();
    let path = dir.path().join("wal.db");
    let options = fast();
    let m = actor(&metrics, "1");
    let conn = open(&path, m.clone(), &options).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let mut insert = conn.prepare("INSERT INTO t (v) VALUES (?1)").unwrap();
    for i in 0..20_000 {
        insert.execute([format!("value {i}")]).unwrap();
    }
    drop(insert);
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let page_size = page_size as u64;
    // A WAL frame is a page plus a 24-byte header, after a 32-byte file header.
    // The log is checkpointed at `checkpoint_pages` and then reused from its
    // start, so it never holds much more than that many frames.
    let bound = (u64::from(options.checkpoint_pages) + 16) * (page_size + 24) + 32;
    let wal = wal_len(&path);
    assert!(wal <= bound, "WAL is {wal} bytes, bound {bound}");
    assert_eq!(m.sqlite_commits_total().get(), 20_001);
    assert!(m.sqlite_wal_pages_total().get() >= 20_001);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&conn, "t"), 20_000);
    drop(conn);
    let reopened = Connection::open(&path).unwrap();
    assert_eq!(count(&reopened, "t"), 20_000);

    // The control: with the hook's checkpoint off, the same kind of load grows
    // the WAL past the bound (installing a WAL hook turns SQLite's own off).
    let path = dir.path().join("unbounded.db");
    let conn = open(
        &path,
        actor(&metrics, "2"),
        &HookOptions {
            checkpoint_pages: 0,
            ..fast()
        },
    )
    .unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    for i in 0..5_000 {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("value {i}")])
            .unwrap();
    }
    assert!(wal_len(&path) > bound, "{} <= {bound}", wal_len(&path));
}

fn wal_len(db: &Path) -> u64 {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
}

/// A database with one row and a connection in the middle of a write
/// transaction, holding the write lock.
fn holding_the_write_lock(dir: &tempfile::TempDir, metrics: &Metrics) -> (PathBuf, Connection) {
    let path = dir.path().join("shared.db");
    let holder = open(&path, actor(metrics, "1"), &fast()).unwrap();
    holder
        .execute_batch("CREATE TABLE t (v INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    (path, holder)
}

#[test]
fn a_locked_write_waits_and_succeeds_and_busy_is_counted() {
    let (dir, metrics) = setup();
    let (path, holder) = holding_the_write_lock(&dir, &metrics);

    let waiter_metrics = actor(&metrics, "2");
    let waiter = open(&path, waiter_metrics.clone(), &fast()).unwrap();
    let writer = std::thread::spawn(move || {
        waiter.execute("INSERT INTO t VALUES (2)", [])?;
        Ok::<_, rusqlite::Error>(waiter)
    });
    // Release the lock only once the other connection has been told it is busy.
    let deadline = Instant::now() + Duration::from_secs(4);
    while waiter_metrics.sqlite_busy_total().get() == 0 {
        assert!(Instant::now() < deadline, "the writer never hit the lock");
        std::thread::yield_now();
    }
    holder.execute_batch("COMMIT").unwrap();
    let waiter = writer.join().unwrap().expect("the waiting write succeeds");
    assert!(waiter_metrics.sqlite_busy_total().get() > 0);
    assert_eq!(waiter_metrics.sqlite_commits_total().get(), 1);
    assert_eq!(count(&waiter, "t"), 2);
}

#[test]
fn a_lock_held_past_the_busy_timeout_fails_with_busy_after_waiting() {
    let (dir, metrics) = setup();
    let (path, holder) = holding_the_write_lock(&dir, &metrics);
    let m = actor(&metrics, "2");
    let options = HookOptions {
        busy_timeout: Duration::from_millis(60),
        ..fast()
    };
    let waiter = open(&path, m.clone(), &options).unwrap();
    let started = Instant::now();
    let err = waiter.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "it waited for the timeout, not failing at once"
    );
    // 1+2+5+10+15+20 = 53, then 7: seven waits, and the eighth call gives up.
    assert_eq!(m.sqlite_busy_total().get(), 8);
    holder.execute_batch("COMMIT").unwrap();
    waiter.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert_eq!(count(&waiter, "t"), 2);
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let (dir, metrics) = setup();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = open(&path, actor(&metrics, "1"), &fast()).unwrap_err();
    assert!(
        matches!(err, SqliteHooksError::NotADatabase { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("garbage.db"), "{text}");
    assert!(text.contains("not a SQLite database"), "{text}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5a; 8192],
        "left as it was"
    );

    // A header that says SQLite over a body that is not.
    let path = dir.path().join("truncated.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(4096, 0xff);
    std::fs::write(&path, &bytes).unwrap();
    let err = open(&path, actor(&metrics, "2"), &fast()).unwrap_err();
    assert!(
        matches!(err, SqliteHooksError::NotADatabase { .. }),
        "{err:?}"
    );

    let missing = dir.path().join("no/such/dir/a.db");
    let err = open(&missing, actor(&metrics, "3"), &fast()).unwrap_err();
    assert!(matches!(err, SqliteHooksError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");

    // An empty file is an empty database.
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    open(&path, actor(&metrics, "4"), &fast()).unwrap();
}

#[test]
fn a_connection_moved_between_threads_keeps_counting() {
    let (dir, metrics) = setup();
    let m = actor(&metrics, "1");
    let conn = open(dir.path().join("a.db"), m.clone(), &fast()).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
    let conn = std::thread::spawn(move || {
        for i in 0..100 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        conn
    })
    .join()
    .unwrap();
    let conn = std::thread::spawn(move || {
        conn.execute("DELETE FROM t WHERE v < 10", []).unwrap();
        conn
    })
    .join()
    .unwrap();
    assert_eq!(m.sqlite_commits_total().get(), 102);
    assert_eq!(m.sqlite_rows_changed_total(SqliteOp::Insert).get(), 100);
    assert_eq!(m.sqlite_rows_changed_total(SqliteOp::Delete).get(), 10);
    assert_eq!(count(&conn, "t"), 90);
    // Closing the connection frees the hooks and their handle clone.
    drop(conn);
    m.stopped();
}

fn pragma(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

/// The lookaside slots a connection has used at most.
fn lookaside_highwater(conn: &Connection) -> i32 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: a live connection handle and valid out-pointers.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
    highwater
}

#[test]
fn lean_options_set_the_connection_up_and_keep_it_working() {
    let (dir, metrics) = setup();
    let lean = HookOptions {
        exclusive: true,
        lookaside: false,
        cache_kib: Some(64),
        page_size: Some(1024),
        ..fast()
    };
    let path = dir.path().join("lean.db");
    let m = actor(&metrics, "1");
    let conn = open(&path, m.clone(), &lean).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(pragma(&conn, "page_size"), 1024);
    assert_eq!(pragma(&conn, "cache_size"), -64);
    assert_eq!(lookaside_highwater(&conn), 0, "no lookaside slot used");
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    assert!(!Path::new(&shm).exists(), "the WAL index is in the heap");
    assert_eq!(m.sqlite_commits_total().get(), 2, "hooks installed");
    // The exclusive lock keeps every other connection off the file.
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let err = other
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    drop(other);
    drop(conn);

    // Reopened: the data is there; a page size only applies to a new file.
    let conn = open(
        &path,
        actor(&metrics, "2"),
        &HookOptions {
            page_size: Some(4096),
            ..lean.clone()
        },
    )
    .unwrap();
    assert_eq!(count(&conn, "t"), 1);
    assert_eq!(pragma(&conn, "page_size"), 1024);

    // SQLite's defaults: lookaside on, the WAL index in a -shm file.
    let path = dir.path().join("default.db");
    let conn = open(&path, actor(&metrics, "3"), &fast()).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(pragma(&conn, "page_size"), 4096);
    assert!(lookaside_highwater(&conn) > 0);
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    assert!(Path::new(&shm).exists());
}

#[test]
fn a_page_size_sqlite_would_ignore_is_refused_before_opening() {
    let (dir, metrics) = setup();
    for bad in [0, 100, 1000, 256, 131_072] {
        let path = dir.path().join(format!("{bad}.db"));
        let options = HookOptions {
            page_size: Some(bad),
            ..fast()
        };
        let err = open(&path, actor(&metrics, "1"), &options).unwrap_err();
        assert!(
            matches!(err, SqliteHooksError::PageSize(b) if b == bad),
            "{err:?}"
        );
        assert!(err.to_string().contains(&bad.to_string()), "{err}");
        assert!(!path.exists(), "nothing created");
    }
    for good in [512, 1024, 65_536] {
        let options = HookOptions {
            page_size: Some(good),
            ..fast()
        };
        assert!(options.check().is_ok(), "{good}");
    }
}
