//! Ids and label values on the binary (issue 18, findings 4 to 6): a kill
//! during start-up's quarantine, one stray huge-numbered file, a batch with
//! a failing create, and `actor_key` values that two actors could share. Each
//! test failed on the build before the fix
//! (`ACTOR_HOST=old-binary cargo test --release --test host_ids`).

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use actor_e2e_tests::Host;

/// 2^53: the last id the catalogue hands out.
const MAX_FILE_ID: u64 = 1 << 53;

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
        } else if let Some(id) = e
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".db"))
            .and_then(|n| n.parse().ok())
        {
            ids.push(id);
        }
    }
    ids
}

fn create(host: &Host, key: &str) -> (u16, serde_json::Value) {
    host.post(&format!("/actors/counter/{key}"), "")
}

fn id_of(created: &serde_json::Value) -> u64 {
    created["actor_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no actor_id in {created}"))
}

/// Whether the catalogue still knows `key`: a call to an unknown key is 404.
fn exists(host: &Host, key: &str) -> bool {
    match host
        .post(&format!("/actors/counter/{key}/actions/get"), "")
        .0
    {
        200 => true,
        404 => false,
        other => panic!("get {key}: {other}"),
    }
}

/// A data dir whose catalogue holds `keys` (ids 1..), the host stopped.
fn catalogue_with(dir: &Path, keys: &[String]) -> Vec<u64> {
    let host = Host::start_in(dir, &["--workload", "none"]);
    let ids = keys
        .iter()
        .map(|k| {
            let (status, body) = create(&host, k);
            assert_eq!(status, 200, "{body}");
            id_of(&body)
        })
        .collect();
    assert!(host.terminate().success());
    ids
}

type Answers = Vec<(u16, serde_json::Value)>;

/// Destroys every one of `keys` and creates `new0`..`new9`, all at once, so
/// the catalogue batches them; each request's answer, in order.
fn storm(host: &Host, keys: &[String]) -> (Answers, Answers) {
    thread::scope(|s| {
        let destroys: Vec<_> = keys
            .iter()
            .map(|k| s.spawn(move || host.delete(&format!("/actors/counter/{k}"))))
            .collect();
        let creates: Vec<_> = (0..10)
            .map(|i| s.spawn(move || create(host, &format!("new{i}"))))
            .collect();
        (
            destroys.into_iter().map(|t| t.join().unwrap()).collect(),
            creates.into_iter().map(|t| t.join().unwrap()).collect(),
        )
    })
}

/// Finding 4: start-up moves 20,000 unowned files to `orphaned/` and is
/// killed at the first moved file. Before, the id sequence was raised only
/// after the moves, so it was still at 1 and new keys got the moved files'
/// ids. Now it is committed above every file's id before the first move.
#[test]
fn a_kill_during_the_quarantine_moves_never_hands_out_a_quarantined_id() {
    let dir = tempfile::tempdir().unwrap();
    let ids = catalogue_with(dir.path(), &["a".to_owned()]);
    assert_eq!(ids, [1]);
    const FILES: u64 = 20_000;
    for id in 2..=FILES + 1 {
        std::fs::write(dir.path().join(format!("counter/{id}.db")), b"").unwrap();
    }
    let host = Host::spawn_in(dir.path(), &["--workload", "none"]);
    let orphaned = dir.path().join("orphaned");
    let deadline = Instant::now() + Duration::from_secs(60);
    while db_ids_under(&orphaned).is_empty() {
        assert!(Instant::now() < deadline, "no file was quarantined");
        thread::yield_now();
    }
    host.kill();
    let moved = db_ids_under(&orphaned).len() as u64;
    assert!(moved < FILES, "the moves ended before the kill ({moved})");
    let seq: i64 = rusqlite::Connection::open(dir.path().join("catalogue.db"))
        .unwrap()
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'actors'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        seq,
        FILES as i64 + 1,
        "ids reserved when the kill came ({moved} moved)"
    );
    let host = Host::start_in(dir.path(), &["--workload", "none"]);
    let mut quarantined = db_ids_under(&orphaned);
    quarantined.sort_unstable();
    assert_eq!(quarantined, (2..=FILES + 1).collect::<Vec<_>>());
    let (status, body) = create(&host, "fresh");
    assert_eq!((status, id_of(&body)), (200, FILES + 2), "{body}");
}

