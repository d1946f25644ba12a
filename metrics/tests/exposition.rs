//! What a scrape holds at each detail level, for selected actors, in chunks; and
//! aggregates that exist from the moment their label values are known.

use std::time::Duration;

use actor_metrics::families::FAMILIES;
use actor_metrics::labels::{Inbox, LabelEnum, ShutdownReason, StatementKind};
use actor_metrics::scrape::Scrape;
use actor_metrics::{Config, DetailLevel, Metrics, ScrapeRequest};

fn metrics() -> Metrics {
    Metrics::new(Config {
        envoy_key: "e".into(),
        ..Config::default()
    })
    .unwrap()
}

fn at(level: DetailLevel) -> ScrapeRequest {
    ScrapeRequest {
        detail: Some(level),
        ..ScrapeRequest::default()
    }
}

fn parse(m: &Metrics, request: &ScrapeRequest) -> Scrape {
    Scrape::parse(&m.render_with(request)).expect("our own scrape parses")
}

/// Per-actor series (those labelled `actor_id_gen`) of one actor.
fn series_of(s: &Scrape, id_gen: &str) -> usize {
    s.samples()
        .iter()
        .filter(|x| x.labels.get("actor_id_gen").map(String::as_str) == Some(id_gen))
        .count()
}

#[test]
fn each_level_exports_what_it_promises_and_aggregates_never_change() {
    let m = metrics();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let a = ty.register("1", Some(1), "k");
    a.record_action(&inc, Duration::from_millis(3), true);
    a.queue_messages_sent_total().inc();
    a.sqlite_statement_duration_seconds(StatementKind::Read)
        .observe(0.001);
    a.inbox_depth(Inbox::Queue).set(2);

    let off = parse(&m, &at(DetailLevel::Off));
    let core = parse(&m, &at(DetailLevel::Core));
    let full = parse(&m, &at(DetailLevel::Full));
    assert_eq!(
        m.render(),
        m.render_with(&at(DetailLevel::Core)),
        "core is the default"
    );

    assert_eq!(series_of(&off, "1:1"), 0);
    // core: active, queue_depth, connections_active, commits, commit duration
    // (sum, count), busy, inbox{queue}, action calls, errors, duration (sum, count).
    assert_eq!(series_of(&core, "1:1"), 12);
    assert_eq!(
        core.type_of("actor_action_duration_seconds"),
        Some("summary")
    );
    let l = [
        ("actor_id_gen", "1:1"),
        ("actor_key", "k"),
        ("envoy_key", "e"),
    ];
    assert_eq!(
        core.get("actor_action_duration_seconds_count", &l),
        Some(1.0)
    );
    assert_eq!(
        core.get("actor_action_duration_seconds_sum", &l),
        Some(0.003)
    );
    assert_eq!(
        core.series("actor_action_duration_seconds_bucket").count(),
        0
    );
    assert_eq!(core.series("actor_queue_messages_sent_total").count(), 0);
    assert_eq!(
        core.type_of("actor_queue_messages_sent_total"),
        None,
        "no empty family either"
    );

    assert_eq!(
        full.type_of("actor_action_duration_seconds"),
        Some("histogram")
    );
    assert_eq!(full.get("actor_queue_messages_sent_total", &l), Some(1.0));
    let mut bucket = l.to_vec();
    bucket.push(("le", "+Inf"));
    assert_eq!(
        full.get("actor_action_duration_seconds_bucket", &bucket),
        Some(1.0)
    );

    // The aggregates are the same at every level, with classic buckets.
    for s in [&off, &core] {
        let agg = |x: &Scrape| {
            x.samples()
                .iter()
                .filter(|x| x.name.starts_with("actor_type_"))
                .map(|x| (x.name.clone(), x.labels.clone(), x.value.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(agg(s), agg(&full));
        assert_eq!(
            s.type_of("actor_type_action_duration_seconds"),
            Some("histogram")
        );
    }
}

#[test]
fn selecting_actors_renders_them_in_full_and_nothing_else() {
    let m = metrics();
    let ty = m.actor_type("counter");
    let long_key = "k".repeat(1000);
    let a = ty.register("1", Some(1), "alice");
    let b = ty.register("2", Some(1), "bob");
    let c = ty.register("3", Some(4), &long_key);
    for h in [&a, &b, &c] {
        h.queue_messages_sent_total().inc();
    }
    let by_key = ScrapeRequest {
        actor_keys: vec!["alice".into(), long_key.clone(), "nobody".into()],
        ..ScrapeRequest::default()
    };
    let s = parse(&m, &by_key);
    assert!(series_of(&s, "1:1") > 0 && series_of(&s, "3:4") > 0);
    assert_eq!(series_of(&s, "2:1"), 0, "bob was not asked for");
    assert_eq!(
        s.series("actor_queue_messages_sent_total").count(),
        2,
        "full level by default, even though the instance exports core"
    );
    assert!(
        s.samples().iter().all(|x| x.name.starts_with("actor_")
            && !x.name.starts_with("actor_type_")
            && !x.name.starts_with("actor_metrics_")),
        "no aggregates, no self-metrics"
    );

    let by_id = ScrapeRequest {
        actor_id_gens: vec!["2:1".into()],
        detail: Some(DetailLevel::Core),
        ..ScrapeRequest::default()
    };
    let s = parse(&m, &by_id);
    // core: active, queue_depth, connections_active, commits, commit duration
    // (sum, count), busy, action calls, errors, duration (sum, count).
    assert_eq!(series_of(&s, "2:1"), 11);
    assert_eq!(series_of(&s, "1:1"), 0);
    drop((a, b, c));
}

#[test]
fn chunks_concatenate_to_the_whole_scrape_and_stay_bounded() {
    let m = metrics();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let handles: Vec<_> = (0..500)
        .map(|i| {
            let h = ty.register(&i.to_string(), Some(1), &format!("key-{i}"));
            h.record_action(&inc, Duration::from_micros(i), i % 3 != 0);
            h.shutdown_timeouts_total(ShutdownReason::Sleep).inc();
            h
        })
        .collect();
    for level in DetailLevel::ALL {
        let whole = m.render_with(&at(level));
        let mut chunks = Vec::new();
        let mut scrape = m.exposition(&at(level)).with_chunk_bytes(4096);
        assert_eq!(scrape.actors(), 500);
        for chunk in scrape.by_ref() {
            chunks.push(chunk);
        }
        // A chunk stops growing once past the size; one actor's samples of one
        // family (or one aggregate family) may run over.
        assert!(chunks.iter().all(|c| c.len() < 4096 + 16 * 1024), "{level}");
        assert!(chunks.len() > 2, "{level}: really chunked");
        let joined = String::from_utf8(chunks.concat()).unwrap();
        if let Some(at) = joined.bytes().zip(whole.bytes()).position(|(a, b)| a != b) {
            panic!(
                "{level}: chunked scrape differs at byte {at}: {:?} vs {:?}",
                &joined[at.saturating_sub(80)..(at + 80).min(joined.len())],
                &whole[at.saturating_sub(80)..(at + 80).min(whole.len())]
            );
        }
        assert_eq!(joined.len(), whole.len(), "{level}");
    }
    drop(handles);
}

#[test]
fn aggregate_children_exist_at_zero_once_their_labels_are_known() {
    let m = metrics();
    let ty = m.actor_type("counter");
    ty.action("increment");
    let s = parse(&m, &ScrapeRequest::default());
    for reason in ShutdownReason::VALUES {
        assert_eq!(
            s.get(
                "actor_type_shutdown_timeouts_total",
                &[("actor_name", "counter"), ("reason", reason)]
            ),
            Some(0.0),
            "{reason}"
        );
    }
    let inc = [("action", "increment"), ("actor_name", "counter")];
    assert_eq!(s.get("actor_type_action_errors_total", &inc), Some(0.0));
    assert_eq!(
        s.get("actor_type_action_duration_seconds_count", &inc),
        Some(0.0)
    );
    // Every family, every label value: 269 series per type, 17 per action;
    // and one promotion counter per reason.
    let promotions = s.series("actor_type_detail_promotions_total").count();
    assert_eq!(promotions, 4);
    let per_type = s
        .samples()
        .iter()
        .filter(|x| x.name.starts_with("actor_type_"))
        .count()
        - promotions;
    let expected: usize = FAMILIES
        .iter()
        .map(|f| f.series_per_value(DetailLevel::Full) * f.label_values.len().max(1))
        .sum();
    assert_eq!(per_type, expected);
    assert_eq!(per_type, 269 + 17);
}

#[test]
fn totals_are_what_the_aggregates_export() {
    let m = metrics();
    let ty = m.actor_type("counter");
    let other = m.actor_type("other");
    let inc = ty.action("increment");
    let a = ty.register("1", Some(1), "a");
    let b = ty.register("2", Some(1), "b");
    other
        .register("3", Some(1), "c")
        .sqlite_commits_total()
        .inc_by(100);
    a.sqlite_commits_total().inc_by(3);
    b.sqlite_commits_total().inc_by(4);
    a.record_action(&inc, Duration::from_millis(1), false);
    a.queue_depth().set(7);
    b.stopped();
    m.sweep(m.now() + Duration::from_secs(3600));

    let totals = m.totals();
    let (name, t) = &totals[0];
    assert_eq!(name, "counter");
    assert_eq!(t.sqlite_commits_total, 7, "b's commits survive its removal");
    assert_eq!(t.action_calls_total, 1);
    assert_eq!(t.action_errors_total, 1);
    assert_eq!(t.queue_depth, 7);
    assert_eq!(t.active, 1);
    assert_eq!(totals[1].1.sqlite_commits_total, 100);
    assert_eq!(ty.totals(), *t);
    let s = parse(&m, &ScrapeRequest::default());
    assert_eq!(
        s.get(
            "actor_type_sqlite_commits_total",
            &[("actor_name", "counter")]
        ),
        Some(7.0)
    );
    drop(a);
}
