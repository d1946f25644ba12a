//! A fleet on a scalable pipeline, end to end with real processes: three
//! `actor-host` processes, two `vmagent` shards (each target scraped by exactly
//! one), one VictoriaMetrics, `vmalert` running the shipped rules, and
//! Alertmanager with the shipped routing delivering to a webhook. Everything is
//! checked through the TSDB's query API.
//!
//! The pipeline starts once; one test runs the phases in order, each building
//! on the state the previous one left.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use actor_e2e_tests::fleet::{Alertmanager, VictoriaMetrics, Vmagent, Vmalert, WebhookRelay};
use actor_e2e_tests::promql::{sample_time, sample_value, unix_now};
use actor_e2e_tests::tools::{self, ALERTMANAGER, VICTORIA_METRICS, VMAGENT, VMALERT};
use actor_e2e_tests::{Host, deploy_file_with, deploy_path, poll};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
/// Every host's `--retention`.
const RETENTION: f64 = 6.0;
const HOSTS: usize = 3;
const SHARDS: usize = 2;
const COUNTER: &str = "actor_name=\"counter\",job=\"actor-host\"";

/// What the test's clients sent, per host (`instance`) and action: the exact
/// counts the TSDB must show.
#[derive(Default)]
struct Ledger {
    calls: BTreeMap<String, BTreeMap<String, f64>>,
    errors: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Ledger {
    fn fleet(per_instance: &BTreeMap<String, BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (action, n) in per_instance.values().flatten() {
            *out.entry(action.clone()).or_default() += n;
        }
        out
    }

    fn per_instance(&self) -> BTreeMap<String, f64> {
        self.calls
            .iter()
            .map(|(instance, calls)| (instance.clone(), calls.values().sum()))
            .collect()
    }

    /// A host restarted: its process' counters start again from zero.
    fn restart(&mut self, instance: &str) {
        self.calls.remove(instance);
        self.errors.remove(instance);
    }
}

/// Equal as counts: a key missing on one side counts as 0 (aggregate
/// children of actions nobody called exist at 0).
fn same_counts(want: &BTreeMap<String, f64>, got: &BTreeMap<String, f64>) -> bool {
    want.keys()
        .chain(got.keys())
        .all(|k| want.get(k).copied().unwrap_or(0.0) == got.get(k).copied().unwrap_or(0.0))
}

/// The whole pipeline. Fields drop in order: hosts and scrapers first, the
/// temp dirs last.
struct Fleet {
    hosts: Vec<Option<Host>>,
    _vmalert: Vmalert,
    _shards: Vec<Vmagent>,
    alertmanager: Alertmanager,
    relay: WebhookRelay,
    vm: VictoriaMetrics,
    /// Each host's metrics address: its scrape target, kept across a restart.
    targets: Vec<SocketAddr>,
    envoy_keys: Vec<String>,
    data_dirs: Vec<tempfile::TempDir>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let vm = VictoriaMetrics::start(dir.path());
        let relay = WebhookRelay::start();
        // The shipped routing, delivering to the relay; group_wait shortened
        // from 30s/10s so the first notification goes out within seconds.
        let (page, ticket) = (
            format!("http://{}/page", relay.addr),
            format!("http://{}/ticket", relay.addr),
        );
        let am_config = deploy_file_with(
            "alertmanager/alertmanager.yml",
            &[
                ("https://pager.example.com/actor-host", &page),
                ("https://tickets.example.com/actor-host", &ticket),
                ("group_wait: 30s", "group_wait: 1s"),
                ("group_wait: 10s", "group_wait: 1s"),
            ],
        );
        let alertmanager = Alertmanager::start(dir.path(), &am_config);
        let (targets, held, shards) = sharded_scrapers(dir.path(), &vm);

