//! Detail follows trouble at the default cap: the promotion tick over 80,000
//! retained actors, `top` over them (the `/actors/top` answer, 50 ms bound),
//! and the default scrape with 64 actors promoted to `full`, each against a
//! baseline in the same process: one read of every actor's totals
//! (`Metrics::totals`, the cheapest walk over the store) and the default
//! `core` scrape with nobody promoted. The default scrape is timed in each
//! format; OpenMetrics against text is also printed as a ratio of medians of
//! interleaved renders, so both see the same machine.
//!
//! Every actor has the full catalogue populated (`build_ours`); between two
//! timed ticks nothing is recorded, so a tick's cost is the walk and the
//! judging, not the traffic. Time is the manual clock, advanced 10 s a tick.

use std::time::Duration;

use actor_benches::{ManualClock, build_ours};
use actor_metrics::{Config, DetailLevel, Format, Metrics, ScrapeRequest, TopBy, TopQuery};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use prometheus::Registry;

const ACTORS: usize = 80_000;
const PROMOTED: usize = 64;

/// Bytes of the default scrape (no `?detail=`: promotion applies).
fn default_scrape(m: &Metrics, format: Format) -> usize {
    let request = ScrapeRequest {
        format,
        ..ScrapeRequest::default()
    };
    m.exposition(&request).map(|chunk| chunk.len()).sum()
}

/// Median seconds of `rounds` default scrapes in each of `formats`, taken in
/// turn (one of each per round), so a busy moment weighs on all alike.
fn interleaved(m: &Metrics, formats: &[Format], rounds: usize) -> Vec<f64> {
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); formats.len()];
    for _ in 0..rounds {
        for (f, t) in formats.iter().zip(&mut times) {
            let started = std::time::Instant::now();
            std::hint::black_box(default_scrape(m, *f));
            t.push(started.elapsed().as_secs_f64());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect()
}

/// Prints the OpenMetrics and protobuf scrapes' medians against the text one's.
fn print_ratio(m: &Metrics, what: &str) {
    let t = interleaved(m, &[Format::Text, Format::OpenMetrics, Format::Protobuf], 9);
    println!(
        "{what}: median of 9 interleaved default scrapes: text {:.3} s, OpenMetrics {:.3} s ({:.3}x text), protobuf {:.3} s ({:.3}x text)",
        t[0],
        t[1],
        t[1] / t[0],
        t[2],
        t[2] / t[0]
    );
}

fn watch(c: &mut Criterion) {
    let clock = ManualClock::new();
    let m = Metrics::with_parts(
        Config {
            retention: Duration::from_secs(600),
            per_actor_detail: DetailLevel::Core,
            max_retained: ACTORS * 2,
            envoy_key: "bench-host:4242".into(),
            ..Config::default()
        },
        clock.clone(),
        Registry::new(),
    )
    .expect("bench configuration is valid");
    let handles = build_ours(&m, ACTORS);
    let action = m.actor_type("counter").action("increment");
    let mut t = Duration::ZERO;
    let mut tick = |m: &Metrics| {
        t += Duration::from_secs(10);
        m.watch(clock.at(t))
    };
    tick(&m);
    // Steady traffic on every actor for two ticks, so every figure is warm.
    for _ in 0..2 {
        for a in &handles {
            for _ in 0..20 {
                a.record_action(&action, Duration::from_millis(1), true);
            }
        }
        tick(&m);
    }
    let core_bytes = default_scrape(&m, Format::Text);
    print_ratio(&m, "80k core");

    let mut g = c.benchmark_group("watch");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("totals_80k", |b| b.iter(|| m.totals().len()));
    g.bench_function("tick_80k", |b| b.iter(|| tick(&m).actors));
    // Every actor called since the last tick: each one's native buckets are
    // read against its p99 line (the calls are made outside the timing).
    g.bench_function("tick_80k_all_called", |b| {
        b.iter_batched(
            || {
                for a in &handles {
                    a.record_action(&action, Duration::from_millis(1), true);
                }
            },
            |()| tick(&m).actors,
            BatchSize::PerIteration,
        )
    });
    for by in [TopBy::ErrorRatio, TopBy::P99Latency, TopBy::QueueDepth] {
        let q = TopQuery {
            by,
            n: 20,
            ..TopQuery::default()
        };
        g.bench_function(format!("top_80k_{}", by.as_str()), |b| {
            b.iter(|| m.top(&q).expect("valid query").len())
        });
    }
    g.bench_function("scrape_80k_core", |b| {
        b.iter(|| default_scrape(&m, Format::Text))
    });
    g.bench_function("scrape_80k_core_openmetrics", |b| {
        b.iter(|| default_scrape(&m, Format::OpenMetrics))
    });
    g.bench_function("scrape_80k_core_protobuf", |b| {
        b.iter(|| default_scrape(&m, Format::Protobuf))
    });

    // 64 actors fail half their calls among healthy ones: promoted within
    // two ticks.
    for _ in 0..2 {
        for (n, a) in handles.iter().enumerate() {
            for i in 0..20 {
                a.record_action(
                    &action,
                    Duration::from_millis(1),
                    n >= PROMOTED || i % 2 == 0,
                );
            }
        }
        tick(&m);
    }
    let promoted = m
        .top(&TopQuery {
            by: TopBy::ErrorRatio,
            n: 1000,
            ..TopQuery::default()
        })
        .expect("valid query")
        .iter()
        .filter(|r| r.promoted.is_some())
        .count();
    assert_eq!(promoted, PROMOTED, "every failing actor is promoted");
    let text = m.render();
    let per_actor_buckets = text
        .lines()
        .filter(|l| l.starts_with("actor_action_duration_seconds_bucket{"))
        .count();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("actor_detail_promoted{"))
            .count(),
        PROMOTED
    );
    assert_eq!(
        per_actor_buckets,
        PROMOTED * 13,
        "the promoted actors' buckets"
    );
    println!(
        "watch setup: {ACTORS} actors; default scrape {:.1} MB, with {PROMOTED} promoted {:.1} MB ({:+.0} KB: values differ between the two)",
        core_bytes as f64 / 1e6,
        text.len() as f64 / 1e6,
        (text.len() as f64 - core_bytes as f64) / 1e3
    );
    drop(text);
    print_ratio(&m, "80k core, 64 promoted");
    g.bench_function("scrape_80k_core_64_promoted", |b| {
        b.iter(|| default_scrape(&m, Format::Text))
    });
    g.bench_function("scrape_80k_core_openmetrics_64_promoted", |b| {
        b.iter(|| default_scrape(&m, Format::OpenMetrics))
    });
    g.bench_function("scrape_80k_core_protobuf_64_promoted", |b| {
        b.iter(|| default_scrape(&m, Format::Protobuf))
    });
    g.finish();
    drop(handles);
}

criterion_group!(benches, watch);
criterion_main!(benches);
