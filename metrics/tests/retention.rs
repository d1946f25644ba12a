//! Retention, revival, removal, cap and aggregates, read through a parsed scrape.

use std::time::Duration;

use actor_metrics::labels::{Inbox, TaskKind};
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, ConfigError, DetailLevel, Metrics, MetricsError, ScrapeRequest};
use tokio::time::Instant;

const RETENTION: Duration = Duration::from_secs(600);

fn metrics(config: Config) -> Metrics {
    Metrics::new(Config {
        envoy_key: "envoy-1".into(),
        ..config
    })
    .unwrap()
}

/// A scrape at `full`, so every family this file records is in it.
fn scrape(m: &Metrics) -> Scrape {
    let full = ScrapeRequest {
        detail: Some(DetailLevel::Full),
        ..ScrapeRequest::default()
    };
    Scrape::parse(&m.render_with(&full)).expect("our own scrape parses")
}

fn actor_labels<'a>(id_gen: &'a str, key: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("actor_id_gen", id_gen),
        ("actor_key", key),
        ("envoy_key", "envoy-1"),
    ]
}

#[tokio::test(start_paused = true)]
async fn retention_is_exact_to_the_millisecond_with_the_background_sweeper() {
    let m = metrics(Config {
        retention: RETENTION,
        sweep_interval: Duration::from_millis(1),
        ..Config::default()
    });
    let sweeper = m.spawn_sweeper();
    let ty = m.actor_type("counter");
    let a = ty.register("a", Some(1), "k");
    a.queue_messages_sent_total().inc_by(7);
    let labels = actor_labels("a:1", "k");
    drop(a);
    let s = scrape(&m);
    assert_eq!(s.get("actor_active", &labels), Some(0.0));
    assert_eq!(s.get("actor_queue_messages_sent_total", &labels), Some(7.0));

    tokio::time::advance(RETENTION - Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        scrape(&m).get("actor_queue_messages_sent_total", &labels),
        Some(7.0),
        "still present 1 ms before the retention ends"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    // Let the sweeper's tick for this instant run.
    for _ in 0..3 {
        tokio::time::advance(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
    }
    let s = scrape(&m);
    assert_eq!(
        s.get("actor_queue_messages_sent_total", &labels),
        None,
        "removed after the retention"
    );
    assert_eq!(s.get("actor_active", &labels), None);
    assert_eq!(s.get("actor_metrics_series_removed_total", &[]), Some(1.0));

    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(60)).await;
        tokio::task::yield_now().await;
        let s = scrape(&m);
        assert!(
            !s.has_label_value("actor_id_gen", "a:1"),
            "never back on later scrapes"
        );
        assert_eq!(
            s.get(
                "actor_type_queue_messages_sent_total",
                &[("actor_name", "counter")]
            ),
            Some(7.0),
            "the aggregate keeps the removed actor's count"
        );
    }
    sweeper.abort();
}

