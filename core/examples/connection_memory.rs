//! Where one actor database connection's memory goes: SQLite's own heap
//! (`sqlite3_memory_used`), RSS and descriptors per connection, for the
//! settings the host used before and uses now, each step on its own.
//!
//! `cargo run --release -p actor-core --example connection_memory [-- --connections N]`
//!
//! Each variant runs in a fresh child process (this program re-executed with
//! `--variant K`): the page cache's bulk allocation is a process-wide SQLite
//! setting (`SQLITE_CONFIG_PAGECACHE`, which must come before SQLite starts),
//! and a fresh heap keeps one variant's allocator state out of another's.
//! Every connection is opened by `actor_sqlite_hooks::open`, as the host opens
//! an actor's, then runs the `counter` actor's statements (its table and row,
//! one increment, one read). Their hooks all feed one actor's series, so the
//! metric cells are counted once, not per connection.

use std::ffi::{c_int, c_void};
use std::process::Command;

use actor_core::database;
use actor_sqlite_hooks::HookOptions;
use rusqlite::{Connection, ffi};

const DEFAULT_CONNECTIONS: usize = 2000;

/// One way of opening the connections.
struct Variant {
    name: &'static str,
    /// Pages of the page cache's bulk allocation (SQLite's default is 20).
    bulk_pages: c_int,
    options: fn() -> HookOptions,
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "SQLite defaults (HookOptions::default(), synchronous NORMAL)",
        bulk_pages: 20,
        options: || HookOptions {
            synchronous: actor_sqlite_hooks::Synchronous::Normal,
            ..HookOptions::default()
        },
    },
    Variant {
        name: "host before: + exclusive, no lookaside, cache 128 KiB",
        bulk_pages: 20,
        options: || HookOptions {
            page_size: None,
            ..database::options()
        },
    },
    Variant {
        name: "+ no bulk page-cache allocation",
        bulk_pages: 0,
        options: || HookOptions {
            page_size: None,
            ..database::options()
        },
    },
    Variant {
        name: "host now: + 1 KiB pages (database::options())",
        bulk_pages: 0,
        options: database::options,
    },
    Variant {
        name: "host now, with a bulk allocation (a build without the option)",
        bulk_pages: 20,
        options: database::options,
    },
];

/// What one child measured, per connection.
struct Figures {
    sqlite_bytes: f64,
    rss_bytes: f64,
    mallocs: f64,
    fds: f64,
    /// `sqlite3_memory_used` after each step of one connection's life.
    steps: Vec<(&'static str, i64)>,
    /// `SQLITE_DBSTATUS_*` of the last connection: cache, schema, statements.
    status: [c_int; 3],
}

fn memory_used() -> i64 {
    // SAFETY: no preconditions.
    unsafe { ffi::sqlite3_memory_used() }
}

fn malloc_count() -> i64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: valid out-pointers; the op is a known status code.
    unsafe {
        ffi::sqlite3_status64(
            ffi::SQLITE_STATUS_MALLOC_COUNT,
            &mut current,
            &mut highwater,
            0,
        )
    };
    current
}

