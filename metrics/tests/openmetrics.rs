//! OpenMetrics text 1.0.0: the same series and values as the text format at
//! every level and selection (its sample lines are the text format's, byte for
//! byte), OpenMetrics metadata, the registry's families included, and `# EOF`
//! once, at the end, however the scrape is chunked.

use std::time::Duration;

use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, DetailLevel, Format, Metrics, ScrapeRequest};

fn metrics() -> Metrics {
    Metrics::new(Config {
        envoy_key: "e\"\\\n".into(),
        ..Config::default()
    })
    .unwrap()
}

fn body(m: &Metrics, request: &ScrapeRequest, format: Format, chunk: usize) -> String {
    let e = m
        .exposition(&ScrapeRequest {
            format,
            ..request.clone()
        })
        .with_chunk_bytes(chunk);
    assert_eq!(e.format(), format);
    String::from_utf8(e.flatten().collect()).expect("text formats are UTF-8")
}

fn busy(m: &Metrics) -> Vec<actor_metrics::ActorMetrics> {
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    (0..40)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), &format!("k{i}"));
            for j in 0..=i {
                a.record_action(&inc, Duration::from_micros(400 * j + 3), j % 7 != 0);
            }
            a.sqlite_commit_duration_seconds().observe(0.0002);
            a.user_task_duration_seconds(actor_metrics::labels::TaskKind::Scheduled)
                .observe(12.0);
            a.queue_depth().set(i as i64 - 20);
            a
        })
        .collect()
}

/// Collectors of every type a host may register, one counter without `_total`.
fn register_others(m: &Metrics) {
    let r = m.registry();
    let c =
        prometheus::IntCounterVec::new(prometheus::Opts::new("jobs", "Jobs \"done\"."), &["queue"])
            .unwrap();
    c.with_label_values(&["a\"b"]).inc_by(2);
    r.register(Box::new(c)).unwrap();
    let h = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("job_duration_seconds", "Job time.")
            .buckets(vec![0.5, 1.0, 2.0]),
    )
    .unwrap();
    h.observe(0.7);
    h.observe(5.0);
    r.register(Box::new(h)).unwrap();
    let g = prometheus::Gauge::new("temperature", "A gauge.").unwrap();
    g.set(-1.5);
    r.register(Box::new(g)).unwrap();
}

/// The sample lines of a text body: everything but comments.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

fn requests() -> Vec<ScrapeRequest> {
    let mut requests: Vec<ScrapeRequest> = DetailLevel::ALL
        .into_iter()
        .map(|l| ScrapeRequest {
            detail: Some(l),
            ..ScrapeRequest::default()
        })
        .collect();
    requests.push(ScrapeRequest::default());
    requests.push(ScrapeRequest {
        actor_keys: vec!["k3".into(), "nobody".into()],
        ..ScrapeRequest::default()
    });
    requests.push(ScrapeRequest {
        actor_id_gens: vec!["7:1".into()],
        detail: Some(DetailLevel::Core),
        ..ScrapeRequest::default()
    });
    // The promoted scrape (nobody is promoted here: the union with a key).
    requests.push(ScrapeRequest {
        promoted: true,
        actor_keys: vec!["k3".into()],
        ..ScrapeRequest::default()
    });
    requests
}

#[test]
fn every_format_selects_the_same_series_with_the_same_values() {
    let m = metrics();
    register_others(&m);
    let handles = busy(&m);
    for r in requests() {
        let text = body(&m, &r, Format::Text, 1 << 16);
        let om = body(&m, &r, Format::OpenMetrics, 1 << 16);
        // The sample lines are the text format's, byte for byte.
        assert_eq!(samples(&om), samples(&text), "{r:?}");
        let t = Scrape::parse(&text).expect("text parses");
        let o = Scrape::parse_openmetrics(&om).expect("OpenMetrics parses");
        let p: Vec<u8> = m
            .exposition(&ScrapeRequest {
                format: Format::Protobuf,
                ..r.clone()
            })
            .flatten()
            .collect();
        let p = Scrape::parse_protobuf(&p).expect("protobuf decodes");
        assert!(!t.series_keys().is_empty(), "{r:?}");
        assert_eq!(o.series_keys(), t.series_keys(), "{r:?}");
        assert_eq!(p.series_keys(), t.series_keys(), "{r:?}");
        // Typed alike: each family's type reads the same in both, but for
        // a counter without `_total`, unknown to OpenMetrics.
        if !r.selects_actors() {
            assert_eq!(o.type_of("jobs"), Some("untyped"));
        }
        for s in t.samples().iter().filter(|s| s.name != "jobs") {
            let family = s.name.trim_end_matches("_bucket");
            let family = ["_sum", "_count"]
                .iter()
                .find_map(|x| family.strip_suffix(x).filter(|f| t.type_of(f).is_some()))
                .unwrap_or(family);
            assert_eq!(o.type_of(family), t.type_of(family), "{family}");
            assert_eq!(o.help_of(family), t.help_of(family), "{family}");
        }
    }
    drop(handles);
}

#[test]
fn openmetrics_metadata_and_the_end_of_the_body() {
    let m = metrics();
    register_others(&m);
    let handles = busy(&m);
    let whole = body(&m, &ScrapeRequest::default(), Format::OpenMetrics, 1 << 20);
    // Chunked small or not, the same body, `# EOF` once and last.
    assert_eq!(
        body(&m, &ScrapeRequest::default(), Format::OpenMetrics, 1),
        whole
    );
    assert!(whole.ends_with("\n# EOF\n"));
    assert_eq!(whole.matches("# EOF").count(), 1);
    for line in [
        // A counter family is named without `_total`; its samples keep it.
        "# TYPE actor_action_calls counter\n",
        "# TYPE actor_type_action_calls counter\n",
        "# TYPE actor_metrics_sweeps counter\n",
        // Units only where the name ends in one.
        "# TYPE actor_action_duration_seconds summary\n# UNIT actor_action_duration_seconds seconds\n",
        "# TYPE actor_type_action_duration_seconds histogram\n# UNIT actor_type_action_duration_seconds seconds\n",
        "# TYPE job_duration_seconds histogram\n# UNIT job_duration_seconds seconds\n",
        // A registry counter without `_total` keeps its name, typed unknown.
        "# TYPE jobs unknown\njobs{queue=\"a\\\"b\"} 2\n",
        "# HELP jobs Jobs \\\"done\\\".\n",
        "job_duration_seconds_bucket{le=\"+Inf\"} 2\n",
        "temperature -1.5\n",
    ] {
        assert!(whole.contains(line), "{line:?} in\n{whole}");
    }
    assert!(!whole.contains("_created"));
    assert!(!whole.contains("# UNIT actor_queue_depth"));
    assert!(!whole.contains("\n\n"));
    let text = m.render();
    assert!(!text.contains("# UNIT") && !text.contains("# EOF"));
    drop(handles);
}
