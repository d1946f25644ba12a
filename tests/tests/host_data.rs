//! The host's data through restarts, destroys and crashes, on the real binary:
//! every key reads back its own value, a destroyed key's data never resurfaces,
//! and no database file is left behind by a destroy whatever the actor was doing.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use actor_e2e_tests::{Host, actor_host_bin, wait_for};
use serde_json::json;

const KEYS: usize = 60;

fn increment(host: &Host, key: &str, by: i64) -> (u16, serde_json::Value) {
    host.post(
        &format!("/actors/counter/{key}/actions/increment"),
        &json!({ "by": by }).to_string(),
    )
}

fn get(host: &Host, key: &str) -> Option<i64> {
    let (status, body) = host.post(&format!("/actors/counter/{key}/actions/get"), "{}");
    assert_eq!(status, 200, "get {key}: {body}");
    body["result"]["value"].as_i64()
}

/// Creates `KEYS` keys, each holding a value of its own; returns key -> (id, value).
fn fill(host: &Host) -> HashMap<String, (String, i64)> {
    (0..KEYS)
        .map(|i| {
            let key = format!("user-{i}");
            let (status, created) = host.post(&format!("/actors/counter/{key}"), "");
            assert_eq!(status, 200, "{created}");
            let value = 1000 + 7 * i as i64;
            assert_eq!(increment(host, &key, value).0, 200);
            let id = created["actor_id"].as_str().expect("actor_id").to_owned();
            (key, (id, value))
        })
        .collect()
}

/// Reads every key back through a fresh create (which wakes it): its own id, a
/// generation above `min_generation`, and its own value.
fn check(host: &Host, expected: &HashMap<String, (String, i64)>, min_generation: u64) {
    let mut wrong = Vec::new();
    for (key, (id, value)) in expected {
        let (status, woken) = host.post(&format!("/actors/counter/{key}"), "");
        assert_eq!(status, 200, "{woken}");
        assert_eq!(woken["actor_id"].as_str(), Some(id.as_str()), "{key}");
        let generation = woken["generation"].as_u64().expect("generation");
        assert!(
            generation > min_generation,
            "{key}: generation {generation}"
        );
        if get(host, key) != Some(*value) {
            wrong.push(key.clone());
        }
    }
    assert!(
        wrong.is_empty(),
        "{} keys read another value: {wrong:?}",
        wrong.len()
    );
}

/// `.db`, `-wal` and `-shm` files under the host's `counter` directory.
fn actor_files(data: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data.join("counter")) else {
        return Vec::new();
    };
    let mut files: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db") || n.ends_with(".db-wal") || n.ends_with(".db-shm"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_key_reads_its_own_value_after_sigkill_and_sigterm_restarts() {
    let data = tempfile::tempdir().unwrap();
    let args = ["--workload", "none"];
    let host = Host::start_in(data.path(), &args);
    let expected = fill(&host);
    host.kill();

    // After a crash: same ids, new generations (a new label set), own values.
    let host = Host::start_in(data.path(), &args);
    check(&host, &expected, 1);
    // Keys created after the restart never get an id of before.
    let (_, fresh) = host.post("/actors/counter/after-kill", "");
    let fresh_id = fresh["actor_id"].as_str().unwrap().to_owned();
    assert!(
        expected.values().all(|(id, _)| *id != fresh_id),
        "id {fresh_id} reused"
    );
    assert_eq!(get(&host, "after-kill"), Some(0));
    assert!(host.terminate().success());

    // After a clean stop: the same again, one generation further.
    let host = Host::start_in(data.path(), &args);
    check(&host, &expected, 2);
    assert_eq!(get(&host, "after-kill"), Some(0));
}