        let envoy_keys: Vec<String> = (0..HOSTS).map(|i| format!("fleet-host-{i}")).collect();
        let data_dirs: Vec<_> = (0..HOSTS)
            .map(|_| tempfile::tempdir().expect("temp dir"))
            .collect();
        let hosts = held
            .into_iter()
            .enumerate()
            .map(|(i, port)| {
                // Released only now, so no daemon started above can have taken it.
                drop(port);
                Some(start_host(data_dirs[i].path(), targets[i], &envoy_keys[i]))
            })
            .collect();
        let vmalert = Vmalert::start(
            dir.path(),
            &[
                deploy_path("prometheus/alerts.yml"),
                deploy_path("prometheus/recording.yml"),
            ],
            &vm.url(),
            &alertmanager.url(),
            "1s",
        );
        Fleet {
            hosts,
            _vmalert: vmalert,
            _shards: shards,
            alertmanager,
            relay,
            vm,
            targets,
            envoy_keys,
            data_dirs,
            _dir: dir,
        }
    }

    fn host(&self, i: usize) -> &Host {
        self.hosts[i].as_ref().expect("host running")
    }

    fn instance(&self, i: usize) -> String {
        self.targets[i].to_string()
    }

    /// Calls `action` on `key` at host `i` and books it: every answered call
    /// counts as a call, a failed one also as an error.
    fn call(&self, ledger: &mut Ledger, i: usize, key: &str, action: &str, body: &str) -> u16 {
        let (status, answer) = self
            .host(i)
            .post(&format!("/actors/counter/{key}/actions/{action}"), body);
        let instance = self.instance(i);
        *ledger
            .calls
            .entry(instance.clone())
            .or_default()
            .entry(action.into())
            .or_default() += 1.0;
        if status >= 400 {
            *ledger
                .errors
                .entry(instance)
                .or_default()
                .entry(action.into())
                .or_default() += 1.0;
        }
        assert!(
            status == 200 || action == "fail",
            "{action} on {key}: {status} {answer}"
        );
        status
    }

    fn create(&self, i: usize, key: &str) {
        let (status, answer) = self.host(i).post(&format!("/actors/counter/{key}"), "");
        assert_eq!(status, 200, "create {key} on host {i}: {answer}");
    }

    fn destroy(&self, i: usize, key: &str) {
        let (status, answer) = self.host(i).delete(&format!("/actors/counter/{key}"));
        assert_eq!(status, 200, "destroy {key} on host {i}: {answer}");
    }

    /// Waits until the TSDB has a sample of `up` for host `i` taken at or
    /// after `t`: the pipeline has moved past that moment.
    fn scraped_since(&self, i: usize, t: f64) {
        let promql = format!(
            "timestamp(up{{job=\"actor-host\",instance=\"{}\"}})",
            self.instance(i)
        );
        poll(T, &format!("a scrape of host {i} after {t}"), || {
            let last = self.vm.api.value(&promql);
            last.filter(|&ts| ts >= t)
                .ok_or(format!("{promql} = {last:?}"))
        });
    }

    /// Waits until the instant query `promql` gives exactly `want`.
    fn reaches(&self, promql: &str, want: f64) {
        poll(T, &format!("{promql} == {want}"), || {
            let v = self.vm.api.value(promql);
            (v == Some(want)).then_some(()).ok_or(format!("{v:?}"))
        });
    }

    /// Creates (or wakes) `key` on host `i`, waits until the TSDB has its
    /// call counter at 0 (a new series starts at zero), calls `increment`
    /// `n` times and waits until the counter shows `n`.
    fn count_up(&self, ledger: &mut Ledger, i: usize, key: &str, n: u32) {
        let calls = format!(
            "actor_action_calls_total{{actor_key=\"{key}\",envoy_key=\"{}\"}}",
            self.envoy_keys[i]
        );
        self.create(i, key);
        self.reaches(&calls, 0.0);
        for _ in 0..n {
            self.call(ledger, i, key, "increment", "{}");
        }
        self.reaches(&calls, f64::from(n));
    }
}

fn start_host(data_dir: &Path, metrics: SocketAddr, envoy_key: &str) -> Host {
    Host::start_at(
        data_dir,
        metrics,
        &[
            "--workload",
            "none",
            "--envoy-key",
            envoy_key,
            "--retention",
            "6s",
            "--sweep-interval",
            "1s",
            "--shutdown-timeout",
            "300ms",
        ],
    )
}

