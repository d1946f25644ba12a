//! An actor's own SQLite database: where its files live, how it is opened, and
//! removing the files of a destroyed id.
//!
//! Opened lean, because a host keeps thousands open: `locking_mode =
//! EXCLUSIVE` is set before the first access in WAL mode, so SQLite keeps the
//! WAL index in the process and never creates the `-shm` file or its shared
//! mapping (two descriptors per live actor, the database and its WAL, instead
//! of three; one writer per database is how actors work anyway, and the lock
//! also keeps a second process off an actor's file); and the page cache is
//! bounded by [`DbOptions::cache_kib`].

use std::path::{Path, PathBuf};

use actor_metrics::ActorMetrics;
use actor_sqlite_hooks::{HookOptions, SqliteHooksError, Synchronous};
use rusqlite::{Connection, ErrorCode};

/// Default bound of each actor's SQLite page cache: 128 KiB.
pub const DEFAULT_CACHE_KIB: u32 = 128;

/// How actor databases are opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// Hooks, busy timeout, checkpoint threshold and `synchronous`.
    pub hooks: HookOptions,
    /// Bound of the page cache of each actor's connection, in KiB (`PRAGMA
    /// cache_size = -N`). Default [`DEFAULT_CACHE_KIB`].
    pub cache_kib: u32,
}

/// Suffixes of the files SQLite keeps for one database.
const SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// `{data_dir}/{type_name}/{id}.db`.
pub(crate) fn path(data_dir: &Path, type_name: &str, id: u64) -> PathBuf {
    data_dir.join(type_name).join(format!("{id}.db"))
}

/// The id a database file of this host belongs to (`{id}.db`, `{id}.db-wal`,
/// `{id}.db-shm`), or `None` for any other name.
pub(crate) fn id_of(file_name: &str) -> Option<u64> {
    let stem = SUFFIXES
        .iter()
        .find_map(|s| file_name.strip_suffix(&format!(".db{s}")))?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Opens (creating if needed) the database at `path` lean (see the module
/// docs), in WAL mode, checks that it is a readable database and instruments it.
pub(crate) fn open(
    path: &Path,
    metrics: ActorMetrics,
    options: &DbOptions,
) -> Result<Connection, SqliteHooksError> {
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
    no_lookaside(&conn).map_err(classify)?;
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        // Must come before the first access in WAL mode (see the module docs).
        conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| {
            r.get::<_, String>(0)
        })?;
        conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))?;
        conn.busy_timeout(options.hooks.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite kept a non-WAL journal mode; commits will not be timed");
        }
        let synchronous = match options.hooks.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        // Reading the schema is what fails on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    };
    setup(&conn).map_err(classify)?;
    actor_sqlite_hooks::instrument(&mut conn, metrics, &options.hooks)?;
    Ok(conn)
}

/// Turns off the connection's lookaside allocator: SQLite fills about 60 KB
/// per connection with small-allocation slots at open, which a host with
/// thousands of mostly idle connections pays in full for little speed.
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

/// Deletes the database at `path` and its WAL files; a missing file is fine.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    for suffix in SUFFIXES {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_database_file_names_only() {
        assert_eq!(id_of("12.db"), Some(12));
        assert_eq!(id_of("12.db-wal"), Some(12));
        assert_eq!(id_of("12.db-shm"), Some(12));
        for other in [
            "x.db",
            ".db",
            "12.db.bak",
            "12",
            "-1.db",
            "1a.db",
            ".write-probe",
        ] {
            assert_eq!(id_of(other), None, "{other}");
        }
    }

    #[test]
    fn an_open_database_keeps_no_shared_memory_file() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = actor_metrics::Metrics::new(actor_metrics::Config::default()).unwrap();
        let actor = metrics.actor_type("t").register("1", Some(1), "k");
        let options = DbOptions {
            hooks: HookOptions::default(),
            cache_kib: DEFAULT_CACHE_KIB,
        };
        let db_path = dir.path().join("1.db");
        let conn = open(&db_path, actor, &options).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let mut shm = db_path.as_os_str().to_owned();
        shm.push("-shm");
        assert!(!Path::new(&shm).exists(), "no -shm file");
        let cache: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -i64::from(DEFAULT_CACHE_KIB));
        drop(conn);
        remove(&db_path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
