//! Detail follows trouble: the tick's rules, the promoted set and its budget,
//! hysteresis, what a scrape holds for a promoted actor, and `top`.
//!
//! Time is explicit: each tick is `watch(t0 + k × tick)`, nothing sleeps.

use std::time::Duration;

use actor_metrics::scrape::Scrape;
use actor_metrics::{
    ActionMetrics, ActorMetrics, Config, DetailLevel, Format, Metrics, Promotion, Reason,
    ScrapeRequest, TopBy, TopError, TopQuery,
};
use tokio::time::Instant;

const TICK: Duration = Duration::from_secs(10);

fn metrics(promotion: Promotion) -> Metrics {
    metrics_with(promotion, true)
}

fn metrics_with(promotion: Promotion, native_histograms: bool) -> Metrics {
    Metrics::new(Config {
        envoy_key: "e".into(),
        promotion,
        native_histograms,
        ..Config::default()
    })
    .unwrap()
}

/// A type of `healthy` actors and a few named others, and a clock of ticks.
struct World {
    m: Metrics,
    action: ActionMetrics,
    healthy: Vec<ActorMetrics>,
    t0: Instant,
    ticks: u32,
}

impl World {
    fn new(promotion: Promotion, healthy: usize) -> World {
        World::with(metrics(promotion), healthy)
    }

    fn with(m: Metrics, healthy: usize) -> World {
        let ty = m.actor_type("counter");
        let action = ty.action("increment");
        let healthy = (0..healthy)
            .map(|i| ty.register(&format!("h{i}"), Some(1), &format!("healthy-{i}")))
            .collect();
        let w = World {
            m,
            action,
            healthy,
            t0: Instant::now(),
            ticks: 0,
        };
        // The first tick takes baselines.
        w.m.watch(w.t0);
        w
    }

    fn actor(&self, key: &str) -> ActorMetrics {
        self.m.actor_type("counter").register(key, Some(1), key)
    }

    /// Every healthy actor makes `calls` 1 ms calls, all fine.
    fn healthy_traffic(&self, calls: u32) {
        for a in &self.healthy {
            for _ in 0..calls {
                a.record_action(&self.action, Duration::from_millis(1), true);
            }
        }
    }

    fn calls(&self, a: &ActorMetrics, n: u32, each: Duration, failing: u32) {
        for i in 0..n {
            a.record_action(&self.action, each, i >= failing);
        }
    }

    fn tick(&mut self) -> actor_metrics::WatchReport {
        self.ticks += 1;
        self.m.watch(self.t0 + TICK * self.ticks)
    }

    fn scrape(&self, request: &ScrapeRequest) -> Scrape {
        Scrape::parse(&self.m.render_with(request)).unwrap()
    }
}

fn promoted_reason(s: &Scrape, key: &str) -> Option<String> {
    s.series("actor_detail_promoted")
        .find(|x| x.labels.get("actor_key").map(String::as_str) == Some(key))
        .map(|x| {
            assert_eq!(x.value, 1.0);
            x.labels["reason"].clone()
        })
}

fn has_buckets(s: &Scrape, key: &str) -> bool {
    s.series("actor_action_duration_seconds_bucket")
        .any(|x| x.labels.get("actor_key").map(String::as_str) == Some(key))
}

