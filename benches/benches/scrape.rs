//! A whole scrape of 10k live actors with the full catalogue populated: our
//! renderer against the same per-actor series as `prometheus` `MetricVec`s
//! (`registry.gather()` + `TextEncoder`). Our scrape also writes the
//! `actor_type_*` aggregates and the self-metrics, so it does strictly more.

use std::time::Duration;

use actor_benches::{
    ManualClock, TextFormat, assert_same_per_actor_samples, bench_metrics, build_mirror,
    build_ours, series_per_actor,
};
use actor_metrics::{DetailLevel, ScrapeRequest};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const ACTORS: usize = 10_000;

fn scrape(c: &mut Criterion) {
    let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
    let handles = build_ours(&m, ACTORS);
    let mirror = build_mirror(ACTORS);

    // Outside timing: a real parser reads back identical per-actor values.
    let ours = m.render();
    let mut theirs = Vec::new();
    mirror.encode_into(&mut theirs);
    let theirs = String::from_utf8(theirs).expect("TextEncoder writes UTF-8");
    let compared = assert_same_per_actor_samples(&ours, &theirs, TextFormat::Prometheus);
    println!(
        "scrape setup: {ACTORS} actors x {} series; {compared} per-actor samples identical; \
         ours {:.1} MB (with aggregates), prometheus {:.1} MB",
        series_per_actor(),
        ours.len() as f64 / 1e6,
        theirs.len() as f64 / 1e6
    );
    let (ours_cap, theirs_cap) = (ours.len(), theirs.len());
    drop((ours, theirs));

    let mut g = c.benchmark_group("scrape");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    // As the server streams it: chunk by chunk, each handed off whole.
    let full = ScrapeRequest {
        detail: Some(DetailLevel::Full),
        ..ScrapeRequest::default()
    };
    g.bench_function("render_10k", |b| {
        b.iter(|| m.exposition(&full).map(|chunk| chunk.len()).sum::<usize>())
    });
    let _ = ours_cap;
    let mut buf = Vec::with_capacity(theirs_cap);
    g.bench_function("prometheus_gather_10k", |b| {
        b.iter(|| {
            buf.clear();
            mirror.encode_into(&mut buf);
            buf.len()
        })
    });
    g.finish();
    drop(handles);
}

criterion_group!(benches, scrape);
criterion_main!(benches);