#[tokio::test(start_paused = true)]
async fn sweep_boundary_is_inclusive_at_the_deadline() {
    let m = metrics(Config {
        retention: RETENTION,
        ..Config::default()
    });
    let a = m.actor_type("t").register("a", Some(1), "k");
    let stopped_at = Instant::now();
    a.stopped();
    assert_eq!(
        m.sweep(stopped_at + RETENTION - Duration::from_millis(1))
            .removed,
        0
    );
    assert_eq!(m.retained_len(), 1);
    assert_eq!(m.sweep(stopped_at + RETENTION).removed, 1);
    assert_eq!(m.retained_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn revival_before_expiry_continues_and_after_removal_starts_fresh() {
    let m = metrics(Config {
        retention: RETENTION,
        ..Config::default()
    });
    let ty = m.actor_type("counter");
    let labels = actor_labels("a:1", "k");

    let a = ty.register("a", Some(1), "k");
    a.connections_total().inc_by(3);
    a.stopped();
    tokio::time::advance(RETENTION / 2).await;

    let b = ty.register("a", Some(1), "k");
    assert_eq!(b.connections_total().get(), 3, "same series");
    b.connections_total().inc();
    // The first stop's expiry item is due now but must be skipped: the set was revived.
    tokio::time::advance(RETENTION).await;
    let r = m.sweep(Instant::now());
    assert_eq!((r.removed, r.skipped), (0, 1));
    assert_eq!(
        scrape(&m).get("actor_connections_total", &labels),
        Some(4.0)
    );
    assert_eq!(scrape(&m).get("actor_active", &labels), Some(1.0));

    b.stopped();
    tokio::time::advance(RETENTION).await;
    assert_eq!(m.sweep(Instant::now()).removed, 1);
    assert_eq!(scrape(&m).get("actor_connections_total", &labels), None);

    let c = ty.register("a", Some(1), "k");
    assert_eq!(c.connections_total().get(), 0, "fresh series after removal");
    assert_eq!(
        scrape(&m).get("actor_connections_total", &labels),
        Some(0.0)
    );
    assert_eq!(
        scrape(&m).get("actor_type_connections_total", &[("actor_name", "counter")]),
        Some(4.0),
        "aggregate still counts the removed generation"
    );
}

#[tokio::test]
async fn stale_expiry_item_does_not_remove_a_set_stopped_again_later() {
    let m = metrics(Config {
        retention: RETENTION,
        ..Config::default()
    });
    let ty = m.actor_type("t");
    let t0 = Instant::now();
    ty.register("a", Some(1), "k").stopped(); // item 1, deadline t0 + R
    let again = ty.register("a", Some(1), "k");
    again.stopped(); // item 2, later deadline
    // At item 1's deadline the set has been stopped again since; it must stay.
    let r = m.sweep(t0 + RETENTION);
    assert_eq!(r.removed, 0);
    assert_eq!(m.retained_len(), 1);
}

#[tokio::test]
async fn naive_concatenation_collisions_stay_two_series() {
    let m = metrics(Config::default());
    let ty = m.actor_type("t");
    let a = ty.register("x", Some(1), "2y");
    let b = ty.register("x", Some(12), "y");
    a.queue_messages_sent_total().inc_by(1);
    b.queue_messages_sent_total().inc_by(2);
    let s = scrape(&m);
    assert_eq!(
        s.get(
            "actor_queue_messages_sent_total",
            &actor_labels("x:1", "2y")
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "actor_queue_messages_sent_total",
            &actor_labels("x:12", "y")
        ),
        Some(2.0)
    );
    assert_eq!(m.retained_len(), 2);
}

#[tokio::test]
async fn stop_zeroes_gauges_keeps_counters_and_aggregates_stay_exact() {
    let m = metrics(Config::default());
    let ty = m.actor_type("chat");
    let agg = [("actor_name", "chat")];
    let a = ty.register("a", Some(1), "ka");
    let b = ty.register("b", Some(1), "kb");
    for _ in 0..2 {
        a.connections_active().inc();
        a.connections_total().inc();
    }
    for _ in 0..3 {
        b.connections_active().inc();
        b.connections_total().inc();
    }
    a.inbox_depth(Inbox::Queue).set(4);
    a.user_tasks_active(TaskKind::Background).inc();
    let s = scrape(&m);
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(5.0));
    assert_eq!(s.get("actor_type_active", &agg), Some(2.0));

    a.stopped();
    let s = scrape(&m);
    let la = actor_labels("a:1", "ka");
    assert_eq!(s.get("actor_active", &la), Some(0.0));
    assert_eq!(
        s.get("actor_connections_active", &la),
        Some(0.0),
        "gauge zeroed"
    );
    assert_eq!(
        s.get("actor_connections_total", &la),
        Some(2.0),
        "counter kept"
    );
    let mut la_inbox = la.to_vec();
    la_inbox.push(("inbox", "queue"));
    assert_eq!(s.get("actor_inbox_depth", &la_inbox), Some(0.0));
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(3.0));
    assert_eq!(
        s.get(
            "actor_type_user_tasks_active",
            &[("actor_name", "chat"), ("kind", "background")]
        ),
        Some(0.0)
    );
    assert_eq!(s.get("actor_type_connections_total", &agg), Some(5.0));

    // A write through a stopped handle is ignored: no stuck gauge.
    a.connections_active().inc();
    a.queue_depth().set(9);
    assert_eq!(a.connections_active().get(), 0);
    assert_eq!(a.queue_depth().get(), 0);

    drop(b);
    let s = scrape(&m);
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(0.0));
    assert_eq!(s.get("actor_type_active", &agg), Some(0.0));
    assert_eq!(s.get("actor_type_connections_total", &agg), Some(5.0));
}