#[test]
fn the_bad_actors_are_promoted_and_scraped_in_full_and_the_healthy_are_not() {
    let mut w = World::new(Promotion::default(), 50);
    let failing = w.actor("failing");
    let slow = w.actor("slow");
    let queued = w.actor("queued");
    let before = w.scrape(&ScrapeRequest::default());
    assert_eq!(
        before.get(
            "actor_type_detail_promotions_total",
            &[("actor_name", "counter"), ("reason", "error_ratio")]
        ),
        Some(0.0),
        "present at 0 from the type's registration"
    );
    assert!(before.series("actor_detail_promoted").next().is_none());
    queued
        .sqlite_statement_duration_seconds(actor_metrics::labels::StatementKind::Read)
        .observe(0.002);
    for _ in 0..3 {
        w.healthy_traffic(20);
        w.calls(&failing, 20, Duration::from_millis(1), 10);
        w.calls(&slow, 20, Duration::from_millis(300), 0);
        queued.queue_depth().set(500);
        w.tick();
    }
    let s = w.scrape(&ScrapeRequest::default());
    assert_eq!(
        promoted_reason(&s, "failing").as_deref(),
        Some("error_ratio")
    );
    assert_eq!(promoted_reason(&s, "slow").as_deref(), Some("latency"));
    assert_eq!(
        promoted_reason(&s, "queued").as_deref(),
        Some("queue_depth")
    );
    assert_eq!(
        s.series("actor_detail_promoted").count(),
        3,
        "no healthy actor"
    );
    // The default scrape names them and holds every actor at `core`: no
    // family mixes promoted buckets with the others' `_sum`/`_count`.
    assert!(!has_buckets(&s, "slow"));
    assert!(s.series("actor_queue_messages_sent_total").next().is_none());
    assert!(
        s.series("actor_action_duration_seconds_count")
            .any(|x| x.labels["actor_key"] == "healthy-0")
    );
    assert_eq!(s.type_of("actor_action_duration_seconds"), Some("summary"));
    assert_eq!(
        s.get(
            "actor_type_detail_promotions_total",
            &[("actor_name", "counter"), ("reason", "latency")]
        ),
        Some(1.0)
    );

    // Their detail is the promoted scrape's: the three in full, nobody else,
    // no aggregates and no promotion gauge (the default scrape has those).
    let promoted = ScrapeRequest {
        promoted: true,
        ..ScrapeRequest::default()
    };
    let p = w.scrape(&promoted);
    let keys = |s: &Scrape| {
        s.samples()
            .iter()
            .filter_map(|x| x.labels.get("actor_key").cloned())
            .collect::<std::collections::BTreeSet<String>>()
    };
    assert_eq!(
        keys(&p),
        ["failing", "queued", "slow"].map(String::from).into()
    );
    for key in ["failing", "slow", "queued"] {
        assert!(has_buckets(&p, key), "{key}: full detail");
        assert!(
            p.series("actor_queue_messages_sent_total")
                .any(|x| x.labels["actor_key"] == key),
            "{key}: a full-only family too"
        );
    }
    assert!(
        p.samples()
            .iter()
            .all(|x| x.name.starts_with("actor_") && !x.name.starts_with("actor_type_")),
        "only the actors' own series"
    );
    assert!(p.series("actor_detail_promoted").next().is_none());
    assert_eq!(
        p.type_of("actor_action_duration_seconds"),
        Some("histogram")
    );
    assert!(
        p.series("actor_sqlite_statement_duration_seconds_bucket")
            .any(|x| x.labels["actor_key"] == "queued")
    );

    // Protobuf holds the same promoted actors, with classic buckets.
    let proto: Vec<u8> =
        w.m.exposition(&ScrapeRequest {
            format: Format::Protobuf,
            ..promoted.clone()
        })
        .flatten()
        .collect();
    let pb = Scrape::parse_protobuf(&proto).unwrap();
    assert_eq!(keys(&pb), keys(&p));
    assert!(has_buckets(&pb, "slow"));

    // With a key, the union: the promoted and the one asked for.
    let both = w.scrape(&ScrapeRequest {
        actor_keys: vec!["healthy-3".into()],
        ..promoted
    });
    assert_eq!(keys(&both).len(), 4);
    assert!(has_buckets(&both, "healthy-3"));

    // An explicit level means exactly what it says.
    let core = w.scrape(&ScrapeRequest {
        detail: Some(DetailLevel::Core),
        ..ScrapeRequest::default()
    });
    assert!(!has_buckets(&core, "slow"));
    // ...and every default scrape, at any level, names the promoted actors.
    for detail in [DetailLevel::Off, DetailLevel::Core, DetailLevel::Full] {
        let s = w.scrape(&ScrapeRequest {
            detail: Some(detail),
            ..ScrapeRequest::default()
        });
        assert_eq!(s.series("actor_detail_promoted").count(), 3, "{detail:?}");
    }
    assert_eq!(
        core.type_of("actor_action_duration_seconds"),
        Some("summary")
    );
}

