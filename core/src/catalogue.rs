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
//! * destroy deletes the row and records the id as destroyed in one
//!   transaction, then deletes the files, then drops the record; a crash in
//!   between leaves a record, and the next start removes that id's files.
//!
//! Start-up never deletes a file it does not know to be a destroyed actor's:
//! it looks only in the directories of the actor types the host registered,
//! removes the files of recorded destroys, and moves any other `{id}.db` no key
//! owns (a catalogue restored from an older backup does not list actors created
//! after it) to `{data_dir}/orphaned/{timestamp}/{type}/`, with a warning per
//! file. Ids are then handed out above every id found, so a quarantined file's
//! id is never given to another key.
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
/// Directory of the data dir where start-up moves actor database files that
/// no key owns: `{data_dir}/orphaned/{timestamp}/{type}/{file}`.
pub const QUARANTINE_DIR_NAME: &str = "orphaned";
/// Version of the catalogue's schema (`PRAGMA user_version`): 1 had `actors`;
/// 2 adds `destroyed`, the record of destroys whose files may not be gone yet.
const SCHEMA_VERSION: i64 = 2;
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
    #[error("catalogue {} is not a SQLite database or is corrupt ({detail}); restore it from a backup (start-up moves actor databases a restored catalogue does not list to {QUARANTINE_DIR_NAME}/ in the data dir, it never deletes them) or move the data dir away", path.display())]
    Corrupt {
        /// The catalogue file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The catalogue file is sound but another process holds a lock on it: an
    /// actor-host on the same data dir whose lock file was removed, or a tool.
    #[error("catalogue {} is in use by another process ({detail}); is another actor-host running on this data dir (its {LOCK_FILE_NAME} removed)? Stop it first; the catalogue itself is not damaged", path.display())]
    Busy {
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
    #[error("{count} actor database file(s) such as {} exist but there is no catalogue at {}; refusing to hand them to new keys (restore the catalogue, and start-up moves any file it does not list to {QUARANTINE_DIR_NAME}/ in the data dir, or move the files away)", example.display(), path.display())]
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
    /// The files of a destroyed id are gone: its record can go too.
    FilesRemoved { id: u64 },
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
    /// creates the catalogue, checks it, and settles the files of the `types`
    /// directories: removes those of recorded destroys, quarantines those no
    /// key owns. Other directories are not looked at.
    pub(crate) async fn open(
        data_dir: &Path,
        types: &[&'static str],
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
        let types = types.to_vec();
        let conn =
            tokio::task::spawn_blocking(move || open_checked(&dir, &dir.join(FILE_NAME), &types))
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

    /// Removes the key durably and records its id as destroyed until
    /// [`Catalogue::files_removed`]; returns what it was, `None` if it was unknown.
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

    /// Drops the destroy record of `id` once its files are gone. Not waited
    /// for: if it is lost, the next start removes the (absent) files again.
    pub(crate) fn files_removed(&self, name: &'static str, id: u64) {
        let (reply, _) = oneshot::channel();
        let _ = self.jobs.send(Job {
            op: Op::FilesRemoved { id },
            name,
            key: String::new(),
            reply,
        });
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

/// What opening the catalogue's SQLite file reported, by SQLite's error code:
/// a lock held by another process is not damage.
fn open_error(path: &Path, e: rusqlite::Error) -> CatalogueError {
    use rusqlite::ErrorCode;
    let path = path.to_owned();
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            CatalogueError::Busy { path, detail }
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            CatalogueError::Corrupt { path, detail }
        }
        _ => CatalogueError::Sqlite { path, detail },
    }
}

/// Opens the catalogue, refusing a damaged, locked or newer one, and a missing
/// one next to existing actor databases; creates or upgrades the schema; then
/// settles the files of the `types` directories ([`settle_files`]).
fn open_checked(
    dir: &Path,
    path: &Path,
    types: &[&'static str],
) -> Result<Connection, CatalogueError> {
    let checked = |e: rusqlite::Error| open_error(path, e);
    let sqlite = |e: rusqlite::Error| CatalogueError::Sqlite {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let mut conn = Connection::open(path).map_err(checked)?;
    // Nothing is written before the file has proved to be a sound database: a
    // broken catalogue stays as it was found, for whoever repairs it.
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| {
        r.get::<_, String>(0)
    })
    .map_err(checked)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(checked)?;
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(checked)?;
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
        refuse_uncatalogued(dir, path, types)?;
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(checked)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite)?;
    if version < SCHEMA_VERSION {
        let tx = conn.transaction().map_err(sqlite)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS actors (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                actor_name TEXT NOT NULL,
                actor_key TEXT NOT NULL,
                generation INTEGER NOT NULL,
                UNIQUE (actor_name, actor_key)
            );
            CREATE TABLE IF NOT EXISTS destroyed (
                id INTEGER PRIMARY KEY,
                actor_name TEXT NOT NULL
            );
            PRAGMA user_version = 2;",
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
    settle_files(dir, types, &mut conn).map_err(sqlite)?;
    Ok(conn)
}

/// A database file of one of the host's actor types.
struct DbFile {
    type_name: &'static str,
    id: u64,
    path: PathBuf,
}

/// Database files (`{id}.db`, `-wal`, `-shm`) in the directories of `types`,
/// and nowhere else: a copy such as `counter.bak/` is not the host's.
fn database_files(dir: &Path, types: &[&'static str]) -> Vec<DbFile> {
    let mut found = Vec::new();
    for &type_name in types {
        let Ok(files) = std::fs::read_dir(dir.join(type_name)) else {
            continue;
        };
        for file in files.flatten() {
            if let Some(id) = database::id_of(&file.file_name().to_string_lossy()) {
                found.push(DbFile {
                    type_name,
                    id,
                    path: file.path(),
                });
            }
        }
    }
    found
}

fn refuse_uncatalogued(
    dir: &Path,
    path: &Path,
    types: &[&'static str],
) -> Result<(), CatalogueError> {
    let files = database_files(dir, types);
    match files.first() {
        None => Ok(()),
        Some(first) => Err(CatalogueError::Uncatalogued {
            path: path.to_owned(),
            count: files.len(),
            example: first.path.clone(),
        }),
    }
}

/// Brings the `types` directories in line with the catalogue, deleting only
/// what a recorded destroy asked for:
///
/// * the files of each id recorded as destroyed are removed (a destroy that a
///   crash interrupted), then its record;
/// * any other database file whose id no key of that type owns is moved to
///   [`QUARANTINE_DIR_NAME`], with a warning naming it;
/// * ids are handed out above every id found, so none of those files' ids is
///   ever given to another key.
fn settle_files(dir: &Path, types: &[&'static str], conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut removed = 0usize;
    {
        let mut destroyed = tx.prepare("SELECT id, actor_name FROM destroyed")?;
        let records = destroyed
            .query_map([], |r| Ok((unsigned(r, 0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut forget = tx.prepare("DELETE FROM destroyed WHERE id = ?1")?;
        for (id, name) in records {
            // A type this host does not run: its directory is not looked at.
            let Some(type_name) = types.iter().find(|t| **t == name) else {
                continue;
            };
            let path = database::path(dir, type_name, id);
            let existed = path.exists();
            match database::remove(&path) {
                Ok(()) => {
                    forget.execute([i64::try_from(id).unwrap_or(i64::MAX)])?;
                    removed += usize::from(existed);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a destroyed actor's files; trying again at the next start");
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            actors = removed,
            "removed the files of actors whose destroy a crash interrupted"
        );
    }
    let mut quarantine = Quarantine::new(dir);
    let mut max_id = 0;
    {
        let mut owned =
            tx.prepare("SELECT EXISTS (SELECT 1 FROM actors WHERE id = ?1 AND actor_name = ?2)")?;
        for file in database_files(dir, types) {
            max_id = max_id.max(file.id);
            let id_sql = i64::try_from(file.id).unwrap_or(i64::MAX);
            if !owned.query_row(rusqlite::params![id_sql, file.type_name], |r| {
                r.get::<_, bool>(0)
            })? {
                quarantine.take(&file);
            }
        }
    }
    if max_id > 0 {
        let seq = i64::try_from(max_id).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'actors', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'actors')",
            [],
        )?;
        tx.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'actors'",
            [seq],
        )?;
    }
    tx.commit()
}

/// Where start-up moves database files no key owns: one directory per start,
/// made on the first file.
struct Quarantine {
    root: PathBuf,
    dir: Option<PathBuf>,
}

impl Quarantine {
    fn new(data_dir: &Path) -> Self {
        Quarantine {
            root: data_dir.join(QUARANTINE_DIR_NAME),
            dir: None,
        }
    }

    /// Moves `file` into this start's directory, under its type; a file that
    /// cannot be moved stays where it is (its id is never handed out again).
    fn take(&mut self, file: &DbFile) {
        let moved = self.dir().and_then(|dir| {
            let to = dir.join(file.type_name);
            std::fs::create_dir_all(&to)?;
            let to = to.join(file.path.file_name().unwrap_or_default());
            std::fs::rename(&file.path, &to)?;
            Ok(to)
        });
        match moved {
            Ok(to) => tracing::warn!(
                file = %file.path.display(),
                moved_to = %to.display(),
                "an actor database file that no key in the catalogue owns was moved to quarantine, not deleted (a catalogue restored from an older backup does not list newer actors)"
            ),
            Err(e) => tracing::warn!(
                file = %file.path.display(),
                error = %e,
                "an actor database file that no key in the catalogue owns could not be moved to quarantine; left in place"
            ),
        }
    }

    /// This start's directory, `{root}/{UTC timestamp}` (with a suffix if a
    /// start in the same second made one).
    fn dir(&mut self) -> std::io::Result<&Path> {
        if self.dir.is_none() {
            std::fs::create_dir_all(&self.root)?;
            let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .chars()
                .filter(|c| !matches!(c, '-' | ':'))
                .collect();
            let mut n = 0;
            let dir = loop {
                let name = if n == 0 {
                    stamp.clone()
                } else {
                    format!("{stamp}.{n}")
                };
                let dir = self.root.join(name);
                match std::fs::create_dir(&dir) {
                    Ok(()) => break dir,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                    Err(e) => return Err(e),
                }
            };
            self.dir = Some(dir);
        }
        Ok(self.dir.as_deref().unwrap_or(&self.root))
    }
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
        Op::Forget => {
            let forgotten = tx
                .prepare_cached(
                    "DELETE FROM actors WHERE actor_name = ?1 AND actor_key = ?2 RETURNING id, generation",
                )?
                .query_row(params, entry)
                .optional()?;
            if let Some(e) = forgotten {
                tx.prepare_cached("INSERT INTO destroyed (id, actor_name) VALUES (?1, ?2)")?
                    .execute(rusqlite::params![
                        i64::try_from(e.id).unwrap_or(i64::MAX),
                        job.name
                    ])?;
            }
            Ok(forgotten)
        }
        Op::FilesRemoved { id } => {
            tx.prepare_cached("DELETE FROM destroyed WHERE id = ?1")?
                .execute([i64::try_from(id).unwrap_or(i64::MAX)])?;
            Ok(None)
        }
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

    const TYPES: &[&str] = &["t", "u"];

    /// Opens the catalogue of `dir` for the types `t` and `u`, without waiting for the lock.
    async fn open(dir: &Path) -> Catalogue {
        Catalogue::open(dir, TYPES, Duration::ZERO).await.unwrap()
    }

    #[tokio::test]
    async fn ids_are_stable_per_key_never_reused_and_generations_persist() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let c = open(dir.path()).await;
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
        let c = open(dir.path()).await;
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
        let c = std::sync::Arc::new(open(dir.path()).await);
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
        let held = open(dir.path()).await;
        let t0 = tokio::time::Instant::now();
        let err = Catalogue::open(dir.path(), TYPES, Duration::from_secs(2))
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
        open(dir.path()).await;
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test]
    async fn start_up_removes_only_recorded_destroys_and_quarantines_unknown_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, bytes: &[u8]| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        let (kept, gone) = {
            let c = open(dir.path()).await;
            let kept = c.wake("t", "kept", true).await.unwrap().unwrap();
            let gone = c.wake("t", "gone", true).await.unwrap().unwrap();
            for id in [kept.id, gone.id] {
                for suffix in ["", "-wal"] {
                    write(&format!("t/{id}.db{suffix}"), b"x");
                }
            }
            // Forgotten (the destroy is recorded), then "crashed" before the
            // files were deleted.
            c.forget("t", "gone").await.unwrap();
            (kept, gone)
        };
        // Files the catalogue never listed (a catalogue restored from an older
        // backup), a copy of a type directory, a type this host does not run.
        write("t/99.db", b"newer actor");
        write("t/99.db-wal", b"its wal");
        write("t.bak/1.db", b"copy");
        write("v/7.db", b"other type");

        let c = open(dir.path()).await;
        let k = kept.id;
        assert_eq!(
            names(&dir.path().join("t")),
            [format!("{k}.db"), format!("{k}.db-wal")]
        );
        assert!(
            !names(&dir.path().join("t"))
                .iter()
                .any(|n| n.starts_with(&format!("{}.", gone.id)))
        );
        // Quarantined with their contents, not deleted.
        let starts = names(&dir.path().join(QUARANTINE_DIR_NAME));
        assert_eq!(starts.len(), 1, "{starts:?}");
        let moved = dir
            .path()
            .join(QUARANTINE_DIR_NAME)
            .join(&starts[0])
            .join("t");
        assert_eq!(names(&moved), ["99.db", "99.db-wal"]);
        assert_eq!(std::fs::read(moved.join("99.db")).unwrap(), b"newer actor");
        // Directories of no registered type are not looked at.
        assert_eq!(
            std::fs::read(dir.path().join("t.bak/1.db")).unwrap(),
            b"copy"
        );
        assert_eq!(
            std::fs::read(dir.path().join("v/7.db")).unwrap(),
            b"other type"
        );
        // A quarantined file's id is never handed to another key.
        let fresh = c.wake("t", "fresh", true).await.unwrap().unwrap();
        assert!(fresh.id > 99, "{fresh:?}");
    }

    #[tokio::test]
    async fn a_completed_destroy_moves_nothing_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = open(dir.path()).await;
            let e = c.wake("t", "a", true).await.unwrap().unwrap();
            c.forget("t", "a").await.unwrap();
            c.files_removed("t", e.id);
            // Any later request is committed after it.
            c.lookup("t", "a").await.unwrap();
        }
        let _c = open(dir.path()).await;
        assert!(!dir.path().join(QUARANTINE_DIR_NAME).exists());
    }

    #[tokio::test]
    async fn a_schema_1_catalogue_is_upgraded_and_its_unlisted_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As a host of schema 1 left it: no record of destroys.
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            conn.execute_batch(
                "CREATE TABLE actors (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    actor_name TEXT NOT NULL,
                    actor_key TEXT NOT NULL,
                    generation INTEGER NOT NULL,
                    UNIQUE (actor_name, actor_key)
                );
                INSERT INTO actors (actor_name, actor_key, generation) VALUES ('t', 'old', 3);
                PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/1.db"), b"owned").unwrap();
        std::fs::write(dir.path().join("t/2.db"), b"unlisted").unwrap();
        let c = open(dir.path()).await;
        let old = c.wake("t", "old", false).await.unwrap().unwrap();
        assert_eq!((old.id, old.generation), (1, 4));
        assert_eq!(names(&dir.path().join("t")), ["1.db"]);
        // Schema 1 could not say whether 2.db was destroyed: it is kept aside.
        let starts = names(&dir.path().join(QUARANTINE_DIR_NAME));
        let moved = dir.path().join(QUARANTINE_DIR_NAME).join(&starts[0]);
        assert_eq!(std::fs::read(moved.join("t/2.db")).unwrap(), b"unlisted");
        // Destroys are recorded from now on.
        c.forget("t", "old").await.unwrap();
    }

    #[tokio::test]
    async fn a_catalogue_locked_by_another_process_is_busy_not_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let held = open(dir.path()).await;
        held.wake("t", "a", true).await.unwrap();
        // Someone removed the lock file: the next opener gets past it.
        std::fs::remove_file(dir.path().join(LOCK_FILE_NAME)).unwrap();
        let err = Catalogue::open(dir.path(), TYPES, Duration::ZERO)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CatalogueError::Busy { .. }), "{text}");
        assert!(text.contains("another actor-host"), "{text}");
        assert!(
            !text.contains("corrupt") && !text.contains("restore"),
            "{text}"
        );
        // Still the sound catalogue it was.
        assert_eq!(
            held.lookup("t", "a").await.unwrap().map(|e| e.generation),
            Some(1)
        );
    }
}
