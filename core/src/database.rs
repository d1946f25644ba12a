//! An actor's own SQLite database: where its files live, how lean it is
//! opened, and removing the files of a destroyed id.
//!
//! A host keeps thousands of databases open, so [`options`], the host's
//! default, asks [`actor_sqlite_hooks::open`] for a connection that costs
//! little and survives a crash of the process:
//!
//! * `locking_mode = EXCLUSIVE` before the first access in WAL mode: SQLite
//!   keeps the WAL index in the process and never creates the `-shm` file or
//!   its shared mapping (two descriptors per live actor, the database and its
//!   WAL, instead of three; one writer per database is how actors work anyway,
//!   and the lock also keeps a second process off an actor's file);
//! * no lookaside allocator (48 KB of slots per connection);
//! * a page cache bound ([`DEFAULT_CACHE_KIB`]) and small pages for new
//!   databases ([`DEFAULT_PAGE_SIZE`]): an actor's database is a few pages, and
//!   each cached page and two scratch buffers per connection are page-sized;
//! * `synchronous = NORMAL`, SQLite's recommendation for WAL databases: a
//!   commit survives a crash of the process; only a power cut can lose the last
//!   commits. Actions run on the runtime's threads, so a sync per commit would
//!   stall them. (The catalogue is always `synchronous = FULL`.)
//!
//! Where SQLite work runs: opening an actor's database (with its
//! `load_state` and `on_start`) runs on tokio's blocking pool, because it can
//! wait: another process holding the file's lock (a backup tool, an
//! operator's `sqlite3` shell) makes it wait up to the busy timeout, and that
//! must not stall the runtime workers every other actor needs. Action calls
//! run on the runtime's workers: once open, an actor holds its database's lock
//! exclusively, so no other process can make its statements wait, and a
//! counter action's SQLite work takes microseconds. What can still hold a
//! worker is the disk itself (the fsync of a checkpoint every
//! `checkpoint_pages`) and a behaviour's own slow synchronous code; a
//! behaviour with heavy database work should move it to
//! `tokio::task::spawn_blocking` or `block_in_place` itself.
//!
//! The bundled SQLite is built without its bulk page-cache allocation
//! (`.cargo/config.toml`; see [`actor_sqlite_hooks::bulk_page_cache_pages`]):
//! otherwise every connection would hold 20 page slots from its first read.
//! A counter actor's connection then holds about 50 KB of SQLite's heap, 32 KiB
//! of it the WAL index, whose size SQLite's WAL format fixes.

use std::path::{Path, PathBuf};

use actor_sqlite_hooks::{HookOptions, Synchronous};

/// Default bound of each actor's SQLite page cache: 128 KiB.
pub const DEFAULT_CACHE_KIB: u32 = 128;

/// Default page size of a new actor database: 1 KiB (SQLite's own default is
/// 4 KiB), 12 KB less per live actor with a few pages in use. An actor whose
/// data grows large pays for it with deeper B-trees and more WAL frames per
/// commit; the binary's `--sqlite-page-size` sets it. Existing databases keep
/// the page size they were created with.
pub const DEFAULT_PAGE_SIZE: u32 = 1024;

/// The host's default connection options (see the module docs); checkpoint
/// threshold and busy timeout are the hooks crate's defaults.
pub fn options() -> HookOptions {
    HookOptions {
        synchronous: Synchronous::Normal,
        exclusive: true,
        lookaside: false,
        cache_kib: Some(DEFAULT_CACHE_KIB),
        page_size: Some(DEFAULT_PAGE_SIZE),
        ..HookOptions::default()
    }
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
    fn the_default_options_open_a_lean_database() {
        // The build option of .cargo/config.toml reached the bundled SQLite.
        assert_eq!(actor_sqlite_hooks::bulk_page_cache_pages(), 0);
        let dir = tempfile::tempdir().unwrap();
        let metrics = actor_metrics::Metrics::new(actor_metrics::Config::default()).unwrap();
        let actor = metrics.actor_type("t").register("1", Some(1), "k");
        let db_path = dir.path().join("1.db");
        let conn = actor_sqlite_hooks::open(&db_path, actor, &options()).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let mut shm = db_path.as_os_str().to_owned();
        shm.push("-shm");
        assert!(!Path::new(&shm).exists(), "no -shm file");
        let pragma = |name: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(pragma("cache_size"), -i64::from(DEFAULT_CACHE_KIB));
        assert_eq!(pragma("page_size"), i64::from(DEFAULT_PAGE_SIZE));
        assert_eq!(pragma("synchronous"), 1, "NORMAL");
        drop(conn);
        remove(&db_path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