fn db_status(conn: &Connection, op: c_int) -> c_int {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: a live connection handle and valid out-pointers.
    unsafe { ffi::sqlite3_db_status(conn.handle(), op, &mut current, &mut highwater, 0) };
    current
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Returns glibc's free memory to the OS, so RSS counts live data only.
fn trim() {
    // SAFETY: malloc_trim has no preconditions (glibc).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The counter actor's statements: its table and row, one increment, one read.
fn counter(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);",
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO counter (id, value) VALUES (1, 0)",
        [],
    )?;
    let value: i64 = conn.query_row("SELECT value FROM counter WHERE id = 1", [], |r| r.get(0))?;
    let tx = conn.transaction()?;
    tx.execute("UPDATE counter SET value = ?1 WHERE id = 1", [value + 1])?;
    tx.commit()?;
    conn.query_row("SELECT value FROM counter WHERE id = 1", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

/// Child: opens `n` connections the way `variant` says, keeps them open.
fn measure(variant: &Variant, n: usize) -> Figures {
    // SAFETY: called before anything else uses SQLite in this process, as
    // SQLITE_CONFIG_PAGECACHE requires; (null, 0, N) asks for no preallocated
    // buffer and a bulk allocation of N pages per connection.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PAGECACHE,
            std::ptr::null_mut::<c_void>(),
            0 as c_int,
            variant.bulk_pages,
        )
    };
    assert_eq!(rc, ffi::SQLITE_OK, "SQLITE_CONFIG_PAGECACHE");
    let options = (variant.options)();
    let metrics = actor_metrics::Metrics::new(actor_metrics::Config::default())
        .expect("default configuration");
    let actor = metrics.actor_type("counter").register("1", Some(1), "k");
    let dir = tempfile::tempdir().expect("temp dir");
    // One connection first, so SQLite's process-wide state is not counted.
    let warm = actor_sqlite_hooks::open(dir.path().join("warm.db"), actor.clone(), &options)
        .expect("open");
    trim();
    let (used0, rss0, mallocs0, fds0) = (memory_used(), rss_bytes(), malloc_count(), fds());
    let mut steps = Vec::new();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let before = memory_used();
        let mut conn =
            actor_sqlite_hooks::open(dir.path().join(format!("{i}.db")), actor.clone(), &options)
                .expect("open");
        let opened = memory_used();
        counter(&mut conn).expect("counter statements");
        if i == 0 {
            steps = vec![
                ("opened and set up", opened - before),
                ("after the counter's statements", memory_used() - before),
            ];
        }
        conns.push(conn);
    }
    trim();
    let per = |v: f64| v / n as f64;
    let last = conns.last().expect("at least one connection");
    let status = [
        db_status(last, ffi::SQLITE_DBSTATUS_CACHE_USED),
        db_status(last, ffi::SQLITE_DBSTATUS_SCHEMA_USED),
        db_status(last, ffi::SQLITE_DBSTATUS_STMT_USED),
    ];
    let figures = Figures {
        sqlite_bytes: per((memory_used() - used0) as f64),
        rss_bytes: per(rss_bytes().saturating_sub(rss0) as f64),
        mallocs: per((malloc_count() - mallocs0) as f64),
        fds: per(fds().saturating_sub(fds0) as f64),
        steps,
        status,
    };
    drop(conns);
    drop(warm);
    figures
}

fn usage() -> ! {
    eprintln!("usage: connection_memory [--connections N] [--variant K]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut n = DEFAULT_CONNECTIONS;
    let mut variant = None;
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match a.as_str() {
            "--connections" => n = value(),
            "--variant" => variant = Some(value()),
            _ => usage(),
        }
    }
    if let Some(k) = variant {
        let v: &Variant = VARIANTS.get(k).unwrap_or_else(|| usage());
        let f = measure(v, n);
        println!(
            "{:.0} {:.0} {:.1} {:.2} {} {} {} {} {}",
            f.sqlite_bytes,
            f.rss_bytes,
            f.mallocs,
            f.fds,
            f.steps[0].1,
            f.steps[1].1,
            f.status[0],
            f.status[1],
            f.status[2]
        );
        return;
    }

    println!(
        "SQLite {} (bulk page-cache allocation compiled in: {} pages); {n} connections per variant",
        rusqlite::version(),
        actor_sqlite_hooks::bulk_page_cache_pages()
    );
    println!(
        "| variant | SQLite heap B/conn | RSS B/conn | mallocs/conn | fds/conn | heap after open | heap after counter | cache used | schema used | stmt used |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let exe = std::env::current_exe().expect("own executable path");
    for (k, v) in VARIANTS.iter().enumerate() {
        let out = Command::new(&exe)
            .args(["--variant", &k.to_string(), "--connections", &n.to_string()])
            .output()
            .expect("re-execute connection_memory");
        assert!(
            out.status.success(),
            "{}: {}",
            v.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        println!("| {} | {} |", v.name, line.trim().replace(' ', " | "));
    }
}
