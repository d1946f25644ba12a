//! [`open`]: an actor's database file opened in WAL mode, set up as
//! [`HookOptions`] say, checked and instrumented; and the two calls into
//! SQLite's C API that rusqlite does not wrap (lookaside, compile options).

use std::path::Path;

use actor_metrics::ActorMetrics;
use rusqlite::{Connection, ErrorCode};

use crate::error::SqliteHooksError;
use crate::hooks::instrument;
use crate::options::HookOptions;

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
    let mut conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    set_up(&conn, options, path).map_err(|e| open_error(path, e))?;
    instrument(&mut conn, metrics, options)?;
    Ok(conn)
}

/// Applies `options` to a connection just opened, then reads the schema, which
/// is what fails on a file that is not a database.
fn set_up(conn: &Connection, options: &HookOptions, path: &Path) -> rusqlite::Result<()> {
    // Order matters: lookaside goes before anything uses it; locking mode and
    // page size before the first access (journal_mode is the first read).
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
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

/// What opening or setting up `path` failed with: [`SqliteHooksError::NotADatabase`]
/// when SQLite says the file is not a database or is corrupt, else
/// [`SqliteHooksError::Open`].
fn open_error(path: &Path, source: rusqlite::Error) -> SqliteHooksError {
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