#[tokio::test]
async fn stopped_is_idempotent_and_clones_share_one_registration() {
    let m = metrics(Config::default());
    let a = m.actor_type("t").register("a", Some(1), "k");
    let clone = a.clone();
    a.stopped();
    a.stopped();
    clone.stopped();
    drop(a);
    drop(clone);
    let s = scrape(&m);
    assert_eq!(
        s.get(
            "actor_metrics_retained_label_sets",
            &[("state", "expiring")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get("actor_metrics_retained_label_sets", &[("state", "live")]),
        Some(0.0)
    );
    // One stop → one expiry item: one removal, nothing skipped.
    let r = m.sweep(Instant::now() + RETENTION);
    assert_eq!((r.removed, r.skipped), (1, 0));
}

#[tokio::test]
async fn two_live_registrations_share_series_and_each_owns_its_gauge_share() {
    let m = metrics(Config::default());
    let ty = m.actor_type("t");
    let a = ty.register("a", Some(1), "k");
    let b = ty.register("a", Some(1), "k");
    let labels = actor_labels("a:1", "k");
    let agg = [("actor_name", "t")];
    a.queue_depth().set(2);
    b.queue_depth().set(3);
    a.inbox_depth(Inbox::Action).inc();
    a.queue_messages_sent_total().inc();
    b.queue_messages_sent_total().inc();
    let s = scrape(&m);
    assert_eq!(
        s.get("actor_queue_depth", &labels),
        Some(5.0),
        "2 + 3, not the last write"
    );
    assert_eq!(s.get("actor_type_queue_depth", &agg), Some(5.0));
    assert_eq!(s.get("actor_queue_messages_sent_total", &labels), Some(2.0));

    a.stopped();
    let s = scrape(&m);
    assert_eq!(
        s.get("actor_active", &labels),
        Some(1.0),
        "still live through b"
    );
    assert_eq!(
        s.get("actor_queue_depth", &labels),
        Some(3.0),
        "a's share left with a"
    );
    assert_eq!(s.get("actor_type_queue_depth", &agg), Some(3.0));
    let mut inbox = labels.to_vec();
    inbox.push(("inbox", "action"));
    assert_eq!(s.get("actor_inbox_depth", &inbox), Some(0.0));
    assert_eq!((a.queue_depth().own(), b.queue_depth().own()), (0, 3));

    b.stopped();
    let s = scrape(&m);
    assert_eq!(s.get("actor_queue_depth", &labels), Some(0.0));
    assert_eq!(s.get("actor_type_queue_depth", &agg), Some(0.0));
    assert_eq!(s.get("actor_queue_messages_sent_total", &labels), Some(2.0));
}

#[tokio::test]
async fn overflow_registrations_keep_gauges_and_aggregates_exact() {
    let m = metrics(Config {
        max_retained: 1,
        ..Config::default()
    });
    let ty = m.actor_type("t");
    let agg = [("actor_name", "t")];
    let a = ty.register("a", Some(1), "k");
    let b = ty.register("b", Some(1), "k");
    let c = ty.register("c", Some(1), "k");
    assert!(!a.is_overflow() && b.is_overflow() && c.is_overflow());
    a.connections_active().set(1);
    b.connections_active().set(4);
    c.connections_active().set(6);
    let overflow = actor_labels("overflow", "t~overflow");
    let s = scrape(&m);
    assert_eq!(s.get("actor_connections_active", &overflow), Some(10.0));
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(11.0));

    b.stopped();
    let s = scrape(&m);
    assert_eq!(s.get("actor_connections_active", &overflow), Some(6.0));
    assert_eq!(s.get("actor_type_connections_active", &agg), Some(7.0));
    assert_eq!(s.get("actor_active", &overflow), Some(1.0));

    drop(c);
    let s = scrape(&m);
    assert_eq!(s.get("actor_connections_active", &overflow), Some(0.0));
    assert_eq!(
        s.get("actor_type_connections_active", &agg),
        Some(1.0),
        "only a is left"
    );
    drop((a, b));
}

#[tokio::test]
async fn a_write_racing_the_stop_is_undone_exactly_once() {
    // A handle whose registration stopped ignores writes; a clone that writes
    // after the stop flag is set withdraws what it wrote, so nothing sticks.
    let m = metrics(Config::default());
    let a = m.actor_type("t").register("a", Some(1), "k");
    let clone = a.clone();
    a.queue_depth().set(5);
    a.stopped();
    clone.queue_depth().set(7);
    clone.queue_depth().add(2);
    assert_eq!(clone.queue_depth().get(), 0);
    assert_eq!(clone.queue_depth().own(), 0);
}

#[tokio::test]
async fn cap_evicts_oldest_expiring_then_overflows() {
    let m = metrics(Config {
        max_retained: 3,
        ..Config::default()
    });
    let ty = m.actor_type("t");
    let a = ty.register("a", Some(1), "k");
    let b = ty.register("b", Some(1), "k");
    let c = ty.register("c", Some(1), "k");
    a.stopped();
    b.stopped();
    // At the cap: the oldest expiring (a) is evicted early.
    let d = ty.register("d", Some(1), "k");
    assert!(!d.is_overflow());
    assert_eq!(m.retained_len(), 3);
    let s = scrape(&m);
    assert!(!s.has_label_value("actor_id_gen", "a:1"));
    assert!(s.has_label_value("actor_id_gen", "b:1"));
    assert_eq!(s.get("actor_metrics_evicted_early_total", &[]), Some(1.0));

    let e = ty.register("e", Some(1), "k"); // evicts b
    assert!(!e.is_overflow());
    // Every retained set is live now (c, d, e): new actors share the overflow set.
    let f = ty.register("f", Some(1), "k");
    let g = ty.register("g", Some(1), "k");
    assert!(f.is_overflow() && g.is_overflow());
    f.queue_messages_sent_total().inc();
    g.queue_messages_sent_total().inc();
    assert_eq!(m.retained_len(), 3, "the map never exceeds the cap");
    let s = scrape(&m);
    let overflow = actor_labels("overflow", "t~overflow");
    assert_eq!(
        s.get("actor_queue_messages_sent_total", &overflow),
        Some(2.0)
    );
    assert_eq!(s.get("actor_active", &overflow), Some(2.0));
    assert_eq!(s.get("actor_metrics_overflow_total", &[]), Some(2.0));
    assert_eq!(s.get("actor_metrics_evicted_early_total", &[]), Some(2.0));
    assert_eq!(
        s.get("actor_type_active", &[("actor_name", "t")]),
        Some(5.0),
        "totals stay exact"
    );
    drop((c, d, e, f, g));
}

#[tokio::test]
async fn odd_label_values_render_and_parse_back() {
    let long = "x".repeat(300);
    let values = [
        "quote\"inside",
        "back\\slash",
        "new\nline",
        "tab\there",
        "unicode ✓ ünï 🦀",
        "",
        "}{,=\"",
        long.as_str(),
    ];
    let m = metrics(Config {
        max_label_value_bytes: 256,
        ..Config::default()
    });
    let ty = m.actor_type("weird \"type\"\n");
    let handles: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let h = ty.register(&format!("id{i}"), Some(1), key);
            h.queue_messages_sent_total().inc_by(i as u64 + 1);
            h
        })
        .collect();
    let text = m.render_with(&ScrapeRequest {
        detail: Some(DetailLevel::Full),
        ..ScrapeRequest::default()
    });
    let s = Scrape::parse(&text).unwrap();
    for (i, key) in values.iter().enumerate() {
        let cut;
        let expect_key = if key.len() > 256 {
            // Cut to 239 bytes, then `~` and 16 hex digits of a hash of the whole key.
            cut = handles[i].labels().actor_key().to_owned();
            assert_eq!(cut.len(), 256);
            assert!(cut.starts_with(&key[..239]) && cut.as_bytes()[239] == b'~');
            cut.as_str()
        } else {
            key
        };
        let id = format!("id{i}:1");
        assert_eq!(
            s.get(
                "actor_queue_messages_sent_total",
                &[
                    ("actor_id_gen", &id),
                    ("actor_key", expect_key),
                    ("envoy_key", "envoy-1")
                ]
            ),
            Some(i as f64 + 1.0),
            "key {key:?}"
        );
    }
    assert_eq!(
        s.get("actor_metrics_label_values_truncated_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        s.get("actor_type_active", &[("actor_name", "weird \"type\"\n")]),
        Some(8.0)
    );

    // An independent parser reads the same values back.
    let other = openmetrics_parser::prometheus::parse_prometheus(&text)
        .expect("independent parser accepts the scrape");
    let fam = &other.families["actor_queue_messages_sent_total"];
    assert_eq!(fam.iter_samples().count(), values.len());
    drop(handles);
}

