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