#[test]
fn a_single_failed_call_does_not_promote_and_the_type_s_own_errors_raise_the_bar() {
    let mut w = World::new(Promotion::default(), 20);
    let once = w.actor("once");
    let noisy_peer = w.actor("like-its-peers");
    for _ in 0..3 {
        w.calls(&once, 1, Duration::from_millis(1), 1);
        // Every healthy actor fails 20 % of its calls: the type's ratio is
        // 0.2, so 30 % does not stand out (threshold min(1, 10 × 0.2)).
        for a in &w.healthy {
            w.calls(a, 20, Duration::from_millis(1), 4);
        }
        w.calls(&noisy_peer, 20, Duration::from_millis(1), 6);
        w.tick();
    }
    let s = w.scrape(&ScrapeRequest::default());
    assert_eq!(s.series("actor_detail_promoted").count(), 0);
}

/// The p99 rule: a tail that leaves the mean under 5 × its type's p99 is
/// seen from the native buckets, over at least 100 calls in the window, and
/// not without native buckets.
#[test]
fn a_tail_promotes_by_its_p99_where_native_buckets_exist() {
    for native in [true, false] {
        let mut w = World::with(metrics_with(Promotion::default(), native), 50);
        let tail = w.actor("tail");
        let few = w.actor("few");
        for _ in 0..4 {
            w.healthy_traffic(20);
            // 2 of 60 calls at 100 ms: 3.3 % above 10 × the type's p99 (1 ms),
            // a mean of 4.3 ms (under 5 × 1 ms).
            w.calls(&tail, 58, Duration::from_millis(1), 0);
            w.calls(&tail, 2, Duration::from_millis(100), 0);
            // 1 of 15 at 30 ms: a share over 1 %, but under 100 calls.
            w.calls(&few, 14, Duration::from_millis(1), 0);
            w.calls(&few, 1, Duration::from_millis(30), 0);
            w.tick();
        }
        let s = w.scrape(&ScrapeRequest::default());
        let want = native.then_some("latency");
        assert_eq!(
            promoted_reason(&s, "tail").as_deref(),
            want,
            "native {native}"
        );
        assert_eq!(promoted_reason(&s, "few"), None, "native {native}");
        assert_eq!(
            s.series("actor_detail_promoted").count(),
            usize::from(native)
        );

        // Recovered: the share decays under the release line within 12
        // ticks, then the 10-minute hold (60 ticks) runs out.
        for _ in 0..75 {
            w.healthy_traffic(20);
            w.calls(&tail, 60, Duration::from_millis(1), 0);
            w.tick();
        }
        let s = w.scrape(&ScrapeRequest::default());
        assert_eq!(promoted_reason(&s, "tail"), None, "native {native}");
    }
}

#[test]
fn at_most_max_promoted_the_worst_kept() {
    let mut w = World::new(
        Promotion {
            max_promoted: 2,
            ..Promotion::default()
        },
        200,
    );
    let bad: Vec<_> = (1..=5).map(|i| (i, w.actor(&format!("bad-{i}")))).collect();
    let mut last = Default::default();
    for _ in 0..3 {
        w.healthy_traffic(20);
        for (i, a) in &bad {
            // bad-i fails i × 3 of 30 calls: bad-5 is the worst.
            w.calls(a, 30, Duration::from_millis(1), i * 3);
        }
        last = w.tick();
    }
    assert_eq!(last.promoted_now, 2);
    let s = w.scrape(&ScrapeRequest::default());
    let mut keys: Vec<_> = s
        .series("actor_detail_promoted")
        .map(|x| x.labels["actor_key"].clone())
        .collect();
    keys.sort();
    assert_eq!(keys, ["bad-4", "bad-5"]);
}

