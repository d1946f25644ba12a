//! What an exemplar adds to one histogram observation, in the same run:
//!
//! * `observe`: the observation alone (one outside any traced call; the code
//!   it runs is unchanged by exemplars);
//! * `observe_offer`: the observation, then its exemplar offered to its
//!   bucket's slot under the keep policy (the slowest since the last export),
//!   with an export of every slot each 4,096 observations as a scrape would;
//! * `observe_store`: the observation, then a write of its exemplar into one
//!   slot every time: what a write itself costs, the policy's worst case.
//!
//! `exemplar_record_call` measures the recording site itself: one action
//! call recorded (`record_action`: two counters, two histograms) against the
//! same call recorded with its exemplar (`record_action_traced`), at `core`
//! (the type's slots) and at `full` (the type's and the actor's).
//!
//! Values as in `hot_path`'s observe groups: one octave (one actor's steady
//! latency) and spread over 13 octaves; the default instance (native buckets
//! on). The claim is the ratio `observe_offer / observe` (goal ≤ 1.3).
//! Criterion times them one after the other, so load from elsewhere on a
//! shared machine lands on one side; after criterion, a plain measurement
//! interleaves them (rounds of 200,000 observations each, alternating which
//! goes first) and prints the ratios of the totals.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actor_benches::{ManualClock, bench_metrics};
use actor_metrics::ActorMetrics;
use actor_metrics::buckets::SQLITE_BUCKETS;
use actor_metrics::exemplar::{Exemplar, ExemplarSlot, HistogramExemplars, SpanId, TraceId};
use criterion::{Criterion, criterion_group, criterion_main};

/// Observations between two exports in `observe_offer`.
const EXPORT_EVERY: usize = 4096;
const ROUNDS: usize = 30;
const PER_ROUND: usize = 200_000;

/// One actor's histogram, its exemplar slots, and the values cycled through.
struct Bench<'a> {
    actor: &'a ActorMetrics,
    values: &'a [f64],
    slots: HistogramExemplars,
    last: ExemplarSlot,
    exemplar: Exemplar,
    n: usize,
}

impl Bench<'_> {
    #[inline]
    fn next(&mut self) -> f64 {
        self.n = self.n.wrapping_add(1);
        black_box(self.values[self.n & 1023])
    }

    #[inline]
    fn observe(&mut self) {
        let v = self.next();
        black_box(self.actor)
            .sqlite_commit_duration_seconds()
            .observe(v);
    }

    #[inline]
    fn observe_offer(&mut self) {
        let v = self.next();
        black_box(self.actor)
            .sqlite_commit_duration_seconds()
            .observe(v);
        let (template, n) = (&self.exemplar, self.n as u64);
        black_box(&self.slots).offer_with(&SQLITE_BUCKETS, v, || Exemplar {
            value: v,
            timestamp_ns: template.timestamp_ns + n,
            ..*template
        });
        if self.n.is_multiple_of(EXPORT_EVERY) {
            for kept in self.slots.export() {
                black_box(kept);
            }
        }
    }

    #[inline]
    fn observe_store(&mut self) {
        let v = self.next();
        black_box(self.actor)
            .sqlite_commit_duration_seconds()
            .observe(v);
        self.exemplar.value = v;
        self.exemplar.timestamp_ns += 1;
        black_box(&self.last).store(&self.exemplar);
    }
}

