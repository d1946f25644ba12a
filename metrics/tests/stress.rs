//! 8 threads, 100k register/clone/drop operations on overlapping label sets,
//! racing a sweeper that removes every expired set as soon as it can. Exact
//! final counts.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, Metrics};
use tokio::time::Instant;

const THREADS: usize = 8;
const OPS_PER_THREAD: usize = 12_500; // 100k in all
const LABEL_SETS: usize = 64;
const KEEP_EVERY: usize = 1_000; // handles each thread still holds at the end

#[test]
fn concurrent_register_clone_drop_with_sweeper_keeps_exact_counts() {
    let m = Metrics::new(Config {
        retention: Duration::ZERO,
        envoy_key: "e".into(),
        ..Config::default()
    })
    .unwrap();
    let ty = m.actor_type("stress");
    let act = ty.action("op");
    let done = Arc::new(AtomicBool::new(false));

    let sweeper = {
        let m = m.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut processed = 0;
            while !done.load(Ordering::Relaxed) {
                let r = m.sweep(Instant::now() + Duration::from_secs(3600));
                processed += r.removed + r.skipped;
                // Scrapes race with the removals too; aggregates must never go back.
                let _ = m.render();
            }
            processed
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let ty = ty.clone();
            let act = act.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..OPS_PER_THREAD {
                    let set = (i * 7 + t * 13) % LABEL_SETS;
                    let h = ty.register(&format!("a{set}"), Some(1), "k");
                    let c = h.clone();
                    c.queue_messages_sent_total().inc();
                    h.connections_active().inc();
                    // Registrations of one label set share this gauge: each sets its own share.
                    h.queue_depth().set(3);
                    h.record_action(&act, Duration::from_micros(5), i % 10 != 0);
                    drop(c);
                    if i % KEEP_EVERY == 0 {
                        kept.push(h);
                    } else {
                        h.connections_active().dec();
                        if i % 2 == 0 {
                            h.stopped();
                        }
                        drop(h);
                    }
                }
                kept
            })
        })
        .collect();
    let kept: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::Relaxed);
    let swept_concurrently = sweeper.join().unwrap();
    m.sweep(Instant::now() + Duration::from_secs(3600));

    let total_ops = (THREADS * OPS_PER_THREAD) as f64;
    let live_sets: HashSet<String> = kept
        .iter()
        .map(|h| h.labels().actor_id_gen().to_owned())
        .collect();
    let s = Scrape::parse(&m.render()).unwrap();
    let agg = [("actor_name", "stress")];

    assert_eq!(
        s.get("actor_type_queue_messages_sent_total", &agg),
        Some(total_ops)
    );
    assert_eq!(
        s.get(
            "actor_type_action_calls_total",
            &[("action", "op"), ("actor_name", "stress")]
        ),
        Some(total_ops)
    );
    assert_eq!(
        s.get(
            "actor_type_action_errors_total",
            &[("action", "op"), ("actor_name", "stress")]
        ),
        Some((THREADS * OPS_PER_THREAD.div_ceil(10)) as f64)
    );
    assert_eq!(s.get("actor_type_active", &agg), Some(kept.len() as f64));
    assert_eq!(
        s.get("actor_type_connections_active", &agg),
        Some(kept.len() as f64)
    );
    assert_eq!(
        s.get("actor_type_queue_depth", &agg),
        Some(3.0 * kept.len() as f64),
        "a set gauge is the sum of the live registrations' shares"
    );
    assert_eq!(
        m.retained_len(),
        live_sets.len(),
        "only live sets remain after the final sweep"
    );
    assert_eq!(
        s.get("actor_metrics_retained_label_sets", &[("state", "live")]),
        Some(live_sets.len() as f64)
    );
    assert_eq!(
        s.get(
            "actor_metrics_retained_label_sets",
            &[("state", "expiring")]
        ),
        Some(0.0)
    );
    let mut active_sum = 0.0;
    for set in &live_sets {
        let held = kept
            .iter()
            .filter(|h| h.labels().actor_id_gen() == set)
            .count() as f64;
        let v = s.get(
            "actor_active",
            &[
                ("actor_id_gen", set),
                ("actor_key", "k"),
                ("envoy_key", "e"),
            ],
        );
        assert_eq!(v, Some(held), "actor_active of {set}");
        let labels = [
            ("actor_id_gen", set.as_str()),
            ("actor_key", "k"),
            ("envoy_key", "e"),
        ];
        assert_eq!(s.get("actor_connections_active", &labels), Some(held));
        assert_eq!(s.get("actor_queue_depth", &labels), Some(3.0 * held));
        active_sum += held;
    }
    assert_eq!(active_sum, kept.len() as f64);
    assert!(
        swept_concurrently > 0,
        "the sweeper really raced the workers (removed or skipped revived sets)"
    );

    drop(kept);
    m.sweep(Instant::now() + Duration::from_secs(3600));
    let s = Scrape::parse(&m.render()).unwrap();
    assert_eq!(m.retained_len(), 0);
    assert_eq!(s.get("actor_type_active", &agg), Some(0.0));
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(0.0));
    assert_eq!(s.get("actor_type_queue_depth", &agg), Some(0.0));
    assert_eq!(
        s.get("actor_type_queue_messages_sent_total", &agg),
        Some(total_ops),
        "nothing lost"
    );
}
