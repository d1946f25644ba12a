//! A real Prometheus scrapes a real `actor-host`: exact values, staleness after
//! retention, aggregates that never go back, and `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use actor_e2e_tests::{Host, PROMOTE_BY_QUEUE, Prometheus, prometheus_available, wait_for};

const T: Duration = Duration::from_secs(60);

/// Scrapes Prometheus has taken of the host so far.
fn scrapes(p: &Prometheus) -> f64 {
    p.value("count_over_time(up{job=\"actor-host\"}[1h])")
        .unwrap_or(0.0)
}

#[test]
fn prometheus_sees_exact_values_then_staleness_after_retention() {
    if !prometheus_available("prometheus_sees_exact_values_then_staleness_after_retention") {
        return;
    }
    let host = Host::start(&[
        "--workload",
        "none",
        "--retention",
        "4s",
        "--sweep-interval",
        "250ms",
    ]);
    let prom = Prometheus::start(host.metrics);
    wait_for(T, "up == 1", || {
        (prom.value("up{job=\"actor-host\"}") == Some(1.0)).then_some(())
    });

    // Drive one actor through its life.
    let (status, created) = host.post("/actors/counter/e2e-key", "");
    assert_eq!(status, 200, "{created}");
    let generation = created["generation"].as_u64().expect("generation");
    for _ in 0..3 {
        assert_eq!(
            host.post("/actors/counter/e2e-key/actions/increment", "{}")
                .0,
            200
        );
    }
    for _ in 0..2 {
        assert!(host.post("/actors/counter/e2e-key/actions/fail", "{}").0 >= 400);
    }
    assert_eq!(
        host.post("/actors/counter/e2e-key/actions/connect", "{}").0,
        200
    );

    let sel = "{job=\"actor-host\",actor_key=\"e2e-key\"}";
    let active = wait_for(T, "actor_active == 1 in Prometheus", || {
        let r = prom.query(&format!("actor_active{sel}"));
        (r.len() == 1 && r[0]["value"][1] == "1").then(|| r[0].clone())
    });
    let labels = &active["metric"];
    assert!(
        labels["actor_id_gen"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{generation}")),
        "{labels}"
    );
    assert!(
        !labels["envoy_key"].as_str().unwrap_or("").is_empty(),
        "{labels}"
    );
    wait_for(T, "exact action counters", || {
        // 3 increments + 2 failures + 1 connect, each an action call.
        (prom.value(&format!("actor_action_calls_total{sel}")) == Some(6.0)
            && prom.value(&format!("actor_action_errors_total{sel}")) == Some(2.0)
            && prom.value(&format!("actor_connections_active{sel}")) == Some(1.0))
        .then_some(())
    });
    wait_for(T, "aggregate by action", || {
        (prom.value(
            "sum(actor_type_action_calls_total{actor_name=\"counter\",action=\"increment\"})",
        ) == Some(3.0))
        .then_some(())
    });

    // Stop it: active and gauges drop to 0, counters stay.
    assert_eq!(host.delete("/actors/counter/e2e-key").0, 200);
    wait_for(T, "actor_active == 0 after stop", || {
        (prom.value(&format!("actor_active{sel}")) == Some(0.0)
            && prom.value(&format!("actor_connections_active{sel}")) == Some(0.0)
            && prom.value(&format!("actor_action_calls_total{sel}")) == Some(6.0))
        .then_some(())
    });

    // After retention + sweep the series leave the scrape, and Prometheus marks them stale.
    wait_for(T, "series gone from the scrape", || {
        (!host.scrape().has_label_value("actor_key", "e2e-key")).then_some(())
    });
    wait_for(T, "stale in Prometheus", || {
        prom.query(&format!("actor_active{sel}"))
            .is_empty()
            .then_some(())
    });
    let seen = scrapes(&prom);
    wait_for(T, "three more scrapes", || {
        (scrapes(&prom) >= seen + 3.0).then_some(())
    });
    for family in [
        "actor_active",
        "actor_action_calls_total",
        "actor_connections_active",
    ] {
        assert!(
            prom.query(&format!("{family}{sel}")).is_empty(),
            "{family} came back"
        );
    }
    assert!(!host.scrape().has_label_value("actor_key", "e2e-key"));

    // Aggregates never decreased over the whole run and kept the removed actor's counts.
    assert_eq!(
        prom.value("sum(actor_type_action_calls_total{actor_name=\"counter\"})"),
        Some(6.0)
    );
    let resets = prom.query(
        "resets(actor_type_action_calls_total[1h]) > 0 or resets(actor_type_connections_total[1h]) > 0",
    );
    assert!(
        resets.is_empty(),
        "an aggregate counter went back: {resets:?}"
    );
    assert_eq!(prom.value("actor_metrics_series_removed_total"), Some(1.0));
}

/// Every metric name a rule, recording rule or dashboard uses.
fn names_used_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("actor_") {
        let start = i + pos;
        let boundary = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| start + e);
        // Label names (actor_id_gen, actor_key, actor_name) are not metric names.
        let word = &text[start..end];
        if boundary
            && !["actor_id_gen", "actor_key", "actor_name"].contains(&word)
            && bytes.get(end).is_none_or(|b| *b != b':')
        {
            names.push(word.to_owned());
        }
        i = end.max(start + 1);
    }
    names.sort();
    names.dedup();
    names
}

