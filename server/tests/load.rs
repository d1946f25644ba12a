//! Many concurrent scrapes while updates go on: every scrape answered, every
//! updater progresses, every increment counted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actor_metrics::scrape::Scrape;
use common::*;
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_scrapes_of_50k_series_while_updates_go_on() {
    let m = full_metrics();
    let ty = m.actor_type("load");
    let actors: Vec<_> = (0..2_000)
        .map(|i| {
            let a = ty.register(&format!("actor-{i}"), Some(1), "k");
            a.queue_messages_sent_total().inc();
            a.queue_messages_received_total().inc();
            a.connections_total().inc();
            a.sqlite_commits_total().inc();
            a.sqlite_commit_duration_seconds().observe(0.001);
            a
        })
        .collect();
    let actors = Arc::new(actors);
    // Room for all 200 at once (the default, 32, answers the rest 503).
    let server = actor_metrics_server::MetricsServer::bind(
        local(),
        m.clone(),
        actor_metrics_server::ServerOptions {
            max_scrapes: 256,
            ..ready()
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let first = get(addr, "/metrics").await;
    let series = first
        .text()
        .lines()
        .filter(|l| l.starts_with("actor_") && l.contains("actor_id_gen="))
        .count();
    assert!(series >= 50_000, "{series} per-actor series");

    // Four updater threads, each on its own slice of actors, counting what they did.
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let updaters: Vec<_> = (0..4)
        .map(|t| {
            let (actors, stop, done) = (actors.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mine: Vec<_> = actors.iter().skip(t).step_by(4).collect();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for a in &mine {
                        a.queue_messages_sent_total().inc();
                    }
                    n += mine.len() as u64;
                    done[t].store(n, Ordering::Relaxed);
                }
                n
            })
        })
        .collect();

    let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let scrapes: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async move { get(addr, "/metrics").await }))
        .collect();
    for s in scrapes {
        let r = s.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.len() > first.body.len() / 2);
    }
    let during: Vec<u64> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    stop.store(true, Ordering::Relaxed);
    let totals: Vec<u64> = updaters.into_iter().map(|u| u.join().unwrap()).collect();
    for t in 0..4 {
        assert!(
            during[t] > before[t],
            "updater {t} made progress during the scrapes"
        );
    }
    // Exact counts: every increment landed.
    let sent: u64 = actors
        .iter()
        .map(|a| a.queue_messages_sent_total().get())
        .sum();
    assert_eq!(sent, 2_000 + totals.iter().sum::<u64>());
    let s = Scrape::parse(get(addr, "/metrics").await.text()).unwrap();
    assert_eq!(s.sum("actor_queue_messages_sent_total", &[]), sent as f64);
    assert_eq!(
        s.get(
            "actor_type_queue_messages_sent_total",
            &[("actor_name", "load")]
        ),
        Some(sent as f64)
    );
    assert!(s.get("actor_metrics_http_scrapes_total", &[]).unwrap() >= 201.0);
}
