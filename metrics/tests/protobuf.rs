//! The protobuf exposition: the same series as the text format at every level,
//! native buckets that read back exactly what was observed, and families split
//! across messages without losing or doubling a series.

use std::time::Duration;

use actor_metrics::buckets::{SCHEMA, ZERO_THRESHOLD, native_upper_bound};
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, DetailLevel, Format, Metrics, ScrapeRequest};

fn metrics(native: bool) -> Metrics {
    Metrics::new(Config {
        envoy_key: "e".into(),
        native_histograms: native,
        ..Config::default()
    })
    .unwrap()
}

fn proto(m: &Metrics, request: ScrapeRequest) -> Scrape {
    let bytes: Vec<u8> = m
        .exposition(&ScrapeRequest {
            format: Format::Protobuf,
            ..request
        })
        .flatten()
        .collect();
    Scrape::parse_protobuf(&bytes).expect("our own protobuf scrape decodes")
}

fn text(m: &Metrics, request: ScrapeRequest) -> Scrape {
    Scrape::parse(&m.render_with(&request)).expect("our own text scrape parses")
}

fn busy(m: &Metrics) -> Vec<actor_metrics::ActorMetrics> {
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    (0..50)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), &format!("k{i}"));
            for j in 0..=i {
                a.record_action(&inc, Duration::from_micros(40 * j + 3), j % 7 != 0);
            }
            a.sqlite_commit_duration_seconds().observe(0.0002);
            a.user_task_duration_seconds(actor_metrics::labels::TaskKind::Scheduled)
                .observe(12.0);
            a.queue_depth().set(i as i64);
            a
        })
        .collect()
}

#[test]
fn both_formats_select_the_same_series_at_every_level() {
    for native in [true, false] {
        let m = metrics(native);
        let handles = busy(&m);
        let mut requests: Vec<ScrapeRequest> = DetailLevel::ALL
            .into_iter()
            .map(|l| ScrapeRequest {
                detail: Some(l),
                ..ScrapeRequest::default()
            })
            .collect();
        requests.push(ScrapeRequest {
            actor_keys: vec!["k3".into()],
            ..ScrapeRequest::default()
        });
        requests.push(ScrapeRequest {
            actor_id_gens: vec!["7:1".into()],
            detail: Some(DetailLevel::Core),
            ..ScrapeRequest::default()
        });
        for r in requests {
            let t = text(&m, r.clone()).series_keys();
            let p = proto(&m, r.clone()).series_keys();
            assert!(!t.is_empty());
            assert_eq!(t, p, "native {native}, {r:?}");
        }
        drop(handles);
    }
}

#[test]
fn native_buckets_read_back_exactly_what_was_observed() {
    let m = metrics(true);
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let a = ty.register("1", Some(1), "k");
    let values = [0.0, 0.0000005, 0.001, 0.001, 0.0011, 0.25, 3.0, 1e6];
    for v in values {
        a.record_action(&inc, Duration::from_secs_f64(v), true);
    }
    let labels = [
        ("actor_id_gen", "1:1"),
        ("actor_key", "k"),
        ("envoy_key", "e"),
    ];
    for level in [DetailLevel::Core, DetailLevel::Full] {
        let s = proto(
            &m,
            ScrapeRequest {
                detail: Some(level),
                ..ScrapeRequest::default()
            },
        );
        let n = s
            .native("actor_action_duration_seconds", &labels)
            .expect("a native histogram per actor");
        assert_eq!((n.schema, n.zero_threshold), (SCHEMA, ZERO_THRESHOLD));
        assert_eq!(n.count, values.len() as u64);
        assert_eq!(n.zero_count, 2, "0 and 0.5 µs");
        assert!((n.sum - values.iter().sum::<f64>()).abs() < 1e-6);
        // Every value sits in the bucket whose bounds enclose it (1e6 s is
        // above the action range: it merges into the top bucket, 512 s).
        let mut expected: Vec<(i32, u64)> = Vec::new();
        for v in values.iter().filter(|v| **v > ZERO_THRESHOLD) {
            let k = (-200..=72)
                .find(|k| native_upper_bound(*k) >= v.min(512.0))
                .unwrap();
            match expected.iter_mut().find(|(key, _)| *key == k) {
                Some(e) => e.1 += 1,
                None => expected.push((k, 1)),
            }
        }
        assert_eq!(n.buckets, expected, "{level}");
        let classic = s.get("actor_action_duration_seconds_count", &labels);
        match level {
            DetailLevel::Full => assert_eq!(classic, Some(8.0), "full keeps classic buckets"),
            _ => assert_eq!(classic, None, "core: the native histogram alone"),
        }
        // Aggregates carry both.
        let agg = [("action", "increment"), ("actor_name", "counter")];
        assert_eq!(
            s.native("actor_type_action_duration_seconds", &agg)
                .map(|n| n.count),
            Some(8)
        );
        assert_eq!(
            s.get(
                "actor_type_action_duration_seconds_bucket",
                &[agg[0], agg[1], ("le", "+Inf")]
            ),
            Some(8.0)
        );
    }
    drop(a);
}

#[test]
fn without_native_histograms_a_core_histogram_is_a_summary_in_both_formats() {
    let m = metrics(false);
    let handles = busy(&m);
    let s = proto(&m, ScrapeRequest::default());
    assert!(s.natives().is_empty());
    assert_eq!(s.type_of("actor_action_duration_seconds"), Some("summary"));
    let labels = [
        ("actor_id_gen", "4:1"),
        ("actor_key", "k4"),
        ("envoy_key", "e"),
    ];
    assert_eq!(
        s.get("actor_action_duration_seconds_count", &labels),
        Some(5.0)
    );
    drop(handles);
}

#[test]
fn a_family_of_many_actors_spans_several_messages_and_loses_nothing() {
    let m = metrics(true);
    let ty = m.actor_type("counter");
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), "k");
            a.sqlite_commits_total().inc_by(i);
            a
        })
        .collect();
    let bytes: Vec<u8> = m
        .exposition(&ScrapeRequest {
            format: Format::Protobuf,
            ..ScrapeRequest::default()
        })
        .with_chunk_bytes(8 * 1024)
        .flatten()
        .collect();
    let s = Scrape::parse_protobuf(&bytes).unwrap();
    assert_eq!(s.series("actor_sqlite_commits_total").count(), 1000);
    assert_eq!(
        s.sum("actor_sqlite_commits_total", &[]),
        (0..1000).sum::<u64>() as f64
    );
    assert_eq!(
        s.get(
            "actor_type_sqlite_commits_total",
            &[("actor_name", "counter")]
        ),
        Some((0..1000).sum::<u64>() as f64)
    );
    assert_eq!(
        s.get("actor_metrics_retained_label_sets", &[("state", "live")]),
        Some(1000.0),
        "the registry's self-metrics come along"
    );
    drop(handles);
}