#[test]
fn a_destroyed_key_comes_back_empty_and_no_other_key_loses_its_file() {
    let data = tempfile::tempdir().unwrap();
    let args = ["--workload", "none"];
    let host = Host::start_in(data.path(), &args);
    let expected = fill(&host);
    let files_before = actor_files(data.path());

    let (doomed, (doomed_id, _)) = expected
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(host.delete(&format!("/actors/counter/{doomed}")).0, 200);
    let files_after = actor_files(data.path());
    let gone: Vec<_> = files_before
        .iter()
        .filter(|f| !files_after.contains(f))
        .collect();
    assert!(
        gone.iter()
            .all(|f| f.starts_with(&format!("{doomed_id}.db"))),
        "destroying {doomed} ({doomed_id}) removed {gone:?}"
    );
    assert!(
        !files_after
            .iter()
            .any(|f| f.starts_with(&format!("{doomed_id}.db")))
    );

    // Recreated: a new id and an empty database, before and after a restart.
    let (_, again) = host.post(&format!("/actors/counter/{doomed}"), "");
    assert_ne!(again["actor_id"].as_str(), Some(doomed_id.as_str()));
    assert_eq!(get(&host, &doomed), Some(0));
    host.kill();
    let host = Host::start_in(data.path(), &args);
    assert_eq!(get(&host, &doomed), Some(0));
    let rest: HashMap<_, _> = expected.into_iter().filter(|(k, _)| *k != doomed).collect();
    check(&host, &rest, 1);

    // Destroyed while asleep (not live in this process): gone too, and 404 after.
    let (sleeper, (sleeper_id, _)) = rest
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(
        host.post(&format!("/actors/counter/{sleeper}/sleep"), "").0,
        200
    );
    assert_eq!(host.delete(&format!("/actors/counter/{sleeper}")).0, 200);
    assert_eq!(host.delete(&format!("/actors/counter/{sleeper}")).0, 404);
    assert!(
        !actor_files(data.path())
            .iter()
            .any(|f| f.starts_with(&format!("{sleeper_id}.db")))
    );
}

#[test]
fn a_panic_racing_a_delete_leaves_no_file_behind() {
    let host = Host::start(&["--workload", "none", "--shutdown-timeout", "1s"]);
    let rounds = 40;
    for round in 0..rounds {
        let key = format!("race-{round}");
        assert_eq!(host.post(&format!("/actors/counter/{key}"), "").0, 200);
        // A slow action holds the actor; a panic and a DELETE queue behind it.
        // Whatever order they land in, the DELETE must remove the files.
        let (app, k) = (host.app, key.clone());
        let slow = std::thread::spawn(move || {
            post_raw(
                app,
                &format!("/actors/counter/{k}/actions/slow"),
                r#"{"ms": 30}"#,
            )
        });
        let (app, k) = (host.app, key.clone());
        let panic = std::thread::spawn(move || {
            post_raw(app, &format!("/actors/counter/{k}/actions/panic"), "{}")
        });
        if round % 2 == 0 {
            // Half the rounds also spawn a user task the stop has to drain.
            let _ = host.post(
                &format!("/actors/counter/{key}/actions/spawn_task"),
                r#"{"kind": "keep_awake", "ms": 60000}"#,
            );
        }
        let (status, body) = host.delete(&format!("/actors/counter/{key}"));
        assert_eq!((status, &body), (200, &json!({"destroyed": true})));
        let slow = slow.join().unwrap();
        assert!(matches!(slow, 200 | 404 | 503), "slow: {slow}");
        let panic = panic.join().unwrap();
        assert!(matches!(panic, 404 | 500 | 503), "panic: {panic}");
        assert_eq!(host.delete(&format!("/actors/counter/{key}")).0, 404);
    }
    // Every key was destroyed: not one database file may be left.
    wait_for(Duration::from_secs(10), "no live actors", || {
        let (_, list) = host.get("/actors");
        (list["actors"].as_array().map(Vec::len) == Some(0)).then_some(())
    });
    let orphans = actor_files(host.data_dir());
    assert!(orphans.is_empty(), "{} orphans: {orphans:?}", orphans.len());
}