/// At `full` the default scrape holds every actor in full, so the promoted
/// scrape holds nobody (a second job would scrape each series twice); the
/// default one still names the actor that stands out (`ActorPromoted`).
#[test]
fn at_full_the_promoted_scrape_is_empty() {
    let mut w = World::with(
        Metrics::new(Config {
            envoy_key: "e".into(),
            per_actor_detail: DetailLevel::Full,
            ..Config::default()
        })
        .unwrap(),
        50,
    );
    let failing = w.actor("failing");
    let mut last = Default::default();
    for _ in 0..3 {
        w.healthy_traffic(20);
        w.calls(&failing, 20, Duration::from_millis(1), 10);
        last = w.tick();
    }
    assert_eq!(last.promoted_now, 1, "the watch still promotes");
    let s = w.scrape(&ScrapeRequest::default());
    assert!(has_buckets(&s, "failing") && has_buckets(&s, "healthy-0"));
    assert_eq!(
        promoted_reason(&s, "failing").as_deref(),
        Some("error_ratio")
    );
    let p = w.scrape(&ScrapeRequest {
        promoted: true,
        ..ScrapeRequest::default()
    });
    assert!(p.samples().is_empty(), "{:?}", p.samples());
}

#[test]
fn demoted_after_the_hold_without_flapping_near_the_line() {
    let hold = Duration::from_secs(60);
    let mut w = World::new(
        Promotion {
            hold,
            window: Duration::from_secs(10),
            ..Promotion::default()
        },
        20,
    );
    let a = w.actor("edge");
    let promoted = |w: &World| promoted_reason(&w.scrape(&ScrapeRequest::default()), "edge");
    w.healthy_traffic(20);
    w.calls(&a, 40, Duration::from_millis(1), 8); // 20 %: promoted
    w.tick();
    assert_eq!(promoted(&w).as_deref(), Some("error_ratio"));
    // Near the line for 20 ticks: between the release line (2.5 %) and the
    // threshold (5 %), and just above it, alternately: never demoted.
    for i in 0..20 {
        w.healthy_traffic(20);
        w.calls(
            &a,
            100,
            Duration::from_millis(1),
            if i % 2 == 0 { 3 } else { 6 },
        );
        let r = w.tick();
        assert_eq!(r.demoted, 0, "tick {i}");
        assert!(promoted(&w).is_some(), "tick {i}");
    }
    // Recovered: no errors. It stays for the hold after it last stood out.
    let mut demoted_at = None;
    for i in 0..30 {
        w.healthy_traffic(20);
        w.calls(&a, 100, Duration::from_millis(1), 0);
        if w.tick().demoted == 1 {
            demoted_at = Some(i);
            break;
        }
        assert!(promoted(&w).is_some());
    }
    let demoted_at = demoted_at.expect("demoted");
    // The ratio falls under the release line within a few ticks (a 10 s
    // window), then the 60 s hold runs from the last tick it stood out: 6
    // ticks after that one.
    assert!(
        (5..=12).contains(&demoted_at),
        "demoted after {demoted_at} ticks"
    );
    let s = w.scrape(&ScrapeRequest::default());
    assert!(promoted_reason(&s, "edge").is_none());
    assert!(!has_buckets(&s, "edge"), "back to core");
}

#[test]
fn depth_must_hold_for_two_ticks() {
    let mut w = World::new(Promotion::default(), 5);
    let a = w.actor("deep");
    a.inbox_depth(actor_metrics::labels::Inbox::Action).set(150);
    assert_eq!(w.tick().promoted, 0, "one tick over is not enough");
    assert_eq!(w.tick().promoted, 1);
    let s = w.scrape(&ScrapeRequest::default());
    assert_eq!(promoted_reason(&s, "deep").as_deref(), Some("inbox_depth"));
}

