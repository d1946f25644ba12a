//! The shipped operator assets in an incident, end to end, with the real
//! programs: a demo host scraped by the shipped `prometheus.yml` (one
//! Prometheus with native histograms, one without), evaluating the shipped
//! rules, notifying the shipped `alertmanager.yml`, whose receivers are a local
//! webhook relay. Three bad actors (one failing half its calls, one answering
//! in 300 ms, one whose queue only grows) must each give exactly one page that
//! names the actor, and the demo around them none. Then every dashboard query
//! must return data with native histograms on and off, and the debug job must
//! hold no series the main job has.
//!
//! The host promotes each bad actor to full detail long before its page fires
//! (`ActorPromoted`, a ticket): the shipped Alertmanager config holds that
//! ticket back until the page comes and inhibits it, so the page stays the
//! only notification; the test checks both in Alertmanager itself.
//!
//! Time is compressed in the test only ([`shipped`]): every range and `for:`
//! of the rule files and every `group_wait` is divided by [`shipped::SCALE`]
//! (`[5m]` → `[20s]`, `for: 5m` → `for: 20s`, the ticket's `group_wait: 10m` →
//! 40 s), and scrapes and evaluations run every second. The host keeps its
//! default promotion flags. The shipped files keep their production values.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use actor_e2e_tests::driver::{Driver, create_counter as create};
use actor_e2e_tests::fleet::{Alertmanager, Notification, WebhookRelay};
use actor_e2e_tests::promql::{PromApi, sample_value, unix_now};
use actor_e2e_tests::shipped::{self, alertmanager_config, compressed_rule_files};
use actor_e2e_tests::tools::{self, ALERTMANAGER, PROMETHEUS, PROMTOOL};
use actor_e2e_tests::{Host, PROMOTE_BY_QUEUE, Prometheus, Role, deploy_path, poll};
use serde_json::Value;