/// POSTs and returns only the status (the body may be an error of any kind).
fn post_raw(app: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    match ureq::post(&format!("http://{app}{path}"))
        .set("content-type", "application/json")
        .send_string(body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Starts the binary on `data`, expecting a startup error (exit 2); returns stderr.
fn start_fails(data: &Path) -> String {
    let out = std::process::Command::new(actor_host_bin())
        .args(["--workload", "none", "--duration", "30s"])
        .args(["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run actor-host");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_corrupt_catalogue_is_a_one_line_startup_error_and_stays_untouched() {
    let data = tempfile::tempdir().unwrap();
    let garbage = vec![0x5a_u8; 8192];
    std::fs::write(data.path().join("catalogue.db"), &garbage).unwrap();
    let stderr = start_fails(data.path());
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("actor-host: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("catalogue"), "{}", errors[0]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read(data.path().join("catalogue.db")).unwrap(),
        garbage,
        "a broken catalogue is never rewritten"
    );
}

#[test]
fn actor_databases_without_a_catalogue_are_refused_not_reused() {
    // A data dir with actor files but no catalogue (an older host, or a deleted
    // catalogue): starting on it must not hand those files to new keys.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("counter")).unwrap();
    std::fs::write(data.path().join("counter").join("1.db"), b"").unwrap();
    let stderr = start_fails(data.path());
    assert!(stderr.contains("catalogue"), "{stderr}");
}

/// Copies the catalogue's files (the database and its WAL, if any) from
/// `from` to `to`, as a backup or a restore does; a WAL `from` lacks is removed.
fn copy_catalogue(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["catalogue.db", "catalogue.db-wal"] {
        match std::fs::copy(from.join(name), to.join(name)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(to.join(name));
            }
            Err(e) => panic!("copy {name}: {e}"),
        }
    }
}

/// Every file under `dir`, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_owned();
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn restoring_an_older_catalogue_quarantines_newer_actors_files_and_leaves_copies_alone() {
    let data = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let args = ["--workload", "none"];
    let host = Host::start_in(data.path(), &args);
    for key in ["a", "b"] {
        assert_eq!(host.post(&format!("/actors/counter/{key}"), "").0, 200);
        assert_eq!(increment(&host, key, 7).0, 200);
    }
    assert!(host.terminate().success());
    copy_catalogue(data.path(), backup.path());

    let host = Host::start_in(data.path(), &args);
    let (_, newer) = host.post("/actors/counter/newer", "");
    let newer_id = newer["actor_id"].as_str().unwrap().to_owned();
    assert_eq!(increment(&host, "newer", 1000).0, 200);
    assert!(host.terminate().success());

    // The restore the catalogue's error messages advise, and a copy of the
    // type directory kept inside the data dir.
    copy_catalogue(backup.path(), data.path());
    let counter = data.path().join("counter");
    let copy = data.path().join("counter.bak");
    std::fs::create_dir_all(&copy).unwrap();
    for f in actor_files(data.path()) {
        std::fs::copy(counter.join(&f), copy.join(&f)).unwrap();
    }
    let copied = tree(&copy);
    assert!(copied.contains(&format!("{newer_id}.db")), "{copied:?}");

    let host = Host::start_logged(data.path(), &args);
    // The restored keys read back; the newer actor is unknown to the
    // catalogue, and its file was moved aside with a warning, not deleted.
    for key in ["a", "b"] {
        assert_eq!(get(&host, key), Some(7));
    }
    assert_eq!(host.post("/actors/counter/newer/actions/get", "{}").0, 404);
    let quarantined: Vec<String> = tree(&data.path().join("orphaned"))
        .into_iter()
        .filter(|f| f.ends_with(&format!("counter/{newer_id}.db")))
        .collect();
    assert_eq!(quarantined.len(), 1, "{:?}", tree(data.path()));
    let log = host.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&format!("counter/{newer_id}.db")))
        .unwrap_or_else(|| panic!("no warning naming the file in {log}"));
    assert!(warning.contains("quarantine"), "{warning}");
    assert_eq!(tree(&copy), copied, "counter.bak is not the host's");
    // A key created now never gets the quarantined file's id.
    let (_, fresh) = host.post("/actors/counter/fresh", "");
    let fresh_id: u64 = fresh["actor_id"].as_str().unwrap().parse().unwrap();
    assert!(fresh_id > newer_id.parse().unwrap(), "{fresh}");
    assert_eq!(get(&host, "fresh"), Some(0));
}

#[test]
fn a_catalogue_held_by_a_host_whose_lock_file_was_removed_is_in_use_not_corrupt() {
    let data = tempfile::tempdir().unwrap();
    let first = Host::start_in(data.path(), &["--workload", "none"]);
    assert_eq!(first.post("/actors/counter/a", "").0, 200);
    std::fs::remove_file(data.path().join("catalogue.lock")).unwrap();
    let stderr = start_fails(data.path());
    let line = stderr
        .lines()
        .find(|l| l.starts_with("actor-host: error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("in use by another process"), "{line}");
    assert!(
        !line.contains("corrupt") && !line.contains("restore"),
        "{line}"
    );
    // The running host is unharmed.
    assert_eq!(get(&first, "a"), Some(0));
}
