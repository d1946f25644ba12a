//! The host's catalogue: which stable id each `(actor name, key)` owns and its
//! last generation, kept durably in `{data_dir}/catalogue.db`.
//!
//! Why it exists: an actor's database file is named by its id. Ids handed out
//! from a counter in memory restart at 1 with the process, so after a restart a
//! new key opened an old key's file. The catalogue is the one record of who owns
//! which file:
//!
//! * a key's row is committed (`synchronous = FULL`) before its database file is
//!   created, so a file never exists without an owner on record;
//! * ids come from `AUTOINCREMENT`, which never hands out an id twice, not even
//!   the id of a deleted row, so a destroyed key's data cannot resurface;
//! * every wake bumps the generation in the same durable write, so the label
//!   sets of two process lifetimes never coincide;
//! * destroy deletes the row first and then the files; a crash in between
//!   leaves files no row owns, which the next start removes.
//!
//! One process at a time: a lock file (`catalogue.lock`, holding the owner's
//! pid) is taken before the catalogue is opened; a second host on the same
//! directory waits for it up to a timeout, and is not ready meanwhile.
//!
//! SQLite work runs on tokio's blocking pool, one transaction at a time, so a
//! sync to disk never stalls the runtime; requests that arrive while one
//! transaction syncs are committed together in the next (one sync for many
//! creates).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::database;

/// File name of the catalogue in the data directory.
pub const FILE_NAME: &str = "catalogue.db";
/// File name of the lock that keeps a second host off the data directory.
pub const LOCK_FILE_NAME: &str = "catalogue.lock";
/// Version of the catalogue's schema (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;
/// How often a host waiting for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// What the catalogue knows of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The key's id, for as long as the key is not destroyed.
    pub id: u64,
    /// The key's latest generation.
    pub generation: u64,
}

/// Errors of the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The data directory, the lock file or the catalogue file cannot be used.
    #[error("catalogue {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the data directory.
    #[error("catalogue {} is held by another actor-host ({holder}); gave up after {waited:?}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
        /// How long this host waited.
        waited: Duration,
    },
    /// The catalogue file is not a SQLite database or is damaged.
    #[error("catalogue {} is not a SQLite database or is corrupt ({detail}); restore it from a backup or move the data dir away", path.display())]
    Corrupt {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The catalogue was written by a newer host.
    #[error("catalogue {} has schema version {found}; this actor-host reads version {SCHEMA_VERSION}", path.display())]
    Schema {
        /// The catalogue file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// Actor databases exist but no catalogue says whose they are.
    #[error("{count} actor database file(s) such as {} exist but there is no catalogue at {}; refusing to hand them to new keys (move them away or restore the catalogue)", example.display(), path.display())]
    Uncatalogued {
        /// The catalogue file that is missing.
        path: PathBuf,
        /// How many database files were found.
        count: usize,
        /// One of them.
        example: PathBuf,
    },
    /// A read or write of the catalogue failed.
    #[error("catalogue {}: {detail}", path.display())]
    Sqlite {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The catalogue's thread has ended (the host is going away).
    #[error("the catalogue is closed")]
    Closed,
}

/// What a request asks.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A new generation for the key; `create` adds the key if it is unknown.
    Wake { create: bool },
    /// Removes the key.
    Forget,
    /// Reads the key.
    Lookup,
}

struct Job {
    op: Op,
    name: &'static str,
    key: String,
    reply: oneshot::Sender<Result<Option<Entry>, CatalogueError>>,
}

/// A handle on the open catalogue. Dropping it ends the catalogue's task and
/// releases the data directory.
#[derive(Debug)]
pub(crate) struct Catalogue {
    jobs: mpsc::UnboundedSender<Job>,
    /// Held for the catalogue's lifetime: the data directory is this host's.
    _lock: File,
}

impl Catalogue {
    /// Takes the data directory's lock (waiting up to `lock_timeout`), opens or
    /// creates the catalogue, checks it, and removes database files that no key
    /// owns (left by a destroy that a crash interrupted).
    pub(crate) async fn open(
        data_dir: &Path,
        lock_timeout: Duration,
    ) -> Result<Catalogue, CatalogueError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CatalogueError::Io { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let lock_path = data_dir.join(LOCK_FILE_NAME);
        let lock = lock(&lock_path, lock_timeout).await?;
        let dir = data_dir.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_checked(&dir, &dir.join(FILE_NAME)))
            .await
            .map_err(|_| CatalogueError::Closed)??;
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(conn, data_dir.join(FILE_NAME), rx));
        Ok(Catalogue { jobs, _lock: lock })
    }

    /// A new generation of the key, durably recorded; `create` adds an unknown
    /// key with a fresh id, otherwise an unknown key is `None`.
    pub(crate) async fn wake(
        &self,
        name: &'static str,
        key: &str,
        create: bool,
    ) -> Result<Option<Entry>, CatalogueError> {
        self.ask(Op::Wake { create }, name, key).await
    }

    /// Removes the key durably; returns what it was, `None` if it was unknown.
    pub(crate) async fn forget(
        &self,
        name: &'static str,
        key: &str,
    ) -> Result<Option<Entry>, CatalogueError> {
        self.ask(Op::Forget, name, key).await
    }

    /// What the catalogue knows of the key.
    pub(crate) async fn lookup(
        &self,
        name: &'static str,
        key: &str,
    ) -> Result<Option<Entry>, CatalogueError> {
        self.ask(Op::Lookup, name, key).await
    }

    async fn ask(
        &self,
        op: Op,
        name: &'static str,
        key: &str,
    ) -> Result<Option<Entry>, CatalogueError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                op,
                name,
                key: key.to_owned(),
                reply,
            })
            .map_err(|_| CatalogueError::Closed)?;
        answer.await.map_err(|_| CatalogueError::Closed)?
    }
}