/// Finding 5: an empty `counter/9223372036854775807.db`. Before, it raised
/// the id sequence to i64::MAX and every create answered 500 "cannot commit",
/// restart or not, and destroys batched with a failing create answered 500
/// after removing their key. Now the file is quarantined, ids go on from
/// where they were, and every job of a mixed storm is answered truthfully.
#[test]
fn a_stray_file_with_a_huge_id_is_quarantined_and_creates_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("old{i}")).collect();
    catalogue_with(dir.path(), &keys);
    std::fs::write(dir.path().join(format!("counter/{}.db", i64::MAX)), b"").unwrap();
    let host = Host::start_in(dir.path(), &["--workload", "none"]);
    assert_eq!(
        db_ids_under(&dir.path().join("orphaned")),
        [i64::MAX as u64]
    );
    // Destroys and creates at once, so the catalogue batches them.
    let (destroys, creates) = storm(&host, &keys);
    let mut new_ids = Vec::new();
    for (i, (status, body)) in creates.iter().enumerate() {
        assert_eq!(*status, 200, "create new{i}: {body}");
        new_ids.push(id_of(body));
    }
    new_ids.sort_unstable();
    assert_eq!(new_ids, (41..=50).collect::<Vec<_>>());
    for (k, (status, body)) in keys.iter().zip(&destroys) {
        assert_eq!(*status, 200, "destroy {k}: {body}");
        assert!(!exists(&host, k), "{k} answered 200 and is gone");
    }
    drop(host);
    // And after a restart.
    let host = Host::start_in(dir.path(), &["--workload", "none"]);
    let (status, body) = create(&host, "after-restart");
    assert_eq!((status, id_of(&body)), (200, 51), "{body}");
}

/// Finding 5: a file holding the last usable id (2^53) uses the id space up.
/// Before, ids went on past 2^53 (no longer exact in JSON) up to an SQLite
/// error. Now a create answers 507 naming the cause, while destroys batched
/// with it answer, truthfully, 200.
#[test]
fn when_ids_run_out_a_create_is_507_and_batched_destroys_answer_their_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("old{i}")).collect();
    catalogue_with(dir.path(), &keys);
    std::fs::write(dir.path().join(format!("counter/{MAX_FILE_ID}.db")), b"").unwrap();
    let host = Host::start_in(dir.path(), &["--workload", "none"]);
    let (destroys, creates) = storm(&host, &keys);
    for (i, (status, body)) in creates.iter().enumerate() {
        assert_eq!(*status, 507, "create new{i}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("ids exhausted"), "{body}");
        assert!(!exists(&host, &format!("new{i}")));
    }
    for (k, (status, body)) in keys.iter().zip(&destroys) {
        assert_eq!(*status, 200, "destroy {k}: {body}");
        assert!(!exists(&host, k), "{k} answered 200 and is gone");
    }
}

/// The `actor_active` lines `?actor_key={key}` selects.
fn selected(host: &Host, key: &str) -> Vec<String> {
    host.scrape_text_with(&format!("actor_key={}", form_encode(key)))
        .lines()
        .filter(|l| l.starts_with("actor_active{"))
        .map(str::to_owned)
        .collect()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Finding 6: a 300-byte key is exported cut, as its start, `~` and 16 hex
/// digits; a second actor whose key is that cut form exported the same
/// `actor_key`, and `?actor_key=` selected both. Now the short key's `~` is
/// doubled: two values, and each selection finds its own actor.
#[test]
fn a_key_spelt_as_another_keys_cut_form_is_another_actor_key() {
    let host = Host::start(&["--workload", "none"]);
    let long = "k".repeat(300);
    assert_eq!(create(&host, &long).0, 200);
    let long_series = selected(&host, &long);
    assert_eq!(long_series.len(), 1, "{long_series:?}");
    let value = long_series[0]
        .split("actor_key=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert!(value.contains('~'), "{value}");
    // The cut form, sent as a key of its own.
    assert_eq!(create(&host, &value).0, 200);
    let short_series = selected(&host, &value);
    assert_eq!(short_series.len(), 1, "{short_series:?}");
    assert_ne!(short_series[0], long_series[0]);
    assert_eq!(selected(&host, &long).len(), 1);
    let text = host.scrape_text();
    let with_value = text
        .lines()
        .filter(|l| l.starts_with("actor_active{") && l.contains(&format!("actor_key=\"{value}\"")))
        .count();
    assert_eq!(with_value, 1, "one actor per actor_key value");
}

/// Finding 6: the overflow label set's `actor_key` was the type's name, so a
/// key `counter` shared it. Now the overflow set is `counter~overflow`, which
/// no key renders as (a key `counter~overflow` is `counter~~overflow`).
#[test]
fn no_key_shares_its_actor_key_with_the_overflow_set() {
    let host = Host::start(&["--workload", "none", "--max-retained", "2"]);
    for key in ["counter", "counter~overflow", "third", "fourth"] {
        assert_eq!(create(&host, &form_encode(key)).0, 200, "{key}");
    }
    let text = host.scrape_text();
    let keys_of = |id_gen_overflow: bool| -> Vec<String> {
        let mut keys: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("actor_active{"))
            .filter(|l| l.contains("actor_id_gen=\"overflow\"") == id_gen_overflow)
            .filter_map(|l| {
                Some(
                    l.split("actor_key=\"")
                        .nth(1)?
                        .split('"')
                        .next()?
                        .to_owned(),
                )
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys_of(true), ["counter~overflow"]);
    let real = keys_of(false);
    assert_eq!(real, ["counter", "counter~~overflow"]);
}