/// Every label set `ALERTS` had in `api` since `start`.
fn alerts_seen(api: &PromApi, start: f64) -> Vec<BTreeMap<String, String>> {
    api.query_range("ALERTS", start, unix_now(), 1.0)
        .into_iter()
        .map(|s| {
            s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .collect()
}

/// One bad actor of the incident.
struct BadActor {
    key: &'static str,
    /// The alert it must raise.
    alert: &'static str,
    /// The `(action, body)` calls it makes in turn.
    calls: &'static [(&'static str, &'static str)],
    /// Between two calls, in milliseconds.
    every_ms: u64,
}

const BAD: [BadActor; 3] = [
    // Half its calls fail: 2 errors/s of 4 calls/s, 0.5% of the host's calls.
    BadActor {
        key: "bad-fail",
        alert: "ActorKeyErrorRatioHigh",
        calls: &[("fail", "{}"), ("increment", "{}")],
        every_ms: 250,
    },
    // 300 ms a call, 2 calls/s: 0.5% of the host's calls, under the type's SLO burn rates.
    BadActor {
        key: "bad-slow",
        alert: "ActorKeyLatencyHigh",
        calls: &[("slow", "{\"ms\":300}")],
        every_ms: 200,
    },
    // 3 messages/s sent, none received.
    BadActor {
        key: "bad-queue",
        alert: "ActorKeyQueueGrowing",
        calls: &[("enqueue", "{\"message\":\"m\"}")],
        every_ms: 333,
    },
];

#[test]
fn each_bad_actor_pages_once_by_name_and_the_demo_never() {
    if !tools::require(
        "each_bad_actor_pages_once_by_name_and_the_demo_never",
        &[&PROMETHEUS, &PROMTOOL, &ALERTMANAGER],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = WebhookRelay::start();
    let (page, ticket) = (
        format!("http://{}/page", relay.addr),
        format!("http://{}/ticket", relay.addr),
    );
    let am_config = alertmanager_config(&page, &ticket);
    let alertmanager = Alertmanager::start(dir.path(), &am_config);
    // 400 calls/s of demo traffic: the bad actors' calls stay ~0.5% of the
    // type's, as one bad actor among many would be.
    // The sweeper ticks every second, as the rules' windows are compressed:
    // ActorMetricsSweeperStalled reads `increase(sweeps[5m])`, 20 s here.
    let host = Host::start(&[
        "--workload",
        "demo",
        "--rate",
        "400",
        "--actors",
        "20",
        "--sweep-interval",
        "1s",
    ]);
    let rules = compressed_rule_files(dir.path());
    let config = shipped::prometheus_config(
        host.metrics,
        &rules,
        "user-42",
        &alertmanager.addr.to_string(),
    );
    let classic = Prometheus::start_with(&config, Role::Server);
    let native = Prometheus::start_with(&config, Role::NativeHistograms);
    let start = unix_now();

    // A healthy stretch first: 45 s of demo traffic, longer than any
    // compressed window a per-actor alert reads plus its `for:`.
    poll(Duration::from_secs(90), "45 s of scrapes", || {
        let n = classic
            .value("count_over_time(up{job=\"actor-host\"}[2m])")
            .unwrap_or(0.0);
        if n >= 45.0 {
            Ok(())
        } else {
            Err(format!("{n} scrapes"))
        }
    });
    let healthy: Vec<_> = [&classic, &native]
        .iter()
        .flat_map(|p| alerts_seen(&p.api, start))
        .collect();
    assert!(
        healthy.is_empty(),
        "alerts on the healthy demo: {healthy:?}"
    );
    assert!(relay.received().is_empty(), "{:?}", relay.received());

    // The incident.
    for bad in &BAD {
        create(&host, bad.key);
    }
    let t0 = Instant::now();
    let drivers: Vec<Driver> = BAD
        .iter()
        .map(|b| Driver::start(host.app, b.key, b.calls, Duration::from_millis(b.every_ms)))
        .collect();
    let mut arrived: BTreeMap<&str, Duration> = BTreeMap::new();
    poll(
        Duration::from_secs(120),
        "a page naming each bad actor",
        || {
            for n in relay.received() {
                let key = n.body["alerts"][0]["labels"]["actor_key"]
                    .as_str()
                    .unwrap_or("");
                if let Some(bad) = BAD.iter().find(|b| b.key == key) {
                    arrived.entry(bad.key).or_insert_with(|| t0.elapsed());
                }
            }
            if arrived.len() == BAD.len() {
                Ok(())
            } else {
                Err(format!("{arrived:?}; received {:?}", relay.received()))
            }
        },
    );
    // Both Prometheus servers see each alert firing: the classic one from
    // _sum/_count and classic buckets, the native one from native series.
    for (name, p) in [("classic", &classic), ("native", &native)] {
        poll(
            Duration::from_secs(60),
            &format!("every bad actor firing in {name}"),
            || {
                let firing: BTreeSet<(String, String)> = p
                    .query("ALERTS{alertstate=\"firing\"}")
                    .iter()
                    .map(|s| {
                        (
                            s["metric"]["alertname"].as_str().unwrap_or("").to_owned(),
                            s["metric"]["actor_key"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect();
                let want: BTreeSet<(String, String)> = BAD
                    .iter()
                    .map(|b| (b.alert.to_owned(), b.key.to_owned()))
                    .collect();
                if want.is_subset(&firing) {
                    Ok(())
                } else {
                    Err(format!("{firing:?}"))
                }
            },
        );
    }
    eprintln!("time from the bad actors' first call to their page: {arrived:?}");

    // The host promoted each bad actor too: its ActorPromoted ticket is held
    // in Alertmanager (the per-actor ticket's group_wait) and inhibited by
    // the page, and the group_wait passes without a ticket. Seen from the
    // time Alertmanager first shows the alert, so its group_wait is surely
    // over when the wait here is.
    let bad_keys: BTreeSet<&str> = BAD.iter().map(|b| b.key).collect();
    let ticket_wait = Duration::from_secs(600 / shipped::SCALE + 2);
    let mut first_seen: BTreeMap<String, Instant> = BTreeMap::new();
    poll(
        Duration::from_secs(150),
        "each bad actor's ActorPromoted inhibited past its ticket's group_wait",
        || {
            let tickets: Vec<_> = relay
                .received()
                .into_iter()
                .filter(|n| n.path != "/page")
                .collect();
            assert!(tickets.is_empty(), "a ticket got through: {tickets:#?}");
            for a in alertmanager.alerts() {
                if a["labels"]["alertname"] != "ActorPromoted" {
                    continue;
                }
                let key = a["labels"]["actor_key"].as_str().unwrap_or("");
                assert!(bad_keys.contains(key), "a demo actor promoted: {a}");
                let inhibited = a["status"]["state"] == "suppressed"
                    && a["status"]["inhibitedBy"]
                        .as_array()
                        .is_some_and(|by| !by.is_empty());
                if !inhibited {
                    return Err(format!("{key}'s ActorPromoted is not inhibited: {a}"));
                }
                first_seen
                    .entry(key.to_owned())
                    .or_insert_with(Instant::now);
            }
            let waiting: Vec<_> = bad_keys
                .iter()
                .filter(|k| {
                    first_seen
                        .get(**k)
                        .is_none_or(|t| t.elapsed() < ticket_wait)
                })
                .collect();
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(format!("still in their ticket's group_wait: {waiting:?}"))
            }
        },
    );

    let received: Vec<Notification> = relay.received();
    assert_eq!(
        received.len(),
        BAD.len(),
        "exactly one notification per bad actor: {received:#?}"
    );
    drop(drivers);
    for BadActor {
        key,
        alert: alertname,
        ..
    } in BAD
    {
        let n = received
            .iter()
            .find(|n| n.body["alerts"][0]["labels"]["actor_key"] == key)
            .expect("arrived above");
        assert_eq!(n.path, "/page", "{key}: {:?}", n.body);
        assert_eq!(n.body["status"], "firing", "{key}: {:?}", n.body);
        let alerts = n.body["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 1, "{key}: one alert in its page: {alerts:?}");
        let labels = &alerts[0]["labels"];
        assert_eq!(labels["alertname"], alertname, "{key}: {labels}");
        assert_eq!(labels["severity"], "critical", "{key}: {labels}");
        assert_eq!(labels["job"], "actor-host", "{key}: {labels}");
        // Its type, joined from the host's promotion gauge (promoted long
        // before the page).
        assert_eq!(labels["actor_name"], "counter", "{key}: {labels}");
        for name in ["actor_id_gen", "envoy_key", "instance"] {
            assert!(
                labels[name].as_str().is_some_and(|v| !v.is_empty()),
                "{key}: no {name}: {labels}"
            );
        }
        let summary = alerts[0]["annotations"]["summary"].as_str().unwrap_or("");
        assert!(summary.contains(key), "{key}: summary {summary:?}");
        assert!(summary.contains("counter, "), "{key}: summary {summary:?}");
        let runbook = alerts[0]["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or("");
        assert!(
            runbook.ends_with(&format!("#{}", alertname.to_lowercase())),
            "{key}: {runbook}"
        );
    }

    // Nothing else was ever pending or firing in either server: no alert on
    // the demo's actors, no per-type alert, nothing about the host.
    for (name, p) in [("classic", &classic), ("native", &native)] {
        let others: Vec<_> = alerts_seen(&p.api, start)
            .into_iter()
            .filter(|a| {
                !a.get("actor_key")
                    .is_some_and(|k| bad_keys.contains(k.as_str()))
            })
            .collect();
        assert!(
            others.is_empty(),
            "{name}: alerts besides the bad actors': {others:?}"
        );
    }
}

/// Every `(panel title, refId, expr)` of the shipped dashboard, with Grafana's
/// variables filled in as "All" and `$__rate_interval` as 30 s.
fn dashboard_queries() -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(deploy_path("grafana/actor-metrics.json")).expect("dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let expr = expr
                .replace("$__rate_interval", "30s")
                .replace("$actor_name", ".*")
                .replace("$instance", ".*")
                .replace("$job", ".*");
            assert!(!expr.contains('$'), "a variable left in {expr}");
            out.push((
                panel["title"].as_str().unwrap_or("").to_owned(),
                target["refId"].as_str().unwrap_or("").to_owned(),
                expr,
            ));
        }
    }
    out
}

#[test]
fn dashboard_queries_return_data_with_native_histograms_on_and_off_and_the_debug_job_duplicates_nothing()
 {
    if !tools::require(
        "dashboard_queries_return_data_with_native_histograms_on_and_off_and_the_debug_job_duplicates_nothing",
        &[&PROMETHEUS, &PROMTOOL],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A queue deeper than 50 for one tick promotes (the demo's own queues
    // stay far below): the dashboard's promoted-actor panels need one.
    let host = Host::start(
        &[
            &["--workload", "demo", "--sweep-interval", "1s"][..],
            &PROMOTE_BY_QUEUE,
        ]
        .concat(),
    );
    // The promoted actor: SQLite commits and statements, a slow call, a user
    // task, then a queue of 60 that nothing reads. Not the watched one, which
    // the debug job reads: a promoted actor's buckets are the promoted job's.
    create(&host, "promoted");
    for (action, body) in [
        ("increment", "{}"),
        ("slow", "{\"ms\":5}"),
        ("spawn_task", "{\"kind\":\"background\",\"ms\":1}"),
    ] {
        let (status, body) = host.post(&format!("/actors/counter/promoted/actions/{action}"), body);
        assert_eq!(status, 200, "{action}: {body}");
    }
    host.queue_until_promoted("promoted");
    // Its calls go on while Prometheus scrapes: a rate over a window with no
    // calls has no quantile.
    let _promoted_traffic = Driver::start(
        host.app,
        "promoted",
        &[
            ("increment", "{}"),
            ("slow", "{\"ms\":5}"),
            ("spawn_task", "{\"kind\":\"background\",\"ms\":1}"),
        ],
        Duration::from_millis(50),
    );
    // The watched actor: 25 increments, then one slow call, all before the
    // scrapes start, so both jobs see final counts.
    create(&host, "watched");
    for _ in 0..25 {
        let (status, body) = host.post("/actors/counter/watched/actions/increment", "{}");
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = host.post("/actors/counter/watched/actions/slow", "{\"ms\":5}");
    assert_eq!(status, 200, "{body}");
    let calls = host
        .scrape()
        .sum("actor_action_calls_total", &[("actor_key", "watched")]);
    assert!(calls >= 26.0, "the watched actor's calls: {calls}");

    let rules = compressed_rule_files(dir.path());
    let config = shipped::prometheus_config(host.metrics, &rules, "watched", "127.0.0.1:9");
    let servers = [
        ("classic", Prometheus::start_with(&config, Role::Server)),
        (
            "native",
            Prometheus::start_with(&config, Role::NativeHistograms),
        ),
    ];
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "dashboard queries: {}", queries.len());
    for (name, p) in &servers {
        poll(
            Duration::from_secs(90),
            &format!("every dashboard query answering on the {name} server"),
            || {
                let empty: Vec<String> = queries
                    .iter()
                    .filter(|(_, _, expr)| {
                        !p.query(expr)
                            .iter()
                            .any(|s| sample_value(&s["value"]).is_some_and(|v| !v.is_nan()))
                    })
                    .map(|(title, r, expr)| format!("{title} [{r}]: {expr}"))
                    .collect();
                if empty.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{empty:#?}"))
                }
            },
        );
    }

    for (name, p) in &servers {
        // One series per actor and family, whichever jobs scrape it.
        assert_eq!(
            p.value("count(actor_queue_depth{actor_key=\"watched\"})"),
            Some(1.0),
            "{name}"
        );
        assert_eq!(
            p.value("sum(actor_action_calls_total{actor_key=\"watched\"})"),
            Some(calls),
            "{name}: calls counted once across jobs"
        );
        // The debug job holds something the main job lacks...
        let debug_only = if *name == "classic" {
            "count(actor_action_duration_seconds_bucket{job=\"actor-host-debug\",actor_key=\"watched\"})"
        } else {
            "count(actor_sqlite_rollbacks_total{job=\"actor-host-debug\",actor_key=\"watched\"})"
        };
        assert!(
            p.value(debug_only).is_some_and(|n| n >= 1.0),
            "{name}: {debug_only}"
        );
        // ...and no label set (apart from `job`) is in both jobs; nor in the
        // main job and the promoted job, for the promoted actor.
        let now = unix_now();
        let by_job = |key: &str| {
            let mut by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for s in p
                .api
                .series(&format!("{{actor_key=\"{key}\"}}"), now - 60.0, now)
            {
                let mut labels = s.as_object().cloned().unwrap_or_default();
                let job = labels
                    .remove("job")
                    .and_then(|j| j.as_str().map(str::to_owned))
                    .unwrap_or_default();
                by_job
                    .entry(job)
                    .or_default()
                    .insert(Value::Object(labels).to_string());
            }
            by_job
        };
        let promoted = by_job("promoted");
        let main = promoted.get("actor-host").cloned().unwrap_or_default();
        let detail = promoted
            .get("actor-host-promoted")
            .cloned()
            .unwrap_or_default();
        assert!(
            // Classic buckets, or (native) the full-only families' histograms.
            main.len() >= 12
                && detail
                    .iter()
                    .any(|s| *name == "native" || s.contains("_bucket")),
            "{name}: {promoted:?}"
        );
        let both: Vec<_> = main.intersection(&detail).collect();
        assert!(
            both.is_empty(),
            "{name}: series in the main and promoted jobs: {both:?}"
        );
        let by_job = by_job("watched");
        let main = by_job.get("actor-host").cloned().unwrap_or_default();
        let debug = by_job.get("actor-host-debug").cloned().unwrap_or_default();
        assert!(main.len() >= 12 && !debug.is_empty(), "{name}: {by_job:?}");
        let both: Vec<_> = main.intersection(&debug).collect();
        assert!(both.is_empty(), "{name}: series in both jobs: {both:?}");
    }
}