/// Takes the lock file, retrying every [`LOCK_POLL`] until `timeout`, and writes
/// this process's id into it.
async fn lock(path: &Path, timeout: Duration) -> Result<File, CatalogueError> {
    let io = |source| CatalogueError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let started = tokio::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if started.elapsed() >= timeout {
                    let holder = std::fs::read_to_string(path).unwrap_or_default();
                    return Err(CatalogueError::Locked {
                        path: path.to_owned(),
                        holder: holder.trim().to_owned(),
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    writeln!(file, "pid {}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// Opens the catalogue, refusing a damaged one, a newer one, and a missing one
/// next to existing actor databases; creates the schema on first use; removes
/// database files no key owns.
fn open_checked(dir: &Path, path: &Path) -> Result<Connection, CatalogueError> {
    let corrupt = |e: rusqlite::Error| CatalogueError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let sqlite = |e: rusqlite::Error| CatalogueError::Sqlite {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let mut conn = Connection::open(path).map_err(sqlite)?;
    // Nothing is written before the file has proved to be a sound database: a
    // broken catalogue stays as it was found, for whoever repairs it.
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| {
        r.get::<_, String>(0)
    })
    .map_err(corrupt)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt)?;
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(CatalogueError::Corrupt {
            path: path.to_owned(),
            detail: check,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(CatalogueError::Schema {
            path: path.to_owned(),
            found: version,
        });
    }
    if version == 0 {
        refuse_uncatalogued(dir, path)?;
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite)?;
    if version == 0 {
        let tx = conn.transaction().map_err(sqlite)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS actors (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                actor_name TEXT NOT NULL,
                actor_key TEXT NOT NULL,
                generation INTEGER NOT NULL,
                UNIQUE (actor_name, actor_key)
            );
            PRAGMA user_version = 1;",
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        // The new file's directory entry is durable too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| CatalogueError::Io {
                path: dir.to_owned(),
                source,
            })?;
    }
    remove_unowned(dir, &conn).map_err(sqlite)?;
    Ok(conn)
}

/// Database files under `dir`'s type directories, as `(type dir name, id, path)`.
fn database_files(dir: &Path) -> Vec<(String, u64, PathBuf)> {
    let mut found = Vec::new();
    let Ok(types) = std::fs::read_dir(dir) else {
        return found;
    };
    for ty in types.flatten() {
        if !ty.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let type_name = ty.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(ty.path()) else {
            continue;
        };
        for file in files.flatten() {
            if let Some(id) = database::id_of(&file.file_name().to_string_lossy()) {
                found.push((type_name.clone(), id, file.path()));
            }
        }
    }
    found
}

fn refuse_uncatalogued(dir: &Path, path: &Path) -> Result<(), CatalogueError> {
    let files = database_files(dir);
    match files.first() {
        None => Ok(()),
        Some((_, _, example)) => Err(CatalogueError::Uncatalogued {
            path: path.to_owned(),
            count: files.len(),
            example: example.clone(),
        }),
    }
}

/// Removes database files whose id no key of that type owns: what a destroy
/// left when the process died between forgetting the key and deleting its files.
fn remove_unowned(dir: &Path, conn: &Connection) -> rusqlite::Result<()> {
    let mut owned =
        conn.prepare("SELECT EXISTS (SELECT 1 FROM actors WHERE id = ?1 AND actor_name = ?2)")?;
    let mut removed = 0usize;
    for (type_name, id, file) in database_files(dir) {
        let id_sql = i64::try_from(id).unwrap_or(i64::MAX);
        if owned.query_row(rusqlite::params![id_sql, type_name], |r| {
            r.get::<_, bool>(0)
        })? {
            continue;
        }
        match std::fs::remove_file(&file) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(path = %file.display(), error = %e, "could not remove a destroyed actor's file")
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed database files of actors destroyed before a crash"
        );
    }
    Ok(())
}

/// The catalogue's task: commits whatever requests are waiting in one
/// transaction on the blocking pool, then answers them.
async fn serve(mut conn: Connection, path: PathBuf, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let done = tokio::task::spawn_blocking(move || {
            let answers = run_batch(&mut conn, &batch).map_err(|e| e.to_string());
            (conn, batch, answers)
        })
        .await;
        // A panic in SQLite work drops the batch's replies: its callers see Closed.
        let Ok((returned, batch, answers)) = done else {
            return;
        };
        conn = returned;
        for (i, job) in batch.into_iter().enumerate() {
            let answer = match &answers {
                Ok(answers) => answers[i].clone().map_err(|detail| CatalogueError::Sqlite {
                    path: path.clone(),
                    detail,
                }),
                Err(detail) => Err(CatalogueError::Sqlite {
                    path: path.clone(),
                    detail: detail.clone(),
                }),
            };
            let _ = job.reply.send(answer);
        }
    }
}

type Answer = Result<Option<Entry>, String>;

/// Runs every job of `batch` in one transaction; an error of the transaction
/// fails them all, an error of one statement fails that job only.
fn run_batch(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<Answer>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let answers = batch
        .iter()
        .map(|job| apply(&tx, job).map_err(|e| e.to_string()))
        .collect();
    tx.commit()?;
    Ok(answers)
}

/// Column `i` as the non-negative integer the schema only ever stores there.
fn unsigned(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, job: &Job) -> rusqlite::Result<Option<Entry>> {
    let params = rusqlite::params![job.name, job.key];
    let entry = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Entry> {
        Ok(Entry {
            id: unsigned(r, 0)?,
            generation: unsigned(r, 1)?,
        })
    };
    match job.op {
        Op::Wake { create } => {
            if create {
                tx.prepare_cached(
                    "INSERT INTO actors (actor_name, actor_key, generation) VALUES (?1, ?2, 0)
                     ON CONFLICT (actor_name, actor_key) DO NOTHING",
                )?
                .execute(params)?;
            }
            tx.prepare_cached(
                "UPDATE actors SET generation = generation + 1
                 WHERE actor_name = ?1 AND actor_key = ?2 RETURNING id, generation",
            )?
            .query_row(params, entry)
            .optional()
        }
        Op::Forget => tx
            .prepare_cached(
                "DELETE FROM actors WHERE actor_name = ?1 AND actor_key = ?2 RETURNING id, generation",
            )?
            .query_row(params, entry)
            .optional(),
        Op::Lookup => tx
            .prepare_cached(
                "SELECT id, generation FROM actors WHERE actor_name = ?1 AND actor_key = ?2",
            )?
            .query_row(params, entry)
            .optional(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_stable_per_key_never_reused_and_generations_persist() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let c = Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
            let a = c.wake("t", "a", true).await.unwrap().unwrap();
            let b = c.wake("t", "b", true).await.unwrap().unwrap();
            assert_eq!((a.generation, b.generation), (1, 1));
            assert_ne!(a.id, b.id);
            assert_eq!(c.wake("t", "nope", false).await.unwrap(), None);
            assert_eq!(c.lookup("t", "nope").await.unwrap(), None);
            // The same key of another type is another actor.
            let other = c.wake("u", "a", true).await.unwrap().unwrap();
            assert!(other.id != a.id && other.id != b.id);
            (a, b)
        };
        // Reopened (a restart): same ids, generations go on.
        let c = Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
        let a2 = c.wake("t", "a", false).await.unwrap().unwrap();
        assert_eq!((a2.id, a2.generation), (a.id, 2));
        // Forgotten and created again: a new id, never one handed out before.
        assert_eq!(c.forget("t", "b").await.unwrap().map(|e| e.id), Some(b.id));
        assert_eq!(c.forget("t", "b").await.unwrap(), None);
        let b2 = c.wake("t", "b", true).await.unwrap().unwrap();
        assert!(b2.id > b.id.max(a.id), "{b2:?}");
        assert_eq!(b2.generation, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_get_distinct_ids_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = std::sync::Arc::new(Catalogue::open(dir.path(), Duration::ZERO).await.unwrap());
        let mut tasks = Vec::new();
        for t in 0..8 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..50 {
                    // Every key is created by two tasks: one id per key.
                    let key = format!("k{}", (t / 2) * 50 + i);
                    got.push((key.clone(), c.wake("t", &key, true).await.unwrap().unwrap()));
                }
                got
            }));
        }
        let mut by_key = std::collections::HashMap::new();
        for t in tasks {
            for (key, entry) in t.await.unwrap() {
                by_key.entry(key).or_insert_with(Vec::new).push(entry);
            }
        }
        assert_eq!(by_key.len(), 200);
        let mut ids = std::collections::HashSet::new();
        for (key, entries) in &by_key {
            assert_eq!(entries.len(), 2, "{key}");
            assert_eq!(entries[0].id, entries[1].id, "{key}");
            let mut generations: Vec<u64> = entries.iter().map(|e| e.generation).collect();
            generations.sort_unstable();
            assert_eq!(generations, [1, 2], "{key}");
            ids.insert(entries[0].id);
        }
        assert_eq!(ids.len(), 200, "ids are distinct");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_opener_waits_for_the_lock_then_gives_up_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
        let t0 = tokio::time::Instant::now();
        let err = Catalogue::open(dir.path(), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(t0.elapsed() >= Duration::from_secs(2));
        let text = err.to_string();
        assert!(matches!(err, CatalogueError::Locked { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(held);
        Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
    }

    #[tokio::test]
    async fn files_no_key_owns_are_removed_at_open_and_owned_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let c = Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
            let kept = c.wake("t", "kept", true).await.unwrap().unwrap();
            let gone = c.wake("t", "gone", true).await.unwrap().unwrap();
            std::fs::create_dir_all(dir.path().join("t")).unwrap();
            for id in [kept.id, gone.id] {
                for suffix in ["", "-wal"] {
                    std::fs::write(dir.path().join(format!("t/{id}.db{suffix}")), b"x").unwrap();
                }
            }
            // Forgotten, then "crashed" before the files were deleted.
            c.forget("t", "gone").await.unwrap();
            kept
        };
        let _c = Catalogue::open(dir.path(), Duration::ZERO).await.unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("t"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [format!("{}.db", kept.id), format!("{}.db-wal", kept.id)]
        );
    }
}