#[test]
fn top_ranks_worst_first_with_a_floor_and_refuses_unknown_windows() {
    let mut w = World::new(Promotion::default(), 30);
    let worst = w.actor("worst");
    let second = w.actor("second");
    let one_call = w.actor("one-call");
    for _ in 0..3 {
        w.healthy_traffic(20);
        w.calls(&worst, 40, Duration::from_millis(2), 30);
        w.calls(&second, 40, Duration::from_millis(2), 10);
        w.calls(&one_call, 1, Duration::from_millis(2), 1);
        w.tick();
    }
    let rows =
        w.m.top(&TopQuery {
            by: TopBy::ErrorRatio,
            n: 5,
            ..TopQuery::default()
        })
        .unwrap();
    let keys: Vec<_> = rows.iter().map(|r| r.actor_key.as_str()).collect();
    assert_eq!(
        keys,
        ["worst", "second"],
        "the one-call actor is under the floor"
    );
    assert!((rows[0].figure - 0.75).abs() < 1e-3, "{}", rows[0].figure);
    assert_eq!(rows[0].promoted, Some(Reason::ErrorRatio));
    assert_eq!(rows[0].actor_name, "counter");
    assert_eq!(rows[0].envoy_key, "e");
    assert_eq!(rows[0].actor_id_gen, "worst:1");
    assert!(rows[0].calls > 20.0);

    let calls =
        w.m.top(&TopQuery::parse("by=calls&n=3&window=5m").unwrap())
            .unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.windows(2).all(|r| r[0].figure >= r[1].figure));
    assert!(
        w.m.top(&TopQuery::parse("type=nobody").unwrap())
            .unwrap()
            .is_empty()
    );
    let err = w.m.top(&TopQuery::parse("window=2m").unwrap()).unwrap_err();
    assert_eq!(
        err,
        TopError::UnknownWindow {
            given: "2m".into(),
            valid: "1m, 5m".into()
        }
    );
    let p99 =
        w.m.top(&TopQuery::parse("by=p99_latency&n=1").unwrap())
            .unwrap();
    assert_eq!(p99.len(), 1);
    assert!(["worst", "second"].contains(&p99[0].actor_key.as_str()));
}

#[test]
fn promotion_off_promotes_nothing_but_top_still_answers() {
    let mut w = World::new(
        Promotion {
            max_promoted: 0,
            ..Promotion::default()
        },
        5,
    );
    let a = w.actor("bad");
    w.calls(&a, 40, Duration::from_millis(1), 40);
    assert_eq!(
        w.m.figures_age(),
        None,
        "the first tick takes baselines only"
    );
    assert_eq!(w.tick().promoted, 0);
    assert!(w.m.figures_age().is_some());
    assert!(
        w.scrape(&ScrapeRequest::default())
            .series("actor_detail_promoted")
            .next()
            .is_none()
    );
    assert_eq!(w.m.top(&TopQuery::default()).unwrap()[0].actor_key, "bad");
}

