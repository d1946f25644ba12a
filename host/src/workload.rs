//! The demo workload: `counter` actors receiving actions at a steady rate, with
//! churn (sleep, wake, destroy, new keys), so a scrape shows live, stopped-but-
//! retained and expiring actors.
//!
//! The demo must not page anyone: its action errors stay near 0.1 % of calls
//! (one deliberate `fail` in [`FAIL_EVERY`] calls, so the error series are not
//! empty), and it only disconnects where it knows it opened a connection. Any
//! other error is a real one and counts like one.
//!
//! Every call starts a trace, as a traced client's would: the action latency
//! buckets carry exemplars with its trace id, and a failed call's debug line
//! names the same id, so the demo shows the way from a slow bucket to a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use actor_core::Host;
use actor_core::action::CallError;
use actor_core::trace::TraceContext;

/// One call in this many is the deliberate `fail` action.
pub const FAIL_EVERY: u64 = 1000;

/// The keys in play, and the connections the demo opened on each.
type Keys = Arc<Mutex<Vec<(String, u32)>>>;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Actors kept in play. Default 20.
    pub actors: usize,
    /// Action calls per second over all workers, paced exactly (the rate is
    /// split among the workers); 0 means as fast as possible. Default 200.
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
    let workers = options.workers.max(1) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        // The rate split exactly: the first `rate % workers` workers take one more.
        let rate = match options.rate {
            0 => None,
            rate => match rate / workers + u64::from(w < rate % workers) {
                0 => continue,
                share => Some(share),
            },
        };
        let (host, keys, stats) = (host.clone(), keys.clone(), stats.clone());
        tasks.spawn(worker(host, keys, stats, rate, w));
    }
    tasks.spawn(churn(host, keys, options.churn_every));
    while tasks.join_next().await.is_some() {}
}

/// One caller: picks actors and actions from a fixed mix, `rate` calls a
/// second (`None`: as fast as the host answers).
async fn worker(host: Host, keys: Keys, stats: Arc<DemoStats>, rate: Option<u64>, seed: u64) {
    let mut pace = rate.map(Pace::new);
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut n: u64 = 0;
    loop {
        let due = match &mut pace {
            Some(pace) => pace.due().await,
            None => {
                // Unthrottled: still let other tasks run.
                tokio::task::yield_now().await;
                1
            }
        };
        for _ in 0..due {
            n += 1;
            let (key, action, payload) = {
                let mut keys = keys.lock();
                let i = (rng.next() % keys.len() as u64) as usize;
                let (key, open) = &mut keys[i];
                let (action, payload) = pick(n, open);
                (key.clone(), action, payload)
            };
            let trace = TraceContext::start();
            match host
                .call_traced("counter", &key, action, payload, trace)
                .await
            {
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
                Err(e) => {
                    tracing::debug!(key, action, trace_id = %trace.trace_id(), error = %e, "demo call failed");
                }
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Paces calls at an exact rate without a timer per call: every tick (10 ms,
/// or 1/rate when that is longer) the calls due are the rate times the time
/// since the start, less those already made. A caller that fell behind
/// catches up by at most one second's worth.
struct Pace {
    rate: u64,
    start: tokio::time::Instant,
    done: u64,
    tick: tokio::time::Interval,
}

impl Pace {
    fn new(rate: u64) -> Self {
        let period = (Duration::from_secs(1) / u32::try_from(rate).unwrap_or(u32::MAX))
            .max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pace {
            rate,
            start: tokio::time::Instant::now(),
            done: 0,
            tick,
        }
    }

    /// Waits for the next tick; returns how many calls are due.
    async fn due(&mut self) -> u64 {
        self.tick.tick().await;
        let elapsed = self.start.elapsed().as_nanos();
        let target =
            u64::try_from(elapsed * u128::from(self.rate) / 1_000_000_000).unwrap_or(u64::MAX);
        self.done = self.done.max(target.saturating_sub(self.rate));
        let due = target.saturating_sub(self.done);
        self.done += due;
        due
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
    use crate::counter::Counter;
    use actor_core::HostConfig;
    use actor_metrics::scrape::Scrape;
    use actor_metrics::{Config, Format, Metrics, ScrapeRequest};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_errs_on_one_call_in_a_thousand_and_leaves_exemplars() {
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
        let openmetrics: Vec<u8> = metrics
            .exposition(&ScrapeRequest {
                format: Format::OpenMetrics,
                ..ScrapeRequest::default()
            })
            .flatten()
            .collect();
        let om = Scrape::parse_openmetrics(std::str::from_utf8(&openmetrics).unwrap()).unwrap();
        let traced = om
            .exemplars()
            .iter()
            .filter(|e| e.name == "actor_type_action_duration_seconds_bucket")
            .filter(|e| e.exemplar.get("trace_id").is_some_and(|t| t.len() == 32))
            .count();
        assert!(
            traced > 0,
            "the demo's calls left no exemplar: {:?}",
            om.exemplars()
        );
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

    #[tokio::test(start_paused = true)]
    async fn the_demo_makes_the_calls_per_second_it_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(Config::default()).unwrap();
        let host = Host::builder(metrics, HostConfig::new(dir.path()))
            .behaviour(Counter)
            .build()
            .await
            .unwrap();
        for (rate, workers) in [(1000, 4), (250, 4), (30, 4), (3, 4)] {
            let stats = Arc::new(DemoStats::default());
            let options = DemoOptions {
                actors: 10,
                rate,
                workers,
                churn_every: Duration::from_secs(3600),
            };
            let demo = tokio::spawn(run(host.clone(), options, stats.clone()));
            tokio::time::sleep(Duration::from_secs(10)).await;
            demo.abort();
            let _ = demo.await;
            let calls = stats.calls.load(Ordering::Relaxed);
            let expected = rate * 10;
            // Each worker may be one 10 ms tick short at the moment it stops.
            let tick = rate / 100 + workers as u64;
            assert!(
                calls.abs_diff(expected) <= tick,
                "--rate {rate}: {calls} calls in 10 s, not {expected}"
            );
        }
        host.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_pace_falls_behind_by_at_most_one_second_of_calls() {
        let mut pace = Pace::new(100);
        let mut calls = 0;
        while tokio::time::Instant::now() < pace.start + Duration::from_secs(2) {
            calls += pace.due().await;
        }
        assert!(calls.abs_diff(200) <= 1, "{calls}");
        // A caller stalled for 10 s makes up one second, not ten.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let burst = pace.due().await;
        assert!((100..=101).contains(&burst), "{burst}");
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