/// Picks the hosts' metrics ports and starts the vmagent shards on the
/// shipped scrape config. vmagent assigns each target to one shard by a hash of
/// its labels, so three targets land on one shard a quarter of the time; then
/// other ports are tried, so that both shards really scrape.
///
/// The ports stay bound (returned as listeners) until the hosts start: bound
/// and released one at a time, two could be the same port (vmagent then lists
/// one target where the test waits for three), and a vmagent started in
/// between could take a host's port.
fn sharded_scrapers(
    dir: &Path,
    vm: &VictoriaMetrics,
) -> (Vec<SocketAddr>, Vec<TcpListener>, Vec<Vmagent>) {
    let write_url = format!("{}/api/v1/write", vm.url());
    for _ in 0..10 {
        let held: Vec<TcpListener> = (0..HOSTS)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
            .collect();
        let targets: Vec<SocketAddr> = held
            .iter()
            .map(|l| l.local_addr().expect("bound address"))
            .collect();
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = deploy_file_with(
            "victoriametrics/scrape.yml",
            &[
                ("scrape_interval: 15s", "scrape_interval: 1s"),
                ("scrape_timeout: 10s", "scrape_timeout: 900ms"),
                ("['localhost:9091']", &format!("[{list}]")),
            ],
        );
        let config_path = dir.join("scrape.yml");
        std::fs::write(&config_path, config).expect("write scrape.yml");
        let shards: Vec<Vmagent> = (0..SHARDS)
            .map(|m| Vmagent::start(dir, &config_path, m, SHARDS, &write_url))
            .collect();
        let assigned = poll(T, "every target assigned to a shard", || {
            let per_shard: Vec<Vec<String>> = shards.iter().map(Vmagent::targets).collect();
            let total: usize = per_shard.iter().map(Vec::len).sum();
            if total >= HOSTS {
                Ok(per_shard)
            } else {
                Err(format!("{per_shard:?}"))
            }
        });
        // Exactly one shard per target: together they cover every target, and
        // no target is on two shards.
        let all: BTreeSet<String> = targets.iter().map(|t| t.to_string()).collect();
        let covered: Vec<&String> = assigned.iter().flatten().collect();
        assert_eq!(
            covered.len(),
            HOSTS,
            "a target is scraped by more than one shard: {assigned:?}"
        );
        assert_eq!(
            covered.into_iter().cloned().collect::<BTreeSet<_>>(),
            all,
            "shards' targets {assigned:?}"
        );
        if assigned.iter().all(|s| !s.is_empty()) {
            return (targets, held, shards);
        }
    }
    panic!("vmagent put every target on one shard 10 times in a row");
}

#[test]
fn fleet_through_vmagent_shards_victoriametrics_vmalert_and_alertmanager() {
    if !tools::require(
        "fleet_through_vmagent_shards_victoriametrics_vmalert_and_alertmanager",
        &[&VICTORIA_METRICS, &VMAGENT, &VMALERT, &ALERTMANAGER],
    ) {
        return;
    }
    let mut fleet = Fleet::start();
    let mut ledger = Ledger::default();

    for i in 0..HOSTS {
        fleet.reaches(
            &format!(
                "up{{job=\"actor-host\",instance=\"{}\"}}",
                fleet.instance(i)
            ),
            1.0,
        );
    }

    // Early, so that vmalert and Alertmanager work on it while the other phases run.
    trigger_shutdown_timeout(&fleet, &mut ledger);

    drive_traffic(&fleet, &mut ledger);
    assert_exact_counts(&fleet, &ledger, "counts after the first traffic");
    assert_scraped_once(&fleet);
    assert_one_recorded_series_per_type(&fleet, 9.0);

    move_actor_between_hosts(&fleet, &mut ledger);
    restart_host(&mut fleet, &mut ledger, 2);
    assert_exact_counts(&fleet, &ledger, "counts after the restart");
    // Live now: 3 + 3 on hosts 0 and 1, the moved actor on host 1, one woken on the restarted host 2.
    assert_one_recorded_series_per_type(&fleet, 8.0);

    assert_alert_reached_ticket_receiver(&fleet);
}