/// Makes the counter actor `key` commit, answer a slow call and run a user
/// task, then has it promoted ([`Host::queue_until_promoted`]); returns the
/// default scrape that names it and the promoted scrape (`?promoted=1`) that
/// holds those families at `full`.
fn promote_one(host: &Host, key: &str) -> (String, String) {
    assert_eq!(host.post(&format!("/actors/counter/{key}"), "").0, 200);
    for (action, body) in [
        ("increment", "{}"),
        ("slow", "{\"ms\":5}"),
        ("spawn_task", "{\"kind\":\"background\",\"ms\":1}"),
    ] {
        let url = format!("/actors/counter/{key}/actions/{action}");
        assert_eq!(host.post(&url, body).0, 200, "{action}");
    }
    host.queue_until_promoted(key);
    wait_for(T, "its user task in the promoted scrape", || {
        let promoted = host.scrape_text_with("promoted=1");
        let p = actor_metrics::scrape::Scrape::parse(&promoted).ok()?;
        let full = p.sum(
            "actor_user_task_duration_seconds_count",
            &[("actor_key", key)],
        ) >= 1.0;
        full.then(|| (host.scrape_text(), promoted))
    })
}

/// `promtool check metrics` on `body`: what it found, empty when clean.
fn promtool_findings(body: &str) -> (bool, String) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), findings)
}

/// A promoted actor's full-only histograms (SQLite statement times, user
/// task and startup durations) in the promoted scrape: the family holds only
/// promoted actors, with buckets, so it must be typed a histogram, and
/// promtool must report nothing on it or on the default scrape that names
/// the actor.
#[test]
fn promtool_lints_a_default_scrape_with_a_promoted_actor() {
    if !prometheus_available("promtool_lints_a_default_scrape_with_a_promoted_actor") {
        return;
    }
    let host = Host::start(&[&["--workload", "none"][..], &PROMOTE_BY_QUEUE].concat());
    let (default, promoted) = promote_one(&host, "promoted");
    for (what, text) in [("default", default), ("promoted=1", promoted)] {
        let (ok, findings) = promtool_findings(&text);
        assert!(
            ok && findings.trim().is_empty(),
            "promtool check metrics ({what}, one actor promoted): {findings}"
        );
    }
}

#[test]
fn promtool_lints_a_busy_scrape_and_shipped_rules_use_real_names() {
    if !prometheus_available("promtool_lints_a_busy_scrape_and_shipped_rules_use_real_names") {
        return;
    }
    let host = Host::start(
        &[
            &[
                "--workload",
                "demo",
                "--actors",
                "20",
                "--retention",
                "30s",
                "--sweep-interval",
                "1s",
            ][..],
            &PROMOTE_BY_QUEUE,
        ]
        .concat(),
    );
    // Busy: actions ran, some actors stopped and are retained, user tasks and SQLite commits happened.
    let text = wait_for(T, "a busy scrape", || {
        let text = host.scrape_text();
        let s = actor_metrics::scrape::Scrape::parse(&text).ok()?;
        let busy = s.sum("actor_type_action_calls_total", &[]) >= 50.0
            && s.sum("actor_type_sqlite_commits_total", &[]) > 0.0
            && s.get(
                "actor_metrics_retained_label_sets",
                &[("state", "expiring")],
            )
            .unwrap_or(0.0)
                > 0.0;
        busy.then_some(text)
    });
    assert!(host.promoted().is_empty(), "{:?}", host.promoted());

    // Clean at every level, and for one actor in full.
    let key = host
        .scrape()
        .samples()
        .iter()
        .find_map(|s| s.labels.get("actor_key").cloned())
        .expect("an actor in the busy scrape");
    for (query, body) in [
        ("default", text.clone()),
        ("detail=off", host.scrape_text_with("detail=off")),
        ("detail=full", host.scrape_text_with("detail=full")),
        (
            "actor_key",
            host.scrape_text_with(&format!("actor_key={key}")),
        ),
    ] {
        let (ok, findings) = promtool_findings(&body);
        assert!(
            ok && findings.trim().is_empty(),
            "promtool check metrics ({query}): {findings}"
        );
    }

    // The shipped rules pass promtool and name only metrics that a real
    // scrape has: the default scrape, with one actor promoted, or the
    // promoted scrape.
    let (text, promoted) = promote_one(&host, "promoted");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let rules = [
        format!("{root}/prometheus/alerts.yml"),
        format!("{root}/prometheus/recording.yml"),
    ];
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .args(&rules)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let dashboard = std::fs::read_to_string(format!("{root}/grafana/actor-metrics.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("dashboard JSON parses");

    // Against the default and promoted scrapes: what a user's Prometheus
    // ingests under the shipped jobs.
    let scrapes = [&text, &promoted].map(|t| actor_metrics::scrape::Scrape::parse(t).unwrap());
    let exists = |name: &str| {
        scrapes.iter().any(|scrape| {
            scrape.type_of(name).is_some()
                || scrape.series(name).next().is_some()
                || ["_bucket", "_sum", "_count"].iter().any(|s| {
                    name.strip_suffix(s).is_some_and(|b| {
                        scrape.type_of(b) == Some("histogram")
                            || (*s != "_bucket" && scrape.type_of(b) == Some("summary"))
                    })
                })
        })
    };
    let mut used = Vec::new();
    for file in rules
        .iter()
        .map(|r| std::fs::read_to_string(r).unwrap())
        .chain([dashboard])
    {
        used.extend(names_used_in(&file));
    }
    assert!(
        used.len() > 10,
        "found metric names in the shipped files: {used:?}"
    );
    let missing: Vec<_> = used.iter().filter(|n| !exists(n)).collect();
    assert!(
        missing.is_empty(),
        "names used in deploy/ but absent from a real scrape: {missing:?}"
    );
}

#[test]
fn names_used_in_finds_metric_names_not_labels_or_rule_names() {
    let names = names_used_in(
        "sum without(instance) (rate(actor_type_action_calls_total{actor_name=\"x\"}[5m])) / actor_name:actor_type_action_calls:rate5m + actor_active",
    );
    assert_eq!(names, ["actor_active", "actor_type_action_calls_total"]);
}
