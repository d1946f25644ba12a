//! The demo workload: `counter` actors receiving actions at a steady rate, with
//! churn (sleep, wake, destroy, new keys), so a scrape shows live, stopped-but-
//! retained and expiring actors. A progress line every few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use crate::action::CallError;
use crate::host::Host;

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
    let keys: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
        (0..options.actors.max(1))
            .map(|i| format!("demo-{i}"))
            .collect(),
    ));
    let initial = keys.lock().clone();
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
async fn worker(
    host: Host,
    keys: Arc<Mutex<Vec<String>>>,
    stats: Arc<DemoStats>,
    rate: u64,
    seed: u64,
) {
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
            let key = {
                let keys = keys.lock();
                keys[(rng.next() % keys.len() as u64) as usize].clone()
            };
            let (action, payload) = match n % 40 {
                0..=23 => ("increment", json!({})),
                24..=27 => ("get", json!({})),
                28 => ("fail", json!({})),
                29 | 30 => ("enqueue", json!({ "message": n })),
                31 | 32 => ("dequeue", json!({})),
                33 => ("connect", json!({})),
                34 => ("disconnect", json!({})),
                35 => ("slow", json!({ "ms": 5 })),
                36 => ("spawn_task", json!({ "kind": "background", "ms": 200 })),
                37 => ("spawn_task", json!({ "kind": "keep_awake", "ms": 50 })),
                _ => ("increment", json!({ "by": 2 })),
            };
            match host.call("counter", &key, action, payload).await {
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
async fn churn(host: Host, keys: Arc<Mutex<Vec<String>>>, every: Duration) {
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
                keys[(rng.next() % len) as usize].clone(),
                keys[(rng.next() % len) as usize].clone(),
            )
        };
        let _ = host.sleep("counter", &sleeper).await;
        let fresh = format!("demo-{next_key}");
        next_key += 1;
        {
            let mut keys = keys.lock();
            if let Some(slot) = keys.iter_mut().find(|k| **k == doomed) {
                *slot = fresh.clone();
            }
        }
        let _ = host.destroy("counter", &doomed).await;
        if let Err(CallError::ShuttingDown) = host.create("counter", &fresh).await {
            return;
        }
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
