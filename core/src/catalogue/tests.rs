//! The catalogue against real files: ids, generations, destroys, locks and
//! start-up's handling of files no key owns.

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

/// Every `{id}.db` under `root`, at any depth.
fn db_ids_under(root: &Path) -> Vec<u64> {
    let mut ids = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return ids;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            ids.extend(db_ids_under(&path));
        } else if let Some(id) = crate::database::id_of(&e.file_name().to_string_lossy()) {
            ids.push(id);
        }
    }
    ids
}

/// Finding 18.4: a kill while start-up moves unowned files to quarantine.
/// The ids are reserved (committed) before the first move, so whatever
/// point the kill hits, the next key's id is above every file's.
#[tokio::test]
async fn a_crash_halfway_through_the_quarantine_never_hands_out_a_quarantined_id() {
    let dir = tempfile::tempdir().unwrap();
    let owned = {
        let c = open(dir.path()).await;
        c.wake("t", "owned", true).await.unwrap().unwrap()
    };
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    let unowned: Vec<u64> = (owned.id + 1..=owned.id + 200).collect();
    for id in &unowned {
        std::fs::write(dir.path().join(format!("t/{id}.db")), b"").unwrap();
    }
    {
        // Start-up up to the moves, then the first 100 moves, then the kill
        // (the connection dropped with nothing more committed).
        let _lock = lock(&dir.path().join(LOCK_FILE_NAME), Duration::ZERO)
            .await
            .unwrap();
        let path = dir.path().to_owned();
        let files = tokio::task::spawn_blocking(move || {
            let mut conn = connect(&path);
            let files = settle::reserve_ids(&path, TYPES, &mut conn).unwrap();
            let mut quarantine = settle::Quarantine::new(&path);
            for file in &files[..100] {
                quarantine.take(file);
            }
            files.len()
        })
        .await
        .unwrap();
        assert_eq!(files, unowned.len());
    }
    let quarantined = db_ids_under(&dir.path().join(QUARANTINE_DIR_NAME));
    assert_eq!(quarantined.len(), 100, "killed halfway");
    // The next start moves the rest; a new key gets none of their ids.
    let c = open(dir.path()).await;
    let mut all = db_ids_under(&dir.path().join(QUARANTINE_DIR_NAME));
    all.sort_unstable();
    assert_eq!(all, unowned);
    let fresh = c.wake("t", "fresh", true).await.unwrap().unwrap();
    assert_eq!(fresh.id, owned.id + 201);
}

/// Finding 18.5: one stray file with an id past [`MAX_FILE_ID`] is
/// quarantined and leaves the id sequence where it was.
#[tokio::test]
async fn a_file_id_beyond_the_usable_range_is_quarantined_without_raising_ids() {
    let dir = tempfile::tempdir().unwrap();
    let a = {
        let c = open(dir.path()).await;
        c.wake("t", "a", true).await.unwrap().unwrap()
    };
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    for id in [i64::MAX as u64, u64::MAX, MAX_FILE_ID + 1] {
        std::fs::write(dir.path().join(format!("t/{id}.db")), b"").unwrap();
    }
    for restart in 0..2 {
        let c = open(dir.path()).await;
        assert_eq!(names(&dir.path().join("t")), Vec::<String>::new());
        let e = c
            .wake("t", &format!("k{restart}"), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.id, a.id + 1 + restart);
    }
    let mut moved = db_ids_under(&dir.path().join(QUARANTINE_DIR_NAME));
    moved.sort_unstable();
    assert_eq!(moved, [MAX_FILE_ID + 1, i64::MAX as u64, u64::MAX]);
}

