//! A whole scrape of 10k live actors with the full catalogue populated: our
//! streamed exposition against the same per-actor series in the two Rust
//! clients: `prometheus` `MetricVec`s (`registry.gather()` + `TextEncoder`) and
//! `prometheus-client` `Family`s (`encoding::text::encode`, OpenMetrics). Our
//! scrape also writes the `actor_type_*` aggregates and the self-metrics, so it
//! does strictly more. `render_10k_core` is ours at the default level, for
//! scale; the `_protobuf` variants are the same scrapes in the protobuf format
//! with native histograms, as Prometheus with native histograms on gets them.

use std::time::Duration;

use actor_benches::{
    ManualClock, TextFormat, assert_same_per_actor_samples, bench_metrics, build_client,
    build_mirror, build_ours, series_per_actor,
};
use actor_metrics::{DetailLevel, Format, Metrics, ScrapeRequest};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const ACTORS: usize = 10_000;

/// Bytes of one whole scrape at `detail` in `format`, as the server streams
/// it: chunk by chunk, each handed off whole.
fn stream(m: &Metrics, detail: DetailLevel, format: Format) -> usize {
    let request = ScrapeRequest {
        detail: Some(detail),
        format,
        ..ScrapeRequest::default()
    };
    m.exposition(&request).map(|chunk| chunk.len()).sum()
}

/// Bytes of one whole scrape gzipped as the server does it (fast level).
fn gzipped(m: &Metrics, detail: DetailLevel, format: Format) -> usize {
    use std::io::Write as _;
    let request = ScrapeRequest {
        detail: Some(detail),
        format,
        ..ScrapeRequest::default()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for chunk in m.exposition(&request) {
        gz.write_all(&chunk).expect("gzip into a Vec");
    }
    gz.finish().expect("gzip into a Vec").len()
}

fn scrape(c: &mut Criterion) {
    let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
    let handles = build_ours(&m, ACTORS);
    let mirror = build_mirror(ACTORS);
    let client = build_client(ACTORS);

    // Outside timing: a real parser reads back identical per-actor values from
    // each peer's text (one peer at a time, to bound memory).
    let ours = m.render();
    let mut theirs = Vec::new();
    mirror.encode_into(&mut theirs);
    let theirs = String::from_utf8(theirs).expect("TextEncoder writes UTF-8");
    let compared = assert_same_per_actor_samples(&ours, &theirs, TextFormat::Prometheus);
    let gather_bytes = theirs.len();
    drop(theirs);
    let mut om = String::new();
    client.encode_into(&mut om);
    let compared_om = assert_same_per_actor_samples(&ours, &om, TextFormat::OpenMetrics);
    let encode_bytes = om.len();
    drop(om);
    println!(
        "scrape setup: {ACTORS} actors x {} series; per-actor samples identical: \
         {compared} (prometheus), {compared_om} (prometheus-client); ours {:.1} MB \
         (with aggregates), core {:.1} MB, prometheus {:.1} MB, prometheus-client {:.1} MB",
        series_per_actor(),
        ours.len() as f64 / 1e6,
        stream(&m, DetailLevel::Core, Format::Text) as f64 / 1e6,
        gather_bytes as f64 / 1e6,
        encode_bytes as f64 / 1e6,
    );
    drop(ours);
    println!("bytes per scrape of {ACTORS} actors (identity / gzip):");
    for detail in [DetailLevel::Core, DetailLevel::Full] {
        for format in [Format::Text, Format::Protobuf] {
            println!(
                "  {detail} {format:?}: {:.1} MB / {:.1} MB",
                stream(&m, detail, format) as f64 / 1e6,
                gzipped(&m, detail, format) as f64 / 1e6
            );
        }
    }

    let mut g = c.benchmark_group("scrape");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("render_10k", |b| {
        b.iter(|| stream(&m, DetailLevel::Full, Format::Text))
    });
    g.bench_function("render_10k_core", |b| {
        b.iter(|| stream(&m, DetailLevel::Core, Format::Text))
    });
    g.bench_function("render_10k_protobuf", |b| {
        b.iter(|| stream(&m, DetailLevel::Full, Format::Protobuf))
    });
    g.bench_function("render_10k_core_protobuf", |b| {
        b.iter(|| stream(&m, DetailLevel::Core, Format::Protobuf))
    });
    let mut buf = Vec::with_capacity(gather_bytes);
    g.bench_function("prometheus_gather_10k", |b| {
        b.iter(|| {
            buf.clear();
            mirror.encode_into(&mut buf);
            buf.len()
        })
    });
    drop(buf);
    let mut text = String::with_capacity(encode_bytes);
    g.bench_function("prometheus_client_encode_10k", |b| {
        b.iter(|| {
            text.clear();
            client.encode_into(&mut text);
            text.len()
        })
    });
    g.finish();
    drop(handles);
}

criterion_group!(benches, scrape);
criterion_main!(benches);
