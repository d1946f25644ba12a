//! The demo workload: `counter` actors receiving actions at a steady rate, with
//! churn (sleep, wake, destroy, new keys), so a scrape shows live, stopped-but-
//! retained and expiring actors.
//!
//! The demo must not page anyone: its action errors stay near 0.1 % of calls
//! (one deliberate `fail` in [`FAIL_EVERY`] calls, so the error series are not
//! empty), and it only disconnects where it knows it opened a connection. Any
//! other error is a real one and counts like one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use crate::action::CallError;
use crate::host::Host;

/// One call in this many is the deliberate `fail` action.
pub const FAIL_EVERY: u64 = 1000;

/// The keys in play, and the connections the demo opened on each.
type Keys = Arc<Mutex<Vec<(String, u32)>>>;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Actors kept in play. Default 20.
    pub actors: usize,
    /// Action calls per second over all workers; 0 means as fast as possible. Default 200.
    pub rate: u64,
    /// Concurrent callers. Default 4.
    pub workers: usize,
    /// Every this often one actor sleeps and one is destroyed and replaced. Default 2 s.
    pub churn_every: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            actors: 20,
            rate: 200,
            workers: 4,
            churn_every: Duration::from_secs(2),
        }
    }
}

/// Counts of what the demo did.
#[derive(Debug, Default)]
pub struct DemoStats {
    /// Action calls answered (ok or error).
    pub calls: AtomicU64,
    /// Calls that returned an error on purpose or by rule.
    pub errors: AtomicU64,
}

/// Runs the demo until the task is aborted. Returns its stats handle at once
/// through `stats` so the caller can report while it runs.
pub async fn run(host: Host, options: DemoOptions, stats: Arc<DemoStats>) {
    let keys: Keys = Arc::new(Mutex::new(
        (0..options.actors.max(1))
            .map(|i| (format!("demo-{i}"), 0))
            .collect(),
    ));
    let initial: Vec<String> = keys.lock().iter().map(|(k, _)| k.clone()).collect();
    for key in initial {
        if let Err(e) = host.create("counter", &key).await {
            tracing::warn!(key, error = %e, "demo: create failed");
        }
    }
    let workers = options.workers.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (host, keys, stats) = (host.clone(), keys.clone(), stats.clone());
        let per_worker = options.rate.div_ceil(workers as u64);
        tasks.spawn(worker(host, keys, stats, per_worker, w as u64));
    }
    tasks.spawn(churn(host, keys, options.churn_every));
    while tasks.join_next().await.is_some() {}
}

