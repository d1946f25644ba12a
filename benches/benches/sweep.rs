//! Sweeping 100k expired actors (full catalogue populated), per actor; then, as a
//! plain measurement after criterion, the throughput of a thread incrementing a
//! live actor's counter while another thread sweeps, against the same thread idle.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use actor_benches::{ManualClock, actor_id, bench_metrics, populate};
use actor_metrics::{ActionMetrics, ActorMetrics, ActorType, Metrics};
use criterion::{Criterion, SamplingMode, criterion_group};

const ACTORS: usize = 100_000;
const RETENTION: Duration = Duration::from_secs(600);

struct Expiring {
    m: Metrics,
    clock: Arc<ManualClock>,
    ty: ActorType,
    act: ActionMetrics,
    ids: Vec<String>,
}

impl Expiring {
    fn new() -> Self {
        let clock = ManualClock::new();
        let m = bench_metrics(clock.clone(), RETENTION);
        let ty = m.actor_type("counter");
        let act = ty.action("increment");
        Expiring {
            m,
            clock,
            ty,
            act,
            ids: (0..ACTORS).map(actor_id).collect(),
        }
    }

    /// Untimed: registers, populates (the full catalogue) and stops 100k actors,
    /// then moves the clock past their retention. Returns the sweep instant.
    fn build(&self) -> tokio::time::Instant {
        self.build_with(|i, a| populate(i, Some((a, &self.act)), &[]))
    }

    /// [`Expiring::build`] with `record` writing each actor's events.
    fn build_with(&self, record: impl Fn(usize, &ActorMetrics)) -> tokio::time::Instant {
        for (i, id) in self.ids.iter().enumerate() {
            let a = self.ty.register(id, Some(1), "user");
            record(i, &a);
            a.stopped();
        }
        self.clock.advance(RETENTION + Duration::from_secs(1));
        self.m.now()
    }

    /// Sweeps until nothing is due; returns the label sets removed.
    fn sweep_all(&self, now: tokio::time::Instant) -> usize {
        let mut removed = 0;
        loop {
            let r = self.m.sweep(now);
            removed += r.removed;
            if !r.more_due {
                return removed;
            }
        }
    }
}

fn sweep(c: &mut Criterion) {
    let e = Expiring::new();
    let mut g = c.benchmark_group("sweep");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("expire_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let now = e.build();
                let start = Instant::now();
                let removed = e.sweep_all(now);
                total += start.elapsed();
                assert_eq!(removed, ACTORS);
                assert_eq!(e.m.retained_len(), 0);
            }
            total / ACTORS as u32
        })
    });
    g.finish();
}

criterion_group!(benches, sweep);

/// Increments one live actor's counter `ops` times; returns the time taken.
fn increments(counter_of: &ActorMetrics, ops: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..ops {
        black_box(counter_of).queue_messages_sent_total().inc();
    }
    start.elapsed()
}

/// The updater's throughput idle and during sweeps of 100k expired actors.
fn concurrent_updater() {
    const ROUNDS: usize = 8;
    let e = Expiring::new();
    let live = e.ty.register("live-actor", Some(1), "user");
    // Warm up and calibrate: the updater's op count per round must fit inside
    // one sweep, so it is sized at a third of what it does idle in one sweep.
    increments(&live, 10_000_000);
    let idle_probe = increments(&live, 20_000_000);
    let now = e.build();
    let t = Instant::now();
    assert_eq!(e.sweep_all(now), ACTORS);
    let sweep_time = t.elapsed();
    let ops = ((20_000_000.0 * sweep_time.as_secs_f64() / idle_probe.as_secs_f64()) / 3.0) as u64;
    let ops = ops.max(100_000);

    let mut idle = Duration::ZERO;
    let mut busy = Duration::ZERO;
    let mut sweeps = Duration::ZERO;
    let mut inside = 0;
    for _ in 0..ROUNDS {
        idle += increments(&live, ops);
        let now = e.build();
        let start_line = Barrier::new(2);
        let (updater, sweeper) = std::thread::scope(|s| {
            let sweeper = s.spawn(|| {
                start_line.wait();
                let t = Instant::now();
                assert_eq!(e.sweep_all(now), ACTORS);
                t.elapsed()
            });
            start_line.wait();
            let updater = increments(&live, ops);
            (updater, sweeper.join().expect("sweeper finished"))
        });
        busy += updater;
        sweeps += sweeper;
        if updater <= sweeper {
            inside += 1;
        }
    }
    let total = ops as f64 * ROUNDS as f64;
    let idle_rate = total / idle.as_secs_f64();
    let busy_rate = total / busy.as_secs_f64();
    println!(
        "concurrent updater ({ROUNDS} rounds x {ops} increments of one live actor's counter):"
    );
    println!("  idle:             {:.1} M ops/s", idle_rate / 1e6);
    println!(
        "  during sweep:     {:.1} M ops/s (sweeps of 100k expired actors took {:.1} ms on average)",
        busy_rate / 1e6,
        sweeps.as_secs_f64() * 1e3 / ROUNDS as f64
    );
    println!(
        "  slowdown:         {:.2}x (goal <= 2x); updater finished inside the sweep in {inside}/{ROUNDS} rounds",
        idle_rate / busy_rate
    );
}

/// Context for the criterion figure (which sweeps full-catalogue actors): the
/// same sweep of 100k actors that recorded one counter event each.
fn sweep_minimal_actors() {
    let e = Expiring::new();
    let mut per_actor: Vec<f64> = (0..5)
        .map(|_| {
            let now = e.build_with(|_, a| a.queue_messages_sent_total().inc());
            let start = Instant::now();
            assert_eq!(e.sweep_all(now), ACTORS);
            start.elapsed().as_secs_f64() * 1e9 / ACTORS as f64
        })
        .collect();
    per_actor.sort_by(f64::total_cmp);
    println!(
        "sweep of 100k minimal actors (one counter event each): median {:.0} ns per actor (5 runs: {:.0?})",
        per_actor[2], per_actor
    );
}

fn main() {
    benches();
    let c = Criterion::default().configure_from_args();
    c.final_summary();
    // `--list`, `--profile-time` and criterion's `--test` smoke mode skip the
    // plain measurements.
    let args: Vec<String> = std::env::args().collect();
    if !args
        .iter()
        .any(|a| a == "--list" || a == "--test" || a == "--profile-time")
    {
        concurrent_updater();
        sweep_minimal_actors();
    }
}