#[tokio::test]
async fn per_actor_detail_off_exports_only_aggregates() {
    let m = metrics(Config {
        per_actor_detail: DetailLevel::Off,
        ..Config::default()
    });
    let ty = m.actor_type("t");
    let a = ty.register("a", Some(1), "k");
    a.queue_messages_sent_total().inc();
    let s = Scrape::parse(&m.render()).unwrap();
    assert_eq!(s.series("actor_queue_messages_sent_total").count(), 0);
    assert_eq!(s.series("actor_active").count(), 0);
    assert_eq!(
        s.get(
            "actor_type_queue_messages_sent_total",
            &[("actor_name", "t")]
        ),
        Some(1.0)
    );
}

#[test]
fn invalid_config_is_a_typed_error() {
    let err = Metrics::new(Config {
        max_retained: 0,
        ..Config::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, MetricsError::Config(ConfigError::ZeroMaxRetained)),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid metrics configuration: max_retained must be at least 1"
    );
}

#[tokio::test]
async fn action_aggregates_by_action() {
    let m = metrics(Config::default());
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let fail = ty.action("fail");
    let a = ty.register("a", Some(1), "k");
    let b = ty.register("b", Some(1), "k");
    a.record_action(&inc, Duration::from_millis(2), true);
    b.record_action(&inc, Duration::from_millis(3), true);
    b.record_action(&fail, Duration::from_millis(1), false);
    let s = scrape(&m);
    let inc_l = [("action", "increment"), ("actor_name", "counter")];
    let fail_l = [("action", "fail"), ("actor_name", "counter")];
    assert_eq!(s.get("actor_type_action_calls_total", &inc_l), Some(2.0));
    assert_eq!(s.get("actor_type_action_errors_total", &inc_l), Some(0.0));
    assert_eq!(s.get("actor_type_action_errors_total", &fail_l), Some(1.0));
    assert_eq!(
        s.get("actor_type_action_duration_seconds_count", &inc_l),
        Some(2.0)
    );
    assert_eq!(
        s.get("actor_action_calls_total", &actor_labels("b:1", "k")),
        Some(2.0)
    );
    assert_eq!(
        s.get("actor_action_errors_total", &actor_labels("b:1", "k")),
        Some(1.0)
    );
    drop((a, b));
}

