//! One autocommit `UPDATE` (one transaction) on a WAL database with
//! `synchronous = NORMAL`: a plain rusqlite connection beside one opened through
//! `actor-sqlite-hooks` (commit, rollback, update, WAL, profile and busy hooks).
//! The claim is the ratio instrumented / plain (goal ≤ 1.05).
//!
//! Criterion times the two one after the other, so anything that drifts during
//! the run (the disk's writeback, the WAL's growth until a checkpoint) lands on
//! one side. After criterion, a plain measurement interleaves them: rounds of
//! 2,000 commits on each, alternating which goes first, and prints the ratio
//! of the totals.

use std::time::{Duration, Instant};

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
    interleaved(&plain, &instrumented);
}

fn interleaved(plain: &Connection, instrumented: &Connection) {
    const ROUNDS: usize = 20;
    const COMMITS: u32 = 2_000;
    let mut stmts = [
        plain.prepare(UPDATE).expect("prepare"),
        instrumented.prepare(UPDATE).expect("prepare"),
    ];
    let mut totals = [Duration::ZERO; 2];
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut took = [Duration::ZERO; 2];
        for k in [round % 2, 1 - round % 2] {
            let started = Instant::now();
            for _ in 0..COMMITS {
                stmts[k].execute([]).expect("update");
            }
            took[k] = started.elapsed();
            totals[k] += took[k];
        }
        ratios.push(took[1].as_secs_f64() / took[0].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(COMMITS) / ROUNDS as f64;
    println!(
        "interleaved ({ROUNDS} rounds x {COMMITS} commits each): plain {:.2} us, instrumented {:.2} us per commit; instrumented / plain = {:.3} (median round {:.3}, range {:.3}..{:.3}; goal <= 1.05)",
        per(totals[0]),
        per(totals[1]),
        totals[1].as_secs_f64() / totals[0].as_secs_f64(),
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1],
    );
}

criterion_group!(benches, sqlite_commit);
criterion_main!(benches);