#[test]
fn out_of_range_promotion_settings_are_refused_naming_the_field() {
    let err = Metrics::new(Config {
        promotion: Promotion {
            tick: Duration::from_secs(120),
            ..Promotion::default()
        },
        ..Config::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("promotion.tick"), "{err}");
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = Metrics::new(Config {
            promotion: Promotion {
                p99_factor: bad,
                ..Promotion::default()
            },
            ..Config::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("promotion.p99_factor"), "{err}");
    }
}

/// Over the cap, 40 actors failing about equally (each tick's share moves
/// between 5 % and 15 % per actor) do not churn the promoted set: the first
/// 8 stay and nobody is displaced, tick after tick. An actor clearly worse
/// (every call failing) still displaces exactly one of them.
#[test]
fn equals_over_the_cap_do_not_churn_and_a_much_worse_actor_still_displaces() {
    let mut w = World::new(
        Promotion {
            max_promoted: 8,
            ..Promotion::default()
        },
        1000,
    );
    let bad: Vec<_> = (0..40).map(|i| w.actor(&format!("bad-{i}"))).collect();
    let promoted_keys = |w: &World| {
        let mut keys: Vec<String> = w
            .scrape(&ScrapeRequest::default())
            .series("actor_detail_promoted")
            .map(|x| x.labels["actor_key"].clone())
            .collect();
        keys.sort();
        keys
    };
    let traffic = |w: &mut World, k: usize| {
        w.healthy_traffic(20);
        for (i, a) in bad.iter().enumerate() {
            w.calls(a, 20, Duration::from_millis(1), 1 + ((i + k) % 3) as u32);
        }
    };
    let (mut promotions, mut demotions) = (0, 0);
    let mut first = None;
    for k in 0..30 {
        traffic(&mut w, k);
        let r = w.tick();
        promotions += r.promoted;
        demotions += r.demoted;
        if r.promoted_now > 0 {
            assert_eq!(r.promoted_now, 8, "tick {k}: {r:?}");
            let keys = promoted_keys(&w);
            match &first {
                None => first = Some(keys),
                Some(f) => assert_eq!(&keys, f, "tick {k}: the promoted set changed"),
            }
        }
    }
    assert!(first.is_some(), "nobody was promoted in 30 ticks");
    assert_eq!((promotions, demotions), (8, 0), "churn among equals");
    let ranked =
        w.m.top(&TopQuery {
            by: TopBy::ErrorRatio,
            n: 100,
            ..TopQuery::default()
        })
        .unwrap();
    assert_eq!(ranked.len(), 40, "all 40 still ranked");

    let worst = w.actor("worst");
    let (mut displaced, mut displaced_count) = (None, 0);
    for k in 30..40 {
        traffic(&mut w, k);
        w.calls(&worst, 20, Duration::from_millis(1), 20);
        let r = w.tick();
        promotions += r.promoted;
        demotions += r.demoted;
        displaced_count += r.displaced;
        if r.promoted > 0 {
            displaced = Some(k);
            break;
        }
    }
    assert!(displaced.is_some(), "the worst actor never got in");
    assert_eq!((promotions, demotions), (9, 1), "one in, one out");
    assert_eq!(displaced_count, 1, "it displaced one that still stood out");
    let keys = promoted_keys(&w);
    assert_eq!(keys.len(), 8);
    assert!(keys.contains(&"worst".to_owned()), "{keys:?}");
    let stayed = first.unwrap().iter().filter(|k| keys.contains(k)).count();
    assert_eq!(stayed, 7, "{keys:?}");
}

/// At the cap, an actor that no longer stands out and is kept only by its
/// hold (a destroyed one, say) gives its place to a newcomer at once, and is
/// not counted as displaced: it was not displaced by a worse actor.
#[test]
fn an_actor_kept_only_by_its_hold_gives_its_place_without_being_counted_displaced() {
    let mut w = World::new(
        Promotion {
            max_promoted: 1,
            ..Promotion::default()
        },
        1000,
    );
    let first = w.actor("first");
    for _ in 0..3 {
        w.healthy_traffic(20);
        w.calls(&first, 20, Duration::from_millis(1), 10);
        w.tick();
    }
    let s = w.scrape(&ScrapeRequest::default());
    assert_eq!(promoted_reason(&s, "first").as_deref(), Some("error_ratio"));
    // `first` stops calling: its window decays below the calls a ratio
    // needs, and only its 10-minute hold keeps it. `second` fails now.
    let second = w.actor("second");
    let mut report = Default::default();
    for _ in 0..30 {
        w.healthy_traffic(20);
        w.calls(&second, 20, Duration::from_millis(1), 10);
        report = w.tick();
        if report.promoted == 1 {
            break;
        }
    }
    assert_eq!(
        (report.promoted, report.demoted, report.displaced),
        (1, 1, 0),
        "{report:?}"
    );
    let s = w.scrape(&ScrapeRequest::default());
    assert_eq!(promoted_reason(&s, "first"), None);
    assert_eq!(
        promoted_reason(&s, "second").as_deref(),
        Some("error_ratio")
    );
}