/// One caller: picks actors and actions from a fixed mix.
async fn worker(host: Host, keys: Keys, stats: Arc<DemoStats>, rate: u64, seed: u64) {
    // Pace in ticks of at least 10 ms so high rates do not need a timer per
    // call: below 100 calls/s one call per tick of 1/rate, above it
    // rate/100 calls per 10 ms tick.
    let (per_tick, period) = match rate {
        0 => (0, Duration::from_millis(10)),
        1..=100 => (1, Duration::from_secs(1) / rate as u32),
        _ => (rate.div_ceil(100), Duration::from_millis(10)),
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut n: u64 = 0;
    loop {
        if per_tick > 0 {
            tick.tick().await;
        }
        for _ in 0..per_tick.max(1) {
            n += 1;
            let (key, action, payload) = {
                let mut keys = keys.lock();
                let i = (rng.next() % keys.len() as u64) as usize;
                let (key, open) = &mut keys[i];
                let (action, payload) = pick(n, open);
                (key.clone(), action, payload)
            };
            match host.call("counter", &key, action, payload).await {
                Ok(_) if action == "connect" => {
                    if let Some((_, open)) = keys.lock().iter_mut().find(|(k, _)| *k == key) {
                        *open += 1;
                    }
                }
                Ok(_) => {}
                Err(CallError::Action(_)) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                Err(CallError::NotFound { .. }) => {
                    // Destroyed by churn between picking and calling.
                    continue;
                }
                Err(CallError::ShuttingDown) => return,
                Err(e) => tracing::debug!(key, action, error = %e, "demo call failed"),
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        if per_tick == 0 {
            // Unthrottled: still let other tasks run.
            tokio::task::yield_now().await;
        }
    }
}

/// Every `every`: one actor sleeps (the next call wakes it with a new
/// generation), one is destroyed and a new key takes its place.
async fn churn(host: Host, keys: Keys, every: Duration) {
    let mut rng = XorShift(0xDEAD_BEEF);
    let mut next_key = keys.lock().len();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (sleeper, doomed) = {
            let keys = keys.lock();
            let len = keys.len() as u64;
            (
                keys[(rng.next() % len) as usize].0.clone(),
                keys[(rng.next() % len) as usize].0.clone(),
            )
        };
        // Sleeping closes the actor's connections.
        if let Some((_, open)) = keys.lock().iter_mut().find(|(k, _)| *k == sleeper) {
            *open = 0;
        }
        let _ = host.sleep("counter", &sleeper).await;
        let fresh = format!("demo-{next_key}");
        next_key += 1;
        {
            let mut keys = keys.lock();
            if let Some(slot) = keys.iter_mut().find(|(k, _)| *k == doomed) {
                *slot = (fresh.clone(), 0);
            }
        }
        let _ = host.destroy("counter", &doomed).await;
        if let Err(CallError::ShuttingDown) = host.create("counter", &fresh).await {
            return;
        }
    }
}

/// The `n`th call's action on a key where the demo opened `open` connections:
/// a fixed mix, with `fail` once in [`FAIL_EVERY`] calls and `disconnect` only
/// where a connection is open (claimed here, so two callers never close one).
fn pick(n: u64, open: &mut u32) -> (&'static str, serde_json::Value) {
    if n % FAIL_EVERY == FAIL_EVERY / 2 {
        return ("fail", json!({}));
    }
    match n % 40 {
        0..=23 => ("increment", json!({})),
        24..=28 => ("get", json!({})),
        29 | 30 => ("enqueue", json!({ "message": n })),
        31 | 32 => ("dequeue", json!({})),
        33 => ("connect", json!({})),
        34 if *open > 0 => {
            *open -= 1;
            ("disconnect", json!({}))
        }
        35 => ("slow", json!({ "ms": 5 })),
        36 => ("spawn_task", json!({ "kind": "background", "ms": 200 })),
        37 => ("spawn_task", json!({ "kind": "keep_awake", "ms": 50 })),
        _ => ("increment", json!({ "by": 2 })),
    }
}

/// A tiny PRNG: the demo needs spread, not quality, and no extra dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;
    use crate::counter::Counter;
    use actor_metrics::scrape::Scrape;
    use actor_metrics::{Config, Metrics};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_errs_on_about_one_call_in_a_thousand_not_more() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(Config::default()).unwrap();
        let host = Host::builder(metrics.clone(), HostConfig::new(dir.path()))
            .behaviour(Counter)
            .build()
            .await
            .unwrap();
        let stats = Arc::new(DemoStats::default());
        let options = DemoOptions {
            actors: 10,
            rate: 0,
            workers: 4,
            churn_every: Duration::from_millis(20),
        };
        let demo = tokio::spawn(run(host.clone(), options, stats.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while stats.calls.load(Ordering::Relaxed) < 20_000 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the demo is too slow"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        demo.abort();
        let _ = demo.await;
        let s = Scrape::parse(&metrics.render()).unwrap();
        let calls = s.sum("actor_type_action_calls_total", &[]);
        let errors = s.sum("actor_type_action_errors_total", &[]);
        let fails = s.sum("actor_type_action_errors_total", &[("action", "fail")]);
        assert!(calls >= 20_000.0, "{calls}");
        // The deliberate failures are there, and nothing much else fails.
        assert!(fails >= 1.0, "no deliberate failure in {calls} calls");
        assert!(
            errors / calls < 0.002,
            "{errors} errors in {calls} calls ({fails} deliberate)"
        );
        host.shutdown().await;
    }

    #[test]
    fn disconnect_is_only_picked_where_a_connection_is_open() {
        let (mut none, mut one) = (0, 1);
        for n in 0..4000 {
            assert_ne!(pick(n, &mut none).0, "disconnect");
        }
        let disconnects = (0..4000)
            .filter(|n| pick(*n, &mut one).0 == "disconnect")
            .count();
        assert_eq!(
            (disconnects, one),
            (1, 0),
            "one open connection, one disconnect"
        );
    }
}
