//! Native histograms through the real Prometheus (Debian's 2.42, run with
//! `--enable-feature=native-histograms`, so it negotiates protobuf): a
//! per-actor latency distribution in one series, whose p99 is within the
//! schema's error of the true p99 of the values recorded, with an exact count
//! and sum, and no more series per actor than the text format at `core`.

use std::net::SocketAddr;
use std::time::Duration;

use actor_e2e_tests::{
    Prometheus, Role, deploy_file_with, deploy_path, prometheus_available, wait_for,
};
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, Metrics};
use actor_metrics_server::{MetricsServer, Readiness, ServerOptions};

const T: Duration = Duration::from_secs(60);

/// 1000 deterministic durations spread log-uniformly over 0.2 ms … 2 s.
fn durations() -> Vec<Duration> {
    (0..1000u32)
        .map(|i| {
            let x = f64::from((i * 7919) % 1000) / 1000.0;
            Duration::from_secs_f64(0.0002 * 10f64.powf(4.0 * x))
        })
        .collect()
}

/// The q-quantile as Prometheus defines it for a sorted sample: the value at
/// rank `q × n` (no interpolation needed to bound a bucket's error).
fn true_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn prometheus_reads_a_per_actor_p99_from_one_native_series() {
    if !prometheus_available("prometheus_reads_a_per_actor_p99_from_one_native_series") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Metrics::new(Config {
        envoy_key: "native-e2e".into(),
        ..Config::default()
    })
    .unwrap();
    let server = runtime
        .block_on(MetricsServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            ServerOptions {
                readiness: Readiness::new(Vec::<String>::new()),
                ..ServerOptions::default()
            },
        ))
        .unwrap();
    let target: SocketAddr = server.local_addr();
    let ty = metrics.actor_type("counter");
    let increment = ty.action("increment");
    let actor = ty.register("1", Some(1), "native");
    actor.sqlite_commits_total().inc();
    // More actors than one protobuf message holds: a family spans messages.
    let crowd: Vec<_> = (2..602)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), &format!("crowd-{i}"));
            a.record_action(&increment, Duration::from_millis(i), true);
            a
        })
        .collect();

    // The shipped config and rules, at 1 s intervals, pointed at this server.
    let rules = |f: &str| {
        deploy_path(&format!("prometheus/{f}"))
            .display()
            .to_string()
    };
    let (alerts, recording) = (rules("alerts.yml"), rules("recording.yml"));
    let target_text = target.to_string();
    let config = deploy_file_with(
        "prometheus/prometheus.yml",
        &[
            ("localhost:9091", &target_text),
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            ("scrape_timeout: 10s", "scrape_timeout: 900ms"),
            ("- alerts.yml", &format!("- {alerts}")),
            ("- recording.yml", &format!("- {recording}")),
        ],
    );
    let prometheus = Prometheus::start_with(&config, Role::NativeHistograms);
    let series = r#"actor_action_duration_seconds{actor_key="native"}"#;
    // The empty native histogram is ingested first, so rate() sees every observation.
    wait_for(T, "the empty native histogram in Prometheus", || {
        prometheus
            .value(&format!("histogram_count({series})"))
            .filter(|c| *c == 0.0)
    });

    let durations = durations();
    for d in &durations {
        actor.record_action(&increment, *d, true);
    }
    let recorded_sum = durations
        .iter()
        .fold(0.0f64, |acc, d| acc + d.as_secs_f64());
    let count = wait_for(T, "all 1000 observations in Prometheus", || {
        prometheus
            .value(&format!("histogram_count({series})"))
            .filter(|c| *c == 1000.0)
    });
    assert_eq!(count, 1000.0);
    let sum = prometheus
        .value(&format!("histogram_sum({series})"))
        .expect("histogram_sum");
    assert_eq!(
        sum.to_bits(),
        recorded_sum.to_bits(),
        "sum {sum} vs {recorded_sum}"
    );

    let mut sorted: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    // Schema 3: a bucket is 2^(1/8) times the one below, so an estimate inside the
    // true quantile's bucket is within 9.05 % of it.
    let max_error = 2f64.powf(0.125) - 1.0;
    for q in [0.5, 0.9, 0.99] {
        let truth = true_quantile(&sorted, q);
        let est = wait_for(T, "a rate over the window", || {
            prometheus.value(&format!("histogram_quantile({q}, rate({series}[1m]))"))
        });
        let error = (est - truth).abs() / truth;
        eprintln!(
            "p{}: true {truth:.6} s, Prometheus {est:.6} s, error {:.2} %",
            q * 100.0,
            error * 100.0
        );
        assert!(error <= max_error, "p{q}: {est} vs true {truth} ({error})");
    }

    // One series per histogram: no more series for this actor than the text
    // format exports at core, where a histogram is _sum and _count.
    let text = Scrape::parse(&metrics.render()).unwrap();
    let in_text = text
        .samples()
        .iter()
        .filter(|s| s.labels.get("actor_key").map(String::as_str) == Some("native"))
        .count();
    let in_prometheus = prometheus
        .value(r#"count({actor_key="native"})"#)
        .expect("series count");
    eprintln!(
        "series of the actor: {in_prometheus} in Prometheus (protobuf), {in_text} in the text format"
    );
    assert!(
        in_prometheus as usize <= in_text,
        "{in_prometheus} > {in_text}"
    );
    assert_eq!(
        prometheus
            .value(r#"count({__name__=~"actor_action_duration_seconds.*", actor_key="native"})"#),
        Some(1.0),
        "the action histogram is one series"
    );
    assert_eq!(
        prometheus.value("count(actor_action_duration_seconds)"),
        Some(601.0),
        "every actor of a family split across messages"
    );
    // Aggregates: classic buckets are ignored by Prometheus 2.42 when native
    // ones come along, and the native aggregate answers histogram_quantile.
    let agg = prometheus
        .value(r#"histogram_count(actor_type_action_duration_seconds{action="increment"})"#)
        .expect("native aggregate");
    assert_eq!(agg, 1600.0);
    // The shipped recording rule reads the native aggregate when the classic
    // buckets are gone: p99 of all 1600 recorded durations.
    let mut all: Vec<f64> = sorted.clone();
    all.extend((2..602u64).map(|i| Duration::from_millis(i).as_secs_f64()));
    all.sort_by(f64::total_cmp);
    let truth = true_quantile(&all, 0.99);
    let recorded = wait_for(T, "the recording rule's p99", || {
        prometheus.value(r#"actor_type:action_duration_seconds:p99_5m{action="increment"}"#)
    });
    let error = (recorded - truth).abs() / truth;
    eprintln!(
        "recording rule p99: true {truth:.6} s, rule {recorded:.6} s, error {:.2} %",
        error * 100.0
    );
    assert!(error <= max_error, "rule p99 {recorded} vs true {truth}");
    drop((actor, crowd));
    runtime.block_on(server.shutdown());
}
