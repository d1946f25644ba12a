//! Prints a scrape with every family populated for a few actors, at the detail
//! level given as the first argument (`off`, `core`, `full`; default `core`):
//! used to lint the output with `promtool check metrics` and to show what a
//! scrape looks like.

use std::time::Duration;

use actor_metrics::labels::*;
use actor_metrics::{Config, DetailLevel, Metrics};

fn main() {
    let level = match std::env::args().nth(1).map(|a| a.parse::<DetailLevel>()) {
        None => DetailLevel::Core,
        Some(Ok(level)) => level,
        Some(Err(e)) => {
            eprintln!("scrape: {e}");
            std::process::exit(2);
        }
    };
    let m = Metrics::new(Config {
        per_actor_detail: level,
        ..Config::default()
    })
    .expect("default config is valid");
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let actors: Vec<_> = (0..3)
        .map(|i| ty.register(&format!("a{i}"), Some(1), &format!("key-{i}")))
        .collect();
    for a in &actors {
        a.queue_depth().set(2);
        a.queue_messages_sent_total().inc();
        a.queue_messages_received_total().inc();
        a.connections_active().inc();
        a.connections_total().inc();
        a.sqlite_commits_total().inc();
        a.sqlite_rollbacks_total().inc();
        a.sqlite_commit_duration_seconds().observe(0.0004);
        a.sqlite_busy_total().inc();
        a.sqlite_wal_pages_total().inc_by(3);
        for &i in Inbox::ALL {
            a.inbox_depth(i).set(1);
        }
        for &k in TaskKind::ALL {
            a.user_tasks_active(k).inc();
            a.user_task_duration_seconds(k).observe(0.2);
        }
        for &r in MutationReason::ALL {
            a.state_mutations_total(r).inc();
        }
        for &r in ShutdownReason::ALL {
            a.shutdown_wait_seconds(r).observe(0.1);
            a.shutdown_timeouts_total(r).inc();
        }
        for &p in StartupPhase::ALL {
            a.startup_duration_seconds(p).observe(0.003);
        }
        for &o in SqliteOp::ALL {
            a.sqlite_rows_changed_total(o).inc();
        }
        for &k in StatementKind::ALL {
            a.sqlite_statement_duration_seconds(k).observe(0.0001);
        }
        a.record_action(&inc, Duration::from_millis(2), true);
    }
    actors[0].stopped();
    m.sweep(m.now());
    print!("{}", m.render());
}
