//! Start-up's side of the catalogue: bringing the actor types' directories in
//! line with it. Only the files of recorded destroys are deleted; any other
//! database file no key owns is moved to [`QUARANTINE_DIR_NAME`], and ids are
//! handed out above every id found within [`MAX_FILE_ID`], reserved durably
//! before the first file moves.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{CatalogueError, MAX_FILE_ID, QUARANTINE_DIR_NAME, unsigned};
use crate::database;

/// A database file of one of the host's actor types.
pub(super) struct DbFile {
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

pub(super) fn refuse_uncatalogued(
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
/// what a recorded destroy asked for, in an order a crash at any point leaves
/// safe:
///
/// 1. the files of each id recorded as destroyed are removed (a destroy that a
///    crash interrupted), then its record;
/// 2. every database file is scanned and the id sequence raised above every id
///    found within [`MAX_FILE_ID`], and that is committed (durably, the
///    catalogue syncs in full) before anything moves;
/// 3. only then is any other database file whose id no key of that type owns
///    moved to [`QUARANTINE_DIR_NAME`], with a warning naming it.
///
/// So a kill during the moves never hands a file's id to a new key, whether
/// that file has moved yet or not. A file whose id is beyond [`MAX_FILE_ID`]
/// is quarantined without moving the sequence: one stray `{huge}.db` must not
/// use up the whole id space.
pub(super) fn settle_files(
    dir: &Path,
    types: &[&'static str],
    conn: &mut Connection,
) -> rusqlite::Result<()> {
    let unowned = reserve_ids(dir, types, conn)?;
    let mut quarantine = Quarantine::new(dir);
    for file in &unowned {
        quarantine.take(file);
    }
    Ok(())
}

/// Steps 1 and 2 of [`settle_files`], committed: removes recorded destroys'
/// files, raises the id sequence above every in-range id found, and returns
/// the files no key owns (to be moved only after this commit).
pub(super) fn reserve_ids(
    dir: &Path,
    types: &[&'static str],
    conn: &mut Connection,
) -> rusqlite::Result<Vec<DbFile>> {
    let tx = conn.transaction()?;
    remove_destroyed(dir, types, &tx)?;
    let mut unowned = Vec::new();
    let mut max_id = 0;
    let mut beyond = 0usize;
    {
        let mut owned =
            tx.prepare("SELECT EXISTS (SELECT 1 FROM actors WHERE id = ?1 AND actor_name = ?2)")?;
        for file in database_files(dir, types) {
            if file.id <= MAX_FILE_ID {
                max_id = max_id.max(file.id);
            } else {
                beyond += 1;
            }
            // An id past i64 is no row's id.
            let is_owned = match i64::try_from(file.id) {
                Ok(id) => owned.query_row(rusqlite::params![id, file.type_name], |r| {
                    r.get::<_, bool>(0)
                })?,
                Err(_) => false,
            };
            if !is_owned {
                unowned.push(file);
            }
        }
    }
    if beyond > 0 {
        tracing::warn!(
            files = beyond,
            max_id = MAX_FILE_ID,
            "actor database files with an id beyond the usable range; ids are not raised for them"
        );
    }
    if max_id > 0 {
        // MAX_FILE_ID (2^53) fits an i64.
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
    tx.commit()?;
    Ok(unowned)
}

/// Step 1 of [`settle_files`]: the files of recorded destroys, then their records.
fn remove_destroyed(
    dir: &Path,
    types: &[&'static str],
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite::Result<()> {
    let mut removed = 0usize;
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
    if removed > 0 {
        tracing::info!(
            actors = removed,
            "removed the files of actors whose destroy a crash interrupted"
        );
    }
    Ok(())
}

/// Where start-up moves database files no key owns: one directory per start,
/// made on the first file.
pub(super) struct Quarantine {
    root: PathBuf,
    dir: Option<PathBuf>,
}

impl Quarantine {
    pub(super) fn new(data_dir: &Path) -> Self {
        Quarantine {
            root: data_dir.join(QUARANTINE_DIR_NAME),
            dir: None,
        }
    }

    /// Moves `file` into this start's directory, under its type; a file that
    /// cannot be moved stays where it is (its id is never handed out again).
    pub(super) fn take(&mut self, file: &DbFile) {
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
