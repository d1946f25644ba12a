//! One autocommit `UPDATE` (one transaction) on a WAL database with
//! `synchronous = NORMAL`: a plain rusqlite connection beside one opened through
//! `actor-sqlite-hooks` (commit, rollback, update, WAL, profile and busy hooks).
//! The claim is the ratio instrumented / plain (goal ≤ 1.05).

use std::time::Duration;

use actor_benches::{ManualClock, bench_metrics};
use actor_sqlite_hooks::{HookOptions, Synchronous};
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::Connection;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
                      INSERT OR IGNORE INTO c (id, v) VALUES (1, 0);";
const UPDATE: &str = "UPDATE c SET v = v + 1 WHERE id = 1";

fn sqlite_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");

    let plain = Connection::open(dir.path().join("plain.db")).expect("open plain");
    plain
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .expect("WAL");
    plain
        .pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    plain.execute_batch(SCHEMA).expect("schema");

    let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
    let actor = m.actor_type("counter").register("actor-1", Some(1), "k");
    let instrumented = actor_sqlite_hooks::open(
        dir.path().join("instrumented.db"),
        actor.clone(),
        &HookOptions {
            synchronous: Synchronous::Normal,
            ..HookOptions::default()
        },
    )
    .expect("open instrumented");
    instrumented.execute_batch(SCHEMA).expect("schema");

    let mut g = c.benchmark_group("sqlite_commit");
    for (id, conn) in [("plain", &plain), ("instrumented", &instrumented)] {
        let mut stmt = conn.prepare(UPDATE).expect("prepare");
        g.bench_function(id, |b| {
            b.iter(|| stmt.execute([]).expect("update"));
        });
    }
    g.finish();
    assert!(actor.sqlite_commits_total().get() > 0, "the hooks ran");
}

criterion_group!(benches, sqlite_commit);
criterion_main!(benches);