/// A user task that outlives `--shutdown-timeout` (300 ms), then a destroy:
/// one shutdown gives up waiting, the first timeout of the fleet.
fn trigger_shutdown_timeout(fleet: &Fleet, ledger: &mut Ledger) {
    fleet.create(0, "stuck");
    fleet.call(
        ledger,
        0,
        "stuck",
        "spawn_task",
        r#"{"kind":"background","ms":60000}"#,
    );
    fleet.destroy(0, "stuck");
}

/// Three actors per host, different call counts per host, errors on one.
fn drive_traffic(fleet: &Fleet, ledger: &mut Ledger) {
    for (i, increments) in [(0, 5), (1, 7), (2, 3)] {
        for key in ["a", "b", "c"] {
            let key = format!("h{i}-{key}");
            fleet.create(i, &key);
            for _ in 0..increments {
                fleet.call(ledger, i, &key, "increment", "{}");
            }
        }
    }
    for _ in 0..2 {
        assert!(fleet.call(ledger, 1, "h1-a", "fail", "{}") >= 400);
    }
    fleet.call(ledger, 2, "h2-a", "get", "{}");
}

/// Fleet-wide calls and errors per action, and calls per host, equal what the
/// clients sent, exactly.
fn assert_exact_counts(fleet: &Fleet, ledger: &Ledger, what: &str) {
    let api = &fleet.vm.api;
    let want_calls = Ledger::fleet(&ledger.calls);
    let want_errors = Ledger::fleet(&ledger.errors);
    let want_hosts = ledger.per_instance();
    poll(T, what, || {
        let calls = api.values_by(
            &format!("sum by (action) (actor_type_action_calls_total{{{COUNTER}}})"),
            "action",
        );
        let errors = api.values_by(
            &format!("sum by (action) (actor_type_action_errors_total{{{COUNTER}}})"),
            "action",
        );
        let hosts = api.values_by(
            &format!("sum by (instance) (actor_type_action_calls_total{{{COUNTER}}})"),
            "instance",
        );
        if same_counts(&want_calls, &calls)
            && same_counts(&want_errors, &errors)
            && same_counts(&want_hosts, &hosts)
        {
            Ok(())
        } else {
            Err(format!(
                "calls {calls:?} (sent {want_calls:?}), errors {errors:?} (sent {want_errors:?}), per host {hosts:?} (sent {want_hosts:?})"
            ))
        }
    });
}

/// No target is scraped twice: over 10 s at a 1 s interval each host has at
/// most ~10 samples of `up` (two shards on one target would give ~20).
fn assert_scraped_once(fleet: &Fleet) {
    let promql = "count_over_time(up{job=\"actor-host\"}[10s])";
    poll(T, "10 s of scrapes of every host", || {
        let counts = fleet.vm.api.values_by(promql, "instance");
        assert!(
            counts.values().all(|&n| n <= 13.0),
            "a target was scraped more than once per interval: {promql} = {counts:?}"
        );
        if counts.len() == HOSTS && counts.values().all(|&n| n >= 8.0) {
            Ok(())
        } else {
            Err(format!("{promql} = {counts:?}"))
        }
    });
}