fn values() -> [(&'static str, Vec<f64>); 2] {
    let narrow = (0..1024)
        .map(|i| 0.001 * (1.0 + f64::from((i * 389) % 1024) / 1100.0))
        .collect();
    let spread = (0..1024)
        .map(|i| 0.0001 * 10f64.powf(4.0 * f64::from((i * 389) % 1024) / 1024.0))
        .collect();
    [("exemplar_one_octave", narrow), ("exemplar_spread", spread)]
}

fn exemplar(c: &mut Criterion) {
    let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
    let actor = m
        .actor_type("counter")
        .register("actor-0000001", Some(1), "user-1");
    for (group, values) in values() {
        let mut b = Bench {
            actor: &actor,
            values: &values,
            slots: HistogramExemplars::default(),
            last: ExemplarSlot::default(),
            exemplar: Exemplar {
                trace_id: TraceId(
                    *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36",
                ),
                span_id: SpanId(*b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7"),
                value: 0.0,
                timestamp_ns: 1_764_000_000_000_000_000,
            },
            n: 0,
        };
        // Warm: every native span and the exemplar slots exist before timing.
        for _ in 0..1024 {
            b.observe_offer();
        }
        let mut g = c.benchmark_group(group);
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(50);
        g.bench_function("observe", |t| t.iter(|| b.observe()));
        g.bench_function("observe_offer", |t| t.iter(|| b.observe_offer()));
        g.bench_function("observe_store", |t| t.iter(|| b.observe_store()));
        g.finish();
        interleaved(group, &mut b);
    }
}

/// Rounds of each variant in turn (the first one alternating), timed apart;
/// prints ns per op of each and the ratios to `observe` of the totals.
fn interleaved(group: &str, b: &mut Bench<'_>) {
    let mut totals = [Duration::ZERO; 3];
    let mut ratios: Vec<f64> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut this = [Duration::ZERO; 3];
        for k in 0..3 {
            let which = (k + round) % 3;
            let t0 = Instant::now();
            for _ in 0..PER_ROUND {
                match which {
                    0 => b.observe(),
                    1 => b.observe_offer(),
                    _ => b.observe_store(),
                }
            }
            this[which] = t0.elapsed();
        }
        for (t, d) in totals.iter_mut().zip(this) {
            *t += d;
        }
        ratios.push(this[1].as_secs_f64() / this[0].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / (ROUNDS * PER_ROUND) as f64;
    println!(
        "{group} interleaved ({ROUNDS} rounds x {PER_ROUND}): observe {:.2} ns, observe_offer {:.2} ns, observe_store {:.2} ns; offer / observe = {:.3} (median round {:.3}, range {:.3}..{:.3}; goal <= 1.3), store / observe = {:.3}",
        ns(totals[0]),
        ns(totals[1]),
        ns(totals[2]),
        totals[1].as_secs_f64() / totals[0].as_secs_f64(),
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1],
        totals[2].as_secs_f64() / totals[0].as_secs_f64(),
    );
    assert!(b.last.writes() > 0 && b.last.read().is_some());
}

/// One call recorded untraced, traced at `core`, traced at `full`; each
/// cycles through the same 1,024 durations.
fn record_call(c: &mut Criterion) {
    use actor_metrics::{Config, DetailLevel, Metrics};
    let spread: Vec<Duration> = values()[1]
        .1
        .iter()
        .map(|v| Duration::from_secs_f64(*v * 10.0))
        .collect();
    let core = Metrics::new(Config {
        per_actor_detail: DetailLevel::Core,
        ..Config::default()
    })
    .expect("default config");
    let full = bench_metrics(ManualClock::new(), Duration::from_secs(600));
    let handles = |m: &Metrics| {
        let ty = m.actor_type("counter");
        (
            ty.register("actor-0000001", Some(1), "user-1"),
            ty.action("increment"),
        )
    };
    let (core_actor, core_action) = handles(&core);
    let (full_actor, full_action) = handles(&full);
    let mut e = Exemplar {
        trace_id: TraceId([0x4b; 16]),
        span_id: SpanId([0x0a; 8]),
        value: 0.0,
        timestamp_ns: 1_764_000_000_000_000_000,
    };
    let mut n = 0usize;
    let mut run = |which: usize| {
        n = n.wrapping_add(1);
        let d = black_box(spread[n & 1023]);
        e.value = d.as_secs_f64();
        e.timestamp_ns += 1;
        let ok = !n.is_multiple_of(64);
        match which {
            0 => black_box(&core_actor).record_action(&core_action, d, ok),
            1 => black_box(&core_actor).record_action_traced(&core_action, d, ok, Some(&e)),
            _ => black_box(&full_actor).record_action_traced(&full_action, d, ok, Some(&e)),
        }
    };
    for which in 0..3 {
        for _ in 0..4096 {
            run(which);
        }
    }
    let mut g = c.benchmark_group("exemplar_record_call");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    g.bench_function("untraced", |t| t.iter(|| run(0)));
    g.bench_function("traced_core", |t| t.iter(|| run(1)));
    g.bench_function("traced_full", |t| t.iter(|| run(2)));
    g.finish();
    let mut totals = [Duration::ZERO; 3];
    for round in 0..ROUNDS {
        for k in 0..3 {
            let which = (k + round) % 3;
            let t0 = Instant::now();
            for _ in 0..PER_ROUND {
                run(which);
            }
            totals[which] += t0.elapsed();
        }
    }
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / (ROUNDS * PER_ROUND) as f64;
    println!(
        "exemplar_record_call interleaved ({ROUNDS} rounds x {PER_ROUND}): untraced {:.2} ns, traced_core {:.2} ns ({:.3} x), traced_full {:.2} ns ({:.3} x)",
        ns(totals[0]),
        ns(totals[1]),
        totals[1].as_secs_f64() / totals[0].as_secs_f64(),
        ns(totals[2]),
        totals[2].as_secs_f64() / totals[0].as_secs_f64(),
    );
}

criterion_group!(benches, exemplar, record_call);
criterion_main!(benches);
