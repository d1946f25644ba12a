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
//! * ids stay within `1..=`[`MAX_FILE_ID`] (2^53, so an id is exact as a JSON
//!   number read into an `f64`); once the sequence reaches it, a create of a
//!   new key answers [`CatalogueError::IdsExhausted`] (existing keys go on);
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
//! file. Before the first file moves, the id sequence is raised above every id
//! found and committed, so a quarantined file's id is never given to another
//! key, even when the host is killed halfway through the moves. A file whose
//! id is beyond [`MAX_FILE_ID`] is quarantined without raising the sequence.
//!
//! One process at a time: a lock file (`catalogue.lock`, holding the owner's
//! pid) is taken before the catalogue is opened; a second host on the same
//! directory waits for it up to a timeout, and is not ready meanwhile.
//!
//! SQLite work runs on tokio's blocking pool, one transaction at a time, so a
//! sync to disk never stalls the runtime; requests that arrive while one
//! transaction syncs are committed together in the next (one sync for many
//! creates). Each request of such a batch runs in its own `SAVEPOINT`, so one
//! that fails is undone alone and answered with its own error, and every other
//! is answered with its own outcome.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

mod error;
mod settle;

pub use error::CatalogueError;

use settle::{refuse_uncatalogued, settle_files};

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
/// The largest id the catalogue hands out, and the largest a file's id may be
/// to raise the id sequence at start-up: 2^53, the largest integer an `f64`
/// (a JSON number, as most clients read it) holds exactly with all below it.
pub const MAX_FILE_ID: u64 = 1 << 53;
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

/// Why one job of a batch failed.
#[derive(Debug, Clone)]
enum JobFailure {
    /// A new key, and the sequence has reached [`MAX_FILE_ID`].
    IdsExhausted,
    /// What SQLite reported.
    Sqlite(String),
}

impl From<rusqlite::Error> for JobFailure {
    fn from(e: rusqlite::Error) -> Self {
        JobFailure::Sqlite(e.to_string())
    }
}

impl JobFailure {
    fn into_error(self, path: &Path) -> CatalogueError {
        match self {
            JobFailure::IdsExhausted => CatalogueError::IdsExhausted { max: MAX_FILE_ID },
            JobFailure::Sqlite(detail) => CatalogueError::Sqlite {
                path: path.to_owned(),
                detail,
            },
        }
    }
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
            let answers = run_batch(&mut conn, &batch);
            (conn, batch, answers)
        })
        .await;
        // A panic in SQLite work drops the batch's replies: its callers see Closed.
        let Ok((returned, batch, answers)) = done else {
            return;
        };
        conn = returned;
        for (job, answer) in batch.into_iter().zip(answers) {
            let _ = job.reply.send(answer.map_err(|f| f.into_error(&path)));
        }
    }
}

type Answer = Result<Option<Entry>, JobFailure>;

/// Runs the jobs of `batch` in one transaction, each in its own savepoint, and
/// returns each job's own outcome, in order:
///
/// * a job that fails is rolled back to its savepoint, alone, and answered
///   with its error; the others go on;
/// * a failure SQLite answers by rolling back the whole transaction (it does
///   so for some errors, such as a full disk) fails that job, and the batch is
///   run again without it, so the jobs before it are not answered with a
///   result that was undone;
/// * a failure of the transaction itself (begin, commit) fails every job not
///   already failed: none of them took effect.
fn run_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Answer> {
    let mut failed: Vec<Option<JobFailure>> = vec![None; batch.len()];
    loop {
        match try_batch(conn, batch, &mut failed) {
            Attempt::Committed(mut answers) => {
                for (answer, failure) in answers.iter_mut().zip(&mut failed) {
                    if let Some(f) = failure.take() {
                        *answer = Err(f);
                    }
                }
                return answers;
            }
            // One more job is marked failed: at most one retry per job.
            Attempt::Again => continue,
            Attempt::Failed(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return failed
                    .into_iter()
                    .map(|f| Err(f.unwrap_or_else(|| e.clone())))
                    .collect();
            }
        }
    }
}

/// How one pass over a batch ended.
enum Attempt {
    /// Committed; the answers of the jobs not failed before.
    Committed(Vec<Answer>),
    /// A job's failure rolled back the whole transaction; it is marked failed.
    Again,
    /// The transaction itself failed; nothing of this pass took effect.
    Failed(JobFailure),
}

/// One pass of [`run_batch`] over the jobs not yet `failed`.
fn try_batch(conn: &Connection, batch: &[Job], failed: &mut [Option<JobFailure>]) -> Attempt {
    let run = |sql: &str| conn.execute_batch(sql).map_err(JobFailure::from);
    if let Err(e) = run("BEGIN IMMEDIATE") {
        return Attempt::Failed(e);
    }
    let mut answers = Vec::with_capacity(batch.len());
    for (job, failure) in batch.iter().zip(failed.iter_mut()) {
        if failure.is_some() {
            answers.push(Ok(None));
            continue;
        }
        if let Err(e) = run("SAVEPOINT job") {
            return Attempt::Failed(e);
        }
        match apply(conn, job) {
            Ok(entry) => {
                if let Err(e) = run("RELEASE job") {
                    return Attempt::Failed(e);
                }
                answers.push(Ok(entry));
            }
            Err(e) => {
                *failure = Some(e);
                if conn.is_autocommit() {
                    return Attempt::Again;
                }
                if let Err(e) = run("ROLLBACK TO job; RELEASE job") {
                    return Attempt::Failed(e);
                }
                answers.push(Ok(None));
            }
        }
    }
    match run("COMMIT") {
        Ok(()) => Attempt::Committed(answers),
        Err(e) => Attempt::Failed(e),
    }
}

/// Column `i` as the non-negative integer the schema only ever stores there.
fn unsigned(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn apply(tx: &Connection, job: &Job) -> Result<Option<Entry>, JobFailure> {
    let params = rusqlite::params![job.name, job.key];
    let entry = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Entry> {
        Ok(Entry {
            id: unsigned(r, 0)?,
            generation: unsigned(r, 1)?,
        })
    };
    match job.op {
        Op::Wake { create } => {
            let woken = tx
                .prepare_cached(
                    "UPDATE actors SET generation = generation + 1
                     WHERE actor_name = ?1 AND actor_key = ?2 RETURNING id, generation",
                )?
                .query_row(params, entry)
                .optional()?;
            if woken.is_some() || !create {
                return Ok(woken);
            }
            // Checked before the insert: at the end of the id space SQLite
            // answers the insert with SQLITE_FULL, which rolls back the whole
            // transaction, and the id would be past what JSON holds exactly.
            let seq: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'actors'",
                )?
                .query_row([], |r| r.get(0))?;
            if u64::try_from(seq).map_or(true, |s| s >= MAX_FILE_ID) {
                return Err(JobFailure::IdsExhausted);
            }
            Ok(Some(
                tx.prepare_cached(
                    "INSERT INTO actors (actor_name, actor_key, generation) VALUES (?1, ?2, 1)
                     RETURNING id, generation",
                )?
                .query_row(params, entry)?,
            ))
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
        Op::Lookup => Ok(tx
            .prepare_cached(
                "SELECT id, generation FROM actors WHERE actor_name = ?1 AND actor_key = ?2",
            )?
            .query_row(params, entry)
            .optional()?),
    }
}

#[cfg(test)]
mod tests;