/// The recording rules (evaluated by vmalert, written back into
/// VictoriaMetrics) give one series per type (and action) across the fleet,
/// with the replica labels gone; the active count is exact.
fn assert_one_recorded_series_per_type(fleet: &Fleet, live: f64) {
    let api = &fleet.vm.api;
    poll(T, &format!("actor_type:active:sum == {live}"), || {
        let r = api.query("actor_type:active:sum");
        let one = r.len() == 1
            && r[0]["metric"]
                == serde_json::json!({
                    "__name__": "actor_type:active:sum",
                    "actor_name": "counter",
                    "job": "actor-host",
                });
        if one && sample_value(&r[0]["value"]) == Some(live) {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    let calls = api.query("actor_type:action_calls:rate5m");
    let actions: BTreeSet<&str> = calls
        .iter()
        .filter_map(|s| s["metric"]["action"].as_str())
        .collect();
    assert!(
        actions.contains("increment") && actions.len() == calls.len(),
        "one actor_type:action_calls:rate5m series per action expected: {calls:?}"
    );
    let recorded = api.series(
        "{__name__=~\"actor_type:.+\"}",
        unix_now() - 600.0,
        unix_now(),
    );
    let split: Vec<&Value> = recorded
        .iter()
        .filter(|s| {
            ["instance", "pod", "node", "envoy_key"]
                .iter()
                .any(|l| !s[*l].is_null())
        })
        .collect();
    assert!(
        !recorded.is_empty() && split.is_empty(),
        "recorded series still split by replica: {split:?}"
    );
}

/// An actor destroyed on host 0 and created on host 1: host 0's series stay
/// for the retention window, then end for good; host 1's start at zero. Each
/// series only ever counts up: nothing flips between the two.
fn move_actor_between_hosts(fleet: &Fleet, ledger: &mut Ledger) {
    let api = &fleet.vm.api;
    let (a, b) = (0, 1);
    let series = |i: usize| {
        format!(
            "actor_action_calls_total{{actor_key=\"mover\",envoy_key=\"{}\"}}",
            fleet.envoy_keys[i]
        )
    };
    let start = unix_now();
    fleet.count_up(ledger, a, "mover", 3);
    fleet.destroy(a, "mover");
    let destroyed = unix_now();
    fleet.count_up(ledger, b, "mover", 2);

    let gone = poll(T, "host 0's series of the moved actor to go", || {
        let r = api.query(&series(a));
        if r.is_empty() {
            Ok(unix_now())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert!(
        gone >= destroyed + RETENTION - 1.0,
        "host 0's series went {:.1}s after the destroy, before the {RETENTION}s retention",
        gone - destroyed
    );
    // Three more scrapes of host 0, then the whole history.
    fleet.scraped_since(a, gone + 3.0);
    let end = unix_now();
    let history = api.query_range(
        "actor_action_calls_total{actor_key=\"mover\"}",
        start - 1.0,
        end,
        1.0,
    );
    let of = |i: usize| -> Vec<(f64, f64)> {
        let s: Vec<&Value> = history
            .iter()
            .filter(|s| s["metric"]["envoy_key"] == fleet.envoy_keys[i].as_str())
            .collect();
        assert_eq!(
            s.len(),
            1,
            "one series of the moved actor per host: {history:?}"
        );
        s[0]["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| (sample_time(p), sample_value(p).expect("number")))
            .collect()
    };
    assert_eq!(history.len(), 2, "{history:?}");
    let (on_a, on_b) = (of(a), of(b));
    let monotone = |points: &[(f64, f64)]| points.windows(2).all(|w| w[0].1 <= w[1].1);
    assert!(
        monotone(&on_a) && monotone(&on_b),
        "a series went back: {history:?}"
    );
    let last_a = on_a.last().expect("host 0 points");
    assert_eq!(last_a.1, 3.0, "{on_a:?}");
    assert!(
        last_a.0 >= destroyed + RETENTION - 1.0 && last_a.0 <= gone,
        "host 0's last point at {} (destroyed {destroyed}, gone {gone}): {on_a:?}",
        last_a.0
    );
    assert_eq!(
        on_b.first().map(|p| p.1),
        Some(0.0),
        "host 1 starts at 0: {on_b:?}"
    );
    assert_eq!(on_b.last().map(|p| p.1), Some(2.0), "{on_b:?}");
    assert!(
        on_b.last().is_some_and(|p| p.0 >= end - 2.0),
        "host 1's series is still live: {on_b:?}"
    );
}

/// Host `i` is killed and started again on the same data dir and metrics
/// address with a new envoy_key: its per-actor series are new, start at zero,
/// and the old process' series go stale and stay gone.
fn restart_host(fleet: &mut Fleet, ledger: &mut Ledger, i: usize) {
    let old_key = fleet.envoy_keys[i].clone();
    let old = format!("{{envoy_key=\"{old_key}\"}}");
    assert!(
        !fleet.vm.api.query(&old).is_empty(),
        "host {i} has per-actor series before the restart"
    );
    fleet.hosts[i] = None; // SIGKILL: no graceful stop, like a crash or an OOM kill.
    let killed = unix_now();
    let new_key = format!("{old_key}-restarted");
    fleet.hosts[i] = Some(start_host(
        fleet.data_dirs[i].path(),
        fleet.targets[i],
        &new_key,
    ));
    fleet.envoy_keys[i] = new_key.clone();
    ledger.restart(&fleet.instance(i));

    fleet.count_up(ledger, i, "h2-a", 4);
    // The aggregate of the restarted process counts from zero too.
    let agg = format!(
        "actor_type_action_calls_total{{instance=\"{}\",action=\"increment\"}}",
        fleet.instance(i)
    );
    fleet.reaches(&agg, 4.0);

    poll(T, "the old process' series to go stale", || {
        let r = fleet.vm.api.query(&old);
        r.is_empty()
            .then_some(())
            .ok_or(format!("{} series, e.g. {:?}", r.len(), r.first()))
    });
    fleet.scraped_since(i, unix_now() + 2.0);
    // Nothing of the old process after the first failed scrape (one interval
    // plus slack), in the whole history since.
    let after = fleet
        .vm
        .api
        .query_range(&old, killed + 2.5, unix_now(), 1.0);
    assert!(after.is_empty(), "old series after the kill: {after:?}");
    let keys: BTreeSet<String> = fleet
        .vm
        .api
        .series(
            "actor_action_calls_total{actor_key=\"h2-a\"}",
            killed - 60.0,
            unix_now(),
        )
        .iter()
        .filter_map(|s| s["envoy_key"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([old_key, new_key]),
        "the restarted actor has a new series next to the old one"
    );
}

/// The shutdown timeout fired `ActorShutdownTimeouts` (severity warning) in
/// vmalert; Alertmanager holds it routed to `ticket`, and the ticket webhook
/// got it. Nothing else fires on this healthy fleet, and nothing paged.
fn assert_alert_reached_ticket_receiver(fleet: &Fleet) {
    let alerts = poll(T, "ActorShutdownTimeouts in Alertmanager", || {
        let alerts = fleet.alertmanager.alerts();
        let found = alerts
            .iter()
            .any(|a| a["labels"]["alertname"] == "ActorShutdownTimeouts");
        if found {
            Ok(alerts)
        } else {
            Err(format!("{alerts:?}"))
        }
    });
    assert_eq!(
        alerts.len(),
        1,
        "only the triggered alert fires: {alerts:?}"
    );
    let alert = &alerts[0];
    assert_eq!(
        alert["labels"],
        serde_json::json!({
            "alertname": "ActorShutdownTimeouts",
            "actor_name": "counter",
            "job": "actor-host",
            "reason": "destroy",
            "severity": "warning",
            // vmalert names the rule group; Prometheus would not.
            "alertgroup": "actor-host-actors",
        }),
        "{alert}"
    );
    assert_eq!(
        alert["receivers"],
        serde_json::json!([{"name": "ticket"}]),
        "{alert}"
    );
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    // Exactly one timeout, counted although it was the first.
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    assert!(description.starts_with("1 shutdowns of counter"), "{alert}");

    let delivered = poll(T, "the ticket webhook", || {
        let got = fleet.relay.received();
        got.iter()
            .find(|n| {
                n.path == "/ticket"
                    && n.body["status"] == "firing"
                    && n.body["alerts"][0]["labels"]["alertname"] == "ActorShutdownTimeouts"
            })
            .cloned()
            .ok_or(format!("{got:?}"))
    });
    assert_eq!(delivered.body["receiver"], "ticket", "{:?}", delivered.body);
    let paged: Vec<_> = fleet
        .relay
        .received()
        .into_iter()
        .filter(|n| n.path != "/ticket")
        .collect();
    assert!(paged.is_empty(), "nothing should page: {paged:?}");
}