#[tokio::test]
async fn an_abandoned_registration_leaves_no_label_set_behind() {
    let m = metrics(Config::default());
    let ty = m.actor_type("t");
    let agg = [("actor_name", "t")];
    let a = ty.register("a", Some(1), "k");
    a.sqlite_busy_total().inc_by(2);
    a.abandoned();
    a.abandoned();
    let s = scrape(&m);
    assert!(
        !s.has_label_value("actor_id_gen", "a:1"),
        "gone at once, not retained"
    );
    assert_eq!(m.retained_len(), 0);
    assert_eq!(
        s.get("actor_type_sqlite_busy_total", &agg),
        Some(2.0),
        "still counted"
    );
    assert_eq!(s.get("actor_type_active", &agg), Some(0.0));
    for state in ["live", "expiring"] {
        assert_eq!(
            s.get("actor_metrics_retained_label_sets", &[("state", state)]),
            Some(0.0),
            "{state}"
        );
    }
    assert_eq!(s.get("actor_metrics_series_removed_total", &[]), Some(1.0));
    // A retry that fails again costs nothing more, however often.
    for _ in 0..1000 {
        ty.register("a", Some(2), "k").abandoned();
    }
    assert_eq!(m.retained_len(), 0);

    // Shared: another registration keeps the label set live.
    let b = ty.register("b", Some(1), "k");
    let c = ty.register("b", Some(1), "k");
    b.abandoned();
    let s = scrape(&m);
    assert_eq!(s.get("actor_active", &actor_labels("b:1", "k")), Some(1.0));
    // After a stop, abandoning changes nothing: the set is retained as usual.
    c.stopped();
    c.abandoned();
    assert_eq!(m.retained_len(), 1);
    assert_eq!(m.sweep(Instant::now() + RETENTION).removed, 1);
}

#[tokio::test]
async fn cap_eviction_passes_over_the_overflow_set() {
    let m = metrics(Config {
        max_retained: 1,
        ..Config::default()
    });
    let ty = m.actor_type("t");
    let a = ty.register("a", Some(1), "k");
    let o = ty.register("b", Some(1), "k");
    assert!(o.is_overflow());
    o.stopped(); // the overflow set expires first
    a.stopped();
    // At the cap: a new actor evicts `a` (which frees room), not the overflow set.
    let c = ty.register("c", Some(1), "k");
    assert!(!c.is_overflow());
    let s = scrape(&m);
    assert_eq!(s.get("actor_metrics_evicted_early_total", &[]), Some(1.0));
    assert!(
        s.has_label_value("actor_id_gen", "overflow"),
        "kept until its retention ends"
    );
    assert!(!s.has_label_value("actor_id_gen", "a:1"));
    // The sweeper still removes the overflow set when its time comes.
    let r = m.sweep(Instant::now() + RETENTION);
    assert_eq!(r.removed, 1);
    drop(c);
}