/// Finding 18.5: a file holding the last usable id takes the id space up;
/// a create then fails with the typed error, and nothing else does.
#[tokio::test]
async fn at_the_end_of_the_id_space_a_create_is_ids_exhausted_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let c = open(dir.path()).await;
        let a = c.wake("t", "a", true).await.unwrap().unwrap();
        let b = c.wake("t", "b", true).await.unwrap().unwrap();
        (a, b)
    };
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join(format!("t/{MAX_FILE_ID}.db")), b"").unwrap();
    let c = open(dir.path()).await;
    // One batch: a destroy, a create, a wake, a destroy.
    let (forget_a, create, wake_b, forget_none) = tokio::join!(
        c.forget("t", "a"),
        c.wake("t", "new", true),
        c.wake("t", "b", true),
        c.forget("t", "none"),
    );
    assert_eq!(forget_a.unwrap().map(|e| e.id), Some(a.id));
    let err = create.unwrap_err();
    assert!(
        matches!(err, CatalogueError::IdsExhausted { max: MAX_FILE_ID }),
        "{err}"
    );
    assert!(err.to_string().starts_with("ids exhausted"), "{err}");
    assert_eq!(
        wake_b.unwrap().map(|e| (e.id, e.generation)),
        Some((b.id, 2))
    );
    assert_eq!(forget_none.unwrap(), None);
    assert_eq!(c.lookup("t", "a").await.unwrap(), None);
    assert_eq!(c.lookup("t", "new").await.unwrap(), None);
}

/// Adds a trigger that fails an insert of the key `boom` with `action`
/// (`ABORT`: the statement is undone; `ROLLBACK`: SQLite rolls back the
/// whole transaction, as it does for a full disk).
async fn fail_inserts_of_boom(dir: &Path, action: &'static str) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        connect(&dir)
            .execute_batch(&format!(
                "CREATE TRIGGER boom BEFORE INSERT ON actors WHEN NEW.actor_key = 'boom'
                 BEGIN SELECT RAISE({action}, 'boom refused'); END;"
            ))
            .unwrap();
    })
    .await
    .unwrap();
}

/// A connection of its own on the catalogue of `dir`, for a test to change
/// it behind the host's back. Called on the blocking pool: a catalogue just
/// dropped lets go of the file when its task ends, which this waits for.
fn connect(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join(FILE_NAME)).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Finding 18.5: a batch answers each job with that job's own outcome, and
/// the catalogue then holds exactly what the answers say, whether the failing
/// job's error undoes its statement or the whole transaction.
#[tokio::test]
async fn a_batch_answers_each_job_with_its_own_outcome() {
    for action in ["ABORT", "ROLLBACK"] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let c = open(dir.path()).await;
            let a = c.wake("t", "a", true).await.unwrap().unwrap();
            let b = c.wake("t", "b", true).await.unwrap().unwrap();
            (a, b)
        };
        fail_inserts_of_boom(dir.path(), action).await;
        let c = open(dir.path()).await;
        let (forget_a, create_x, boom, forget_b, create_y) = tokio::join!(
            c.forget("t", "a"),
            c.wake("t", "x", true),
            c.wake("t", "boom", true),
            c.forget("t", "b"),
            c.wake("t", "y", true),
        );
        assert_eq!(forget_a.unwrap().map(|e| e.id), Some(a.id), "{action}");
        let x = create_x.unwrap().unwrap();
        let err = boom.unwrap_err();
        assert!(err.to_string().contains("boom refused"), "{action}: {err}");
        assert_eq!(forget_b.unwrap().map(|e| e.id), Some(b.id), "{action}");
        let y = create_y.unwrap().unwrap();
        // What was answered is what the catalogue holds.
        assert_eq!(c.lookup("t", "a").await.unwrap(), None, "{action}");
        assert_eq!(c.lookup("t", "b").await.unwrap(), None, "{action}");
        assert_eq!(c.lookup("t", "boom").await.unwrap(), None, "{action}");
        assert_eq!(c.lookup("t", "x").await.unwrap(), Some(x), "{action}");
        assert_eq!(c.lookup("t", "y").await.unwrap(), Some(y), "{action}");
        // And it stays so after a restart.
        drop(c);
        let c = open(dir.path()).await;
        assert_eq!(c.lookup("t", "a").await.unwrap(), None, "{action}");
        assert_eq!(c.lookup("t", "x").await.unwrap(), Some(x), "{action}");
    }
}
