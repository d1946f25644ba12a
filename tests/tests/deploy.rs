//! The shipped deploy/ assets checked by their own tools: the rules' promtool
//! unit tests, Alertmanager's routing of every alert, the scrape configs, and
//! the dashboard's units.

use std::path::Path;
use std::process::{Command, Output};

use actor_e2e_tests::tools::{self, AMTOOL, PROMTOOL, VMAGENT, VMALERT};
use actor_e2e_tests::{Host, deploy_path};
use actor_metrics::labels::{LabelEnum, ShutdownReason};

/// Runs a checker; fails with everything it printed unless it succeeded.
fn check(program: &Path, args: &[String]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn deploy(relative: &str) -> String {
    deploy_path(relative).display().to_string()
}

#[test]
fn shipped_rules_pass_their_promtool_unit_tests() {
    if !tools::require("shipped_rules_pass_their_promtool_unit_tests", &[&PROMTOOL]) {
        return;
    }
    let dir = deploy_path("prometheus/tests");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/prometheus/tests")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit test files in {}", dir.display());
    let mut args = vec!["test".to_owned(), "rules".to_owned()];
    args.extend(files);
    check(&PROMTOOL.bin(), &args);
}

#[test]
fn shipped_prometheus_configs_pass_promtool() {
    if !tools::require("shipped_prometheus_configs_pass_promtool", &[&PROMTOOL]) {
        return;
    }
    let mut args = vec!["check".to_owned(), "config".to_owned()];
    args.extend(
        ["prometheus.yml", "agent.yml", "receiver.yml"]
            .iter()
            .map(|f| deploy(&format!("prometheus/{f}"))),
    );
    check(&PROMTOOL.bin(), &args);
}

#[test]
fn shipped_victoriametrics_configs_pass_vmagent_and_vmalert() {
    if !tools::require(
        "shipped_victoriametrics_configs_pass_vmagent_and_vmalert",
        &[&VMAGENT, &VMALERT],
    ) {
        return;
    }
    check(
        &VMAGENT.bin(),
        &[
            format!(
                "-promscrape.config={}",
                deploy("victoriametrics/scrape.yml")
            ),
            "-promscrape.config.dryRun".into(),
            "-loggerLevel=ERROR".into(),
        ],
    );
    // vmalert parses the rules with MetricsQL, which is not PromQL: the same
    // files must load in both.
    check(
        &VMALERT.bin(),
        &[
            "-dryRun".into(),
            format!("-rule={}", deploy("prometheus/alerts.yml")),
            format!("-rule={}", deploy("prometheus/recording.yml")),
            "-loggerLevel=ERROR".into(),
        ],
    );
}

/// The text of the alert rule file.
fn alert_rules_text() -> String {
    std::fs::read_to_string(deploy_path("prometheus/alerts.yml")).expect("alerts.yml")
}

/// `(alert, severity)` for every rule in alerts.yml.
fn alert_severities() -> Vec<(String, String)> {
    let text = alert_rules_text();
    let mut out = Vec::new();
    let mut alert = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alert = Some(name.to_owned());
        } else if let Some(severity) = line.strip_prefix("severity: ") {
            let name = alert.take().expect("severity inside an alert");
            out.push((name, severity.to_owned()));
        }
    }
    out
}

#[test]
fn every_alert_routes_by_severity_to_page_or_ticket() {
    if !tools::require(
        "every_alert_routes_by_severity_to_page_or_ticket",
        &[&AMTOOL],
    ) {
        return;
    }
    let config = deploy("alertmanager/alertmanager.yml");
    check(&AMTOOL.bin(), &["check-config".into(), config.clone()]);
    let route = |labels: &[String]| {
        let mut args = vec![
            "config".to_owned(),
            "routes".into(),
            "test".into(),
            format!("--config.file={config}"),
        ];
        args.extend_from_slice(labels);
        let out = check(&AMTOOL.bin(), &args);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let alerts = alert_severities();
    assert!(alerts.len() >= 18, "alerts found in alerts.yml: {alerts:?}");
    for (alert, severity) in &alerts {
        let want = match severity.as_str() {
            "critical" => "page",
            "warning" | "info" => "ticket",
            other => panic!("{alert}: severity {other:?} has no route (critical, warning, info)"),
        };
        let mut labels = vec![format!("alertname={alert}"), format!("severity={severity}")];
        // Per-actor alerts carry actor_key and take the per-actor route
        // (grouped by actor); the receiver still follows the severity.
        if alert.starts_with("ActorKey") || alert == "ActorPromoted" {
            labels.push("actor_key=user-42".into());
        }
        let got = route(&labels);
        assert_eq!(got, want, "{alert} (severity {severity}) routes to {got}");
    }
    // Something must page, and an alert without a severity still reaches a person.
    assert!(alerts.iter().any(|(_, s)| s == "critical"), "{alerts:?}");
    assert_eq!(route(&["alertname=Unlabelled".into()]), "ticket");
}

#[test]
fn latency_panels_are_in_seconds() {
    let text =
        std::fs::read_to_string(deploy_path("grafana/actor-metrics.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut latency_panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("");
        let exprs: Vec<&str> = panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["expr"].as_str())
            .collect();
        let latency = title.contains("latency")
            || title.contains("duration")
            || exprs.iter().any(|e| e.contains("histogram_quantile"));
        if !latency {
            continue;
        }
        latency_panels += 1;
        let config = &panel["fieldConfig"];
        assert_eq!(config["defaults"]["unit"], "s", "panel {title:?}: {config}");
        for o in config["overrides"].as_array().into_iter().flatten() {
            for p in o["properties"].as_array().into_iter().flatten() {
                if p["id"] == "unit" {
                    assert_eq!(p["value"], "s", "panel {title:?} override: {o}");
                }
            }
        }
    }
    assert!(
        latency_panels >= 5,
        "latency panels found: {latency_panels}"
    );
}

/// Every latency panel drawn from the action or commit buckets asks Grafana
/// for exemplars, and the shipped data source links their `trace_id` to a
/// trace store: a dot on the panel opens the call.
#[test]
fn latency_panels_show_exemplars_that_link_to_the_trace() {
    let text =
        std::fs::read_to_string(deploy_path("grafana/actor-metrics.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut with = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or("");
            let buckets = [
                "action_duration_seconds_bucket",
                "sqlite_commit_duration_seconds_bucket",
            ]
            .iter()
            .any(|b| expr.contains(b));
            if buckets && panel["type"] == "timeseries" {
                assert_eq!(t["exemplar"], true, "{}: {expr}", panel["title"]);
                with += 1;
            }
        }
    }
    assert!(with >= 6, "{with} targets with exemplars");
    let ds = std::fs::read_to_string(deploy_path("grafana/datasource.yml")).expect("datasource");
    let lines: Vec<&str> = ds.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| *l == "exemplarTraceIdDestinations:")
        .expect("exemplar links");
    assert_eq!(lines[at + 1], "- name: trace_id", "{ds}");
    assert!(lines[at + 2].starts_with("datasourceUid: "), "{ds}");
}

/// The shipped rules count the first shutdown timeout either way (the
/// promtool tests above cover both shapes); this checks the host's side of the
/// contract: every reason's aggregate child exists at 0 once the type is
/// registered, so `increase()` sees the step from 0 to 1.
#[test]
fn shutdown_timeout_aggregates_exist_at_zero_before_the_first_timeout() {
    let host = Host::start(&["--workload", "none"]);
    let scrape = host.scrape();
    for reason in ShutdownReason::ALL {
        let labels = [("actor_name", "counter"), ("reason", reason.as_str())];
        assert_eq!(
            scrape.get("actor_type_shutdown_timeouts_total", &labels),
            Some(0.0),
            "actor_type_shutdown_timeouts_total{labels:?} before any timeout"
        );
    }
}

/// The families whose level is `core` in METRICS.md's per-actor table, and
/// whether each is a histogram.
fn core_families() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(deploy_path("../METRICS.md")).expect("METRICS.md");
    let section = text
        .split("## Per actor")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("METRICS.md has a per-actor section");
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | `name` | type | level | ...
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            (cells.get(3) == Some(&"core")).then(|| (name.to_owned(), cells[2] == "histogram"))
        })
        .collect()
}

/// The top-level alternatives of job `job`'s drop regex
/// `actor_(a|b(_sum|_count)?|...)`, each with whether it carries the
/// `(_sum|_count)?` suffix.
fn job_dropped_families(job: &str) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(deploy_path("prometheus/prometheus.yml")).expect("config");
    let job = text
        .split(&format!("- job_name: {job}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("prometheus.yml has the {job} job"));
    let regex = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("regex: '"))
        .and_then(|r| r.strip_suffix('\''))
        .expect("the job has a drop regex");
    let body = regex
        .strip_prefix("actor_(")
        .and_then(|r| r.strip_suffix(')'))
        .expect("regex of the form actor_(...)");
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in body.char_indices().chain([(body.len(), '|')]) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => {
                let alt = &body[start..i];
                let (name, hist) = match alt.strip_suffix("(_sum|_count)?") {
                    Some(n) => (n, true),
                    None => (alt, false),
                };
                out.push((format!("actor_{name}"), hist));
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// The debug and promoted jobs drop exactly the series the main job already
/// has at `core`: every `core` family of METRICS.md (a histogram with its
/// `_sum`, `_count` and bare native name), and nothing else, so a family
/// that changes level fails here until the regexes follow.
#[test]
fn debug_and_promoted_jobs_drop_exactly_the_core_families() {
    let mut want = core_families();
    want.sort();
    assert!(want.len() >= 12, "core families in METRICS.md: {want:?}");
    for job in ["actor-host-debug", "actor-host-promoted"] {
        let mut got = job_dropped_families(job);
        got.sort();
        assert_eq!(
            got, want,
            "{job}'s drop regex against METRICS.md's core families"
        );
    }
}

/// Every shipped scrape of `?promoted=1` (Prometheus, its agent, vmagent,
/// the PodMonitor) drops the same core series as the debug job.
#[test]
fn every_shipped_promoted_scrape_drops_the_same_core_series() {
    let regex_of = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("regex: 'actor_("))
            .map(str::to_owned)
            .collect()
    };
    let main = std::fs::read_to_string(deploy_path("prometheus/prometheus.yml")).expect("config");
    let want = regex_of(&main);
    assert_eq!(want.len(), 2, "the debug and promoted jobs: {want:?}");
    assert_eq!(want[0], want[1]);
    for file in [
        "prometheus/agent.yml",
        "victoriametrics/scrape.yml",
        "kubernetes/podmonitor.yaml",
    ] {
        let text = std::fs::read_to_string(deploy_path(file)).expect(file);
        assert!(
            text.contains("promoted: ['1']"),
            "{file} scrapes ?promoted=1"
        );
        assert_eq!(regex_of(&text), want[..1], "{file}");
    }
}

/// `(alert, runbook_url)` for every rule in alerts.yml.
fn alert_runbooks() -> Vec<(String, Option<String>)> {
    let text = alert_rules_text();
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            out.push((name.to_owned(), None));
        } else if let Some(url) = line.strip_prefix("runbook_url: ") {
            let last = out.last_mut().expect("runbook_url inside an alert");
            last.1 = Some(url.trim_matches('"').to_owned());
        }
    }
    out
}

/// Every alert links its runbook: a `runbook_url` (an absolute URL, which
/// Alertmanager and Grafana render as a link; a relative path is not) under the
/// documented placeholder base, whose anchor is that alert's own section in
/// deploy/README.md.
#[test]
fn every_alert_has_a_runbook_url_into_its_readme_section() {
    let readme = std::fs::read_to_string(deploy_path("README.md")).expect("deploy/README.md");
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let base = "https://runbooks.example.com/actor-host/deploy/README.md#";
    let runbooks = alert_runbooks();
    assert!(runbooks.len() >= 18, "{runbooks:?}");
    for (alert, url) in runbooks {
        let url = url.unwrap_or_else(|| panic!("{alert} has no runbook_url"));
        let anchor = url
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url} is not under {base}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert}: runbook_url {url}");
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{alert}: deploy/README.md has no section '### {alert}'"
        );
    }
}

/// Every alert in alerts.yml fires in at least one promtool unit test
/// (an `alert_rule_test` with a non-empty `exp_alerts`), so none ships with an
/// expression that was never seen to fire.
#[test]
fn every_alert_fires_in_a_promtool_unit_test() {
    let dir = deploy_path("prometheus/tests");
    let mut fired = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/prometheus/tests") {
        let text = std::fs::read_to_string(entry.expect("dir entry").path()).expect("test file");
        let mut current = None;
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("- alertname: ") {
                current = Some(name.to_owned());
            } else if line == "exp_alerts:" {
                fired.extend(current.take());
            }
        }
    }
    let missing: Vec<String> = alert_severities()
        .into_iter()
        .map(|(a, _)| a)
        .filter(|a| !fired.contains(a))
        .collect();
    assert!(
        missing.is_empty(),
        "alerts no promtool test sees firing: {missing:?}"
    );
}

/// The Kubernetes PrometheusRule is generated from the shipped rule files and
/// committed: it must equal what the script generates now (so Kubernetes runs
/// the rules promtool tests), and its `spec.groups`, taken back out, must pass
/// `promtool check rules` and hold every group of the rule files.
#[test]
fn prometheusrule_equals_the_rule_files() {
    let script = deploy_path("kubernetes/generate-prometheusrule.sh");
    let out = check(
        Path::new("sh"),
        &[script.display().to_string(), "--stdout".into()],
    );
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = std::fs::read_to_string(deploy_path("kubernetes/prometheusrule.yaml"))
        .expect("deploy/kubernetes/prometheusrule.yaml");
    assert!(
        generated == committed,
        "deploy/kubernetes/prometheusrule.yaml is stale: run deploy/kubernetes/generate-prometheusrule.sh"
    );
    assert!(committed.contains("kind: PrometheusRule"), "{committed}");

    let groups = committed
        .split_once("\nspec:\n  groups:\n")
        .expect("spec.groups")
        .1;
    let mut rules = String::from("groups:\n");
    for line in groups.lines() {
        rules.push_str(line.strip_prefix("  ").unwrap_or(line));
        rules.push('\n');
    }
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("- name: ").map(str::to_owned))
            .collect()
    };
    let mut want: Vec<String> = ["recording.yml", "alerts.yml"]
        .iter()
        .flat_map(|f| {
            names(&std::fs::read_to_string(deploy_path(&format!("prometheus/{f}"))).expect(f))
        })
        .collect();
    want.sort();
    let mut got = names(&rules);
    got.sort();
    assert_eq!(got, want, "rule groups in the PrometheusRule");
    if !tools::require("prometheusrule_equals_the_rule_files", &[&PROMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("prometheusrule-groups.yml");
    std::fs::write(&file, rules).expect("write");
    check(
        &PROMTOOL.bin(),
        &["check".into(), "rules".into(), file.display().to_string()],
    );
}

/// The recording rules read the per-type aggregates and the self-metrics,
/// never a per-actor family: per-actor series come and go (retention, and
/// promotion, which adds an actor's `_bucket` series while it holds), and an
/// actor's calls are already in the aggregates, so a sum over both, or over
/// per-actor buckets, would count an actor twice or drop it.
#[test]
fn recording_rules_read_no_per_actor_family() {
    let text = std::fs::read_to_string(deploy_path("prometheus/recording.yml")).expect("rules");
    let mut per_actor = Vec::new();
    for expr in text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("- record:"))
    {
        let mut rest = expr;
        while let Some(at) = rest.find("actor_") {
            let before = rest[..at].chars().next_back();
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + word.len().max(1)..];
            let part_of_a_name =
                before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let label = ["actor_name", "actor_key", "actor_id_gen"].contains(&word.as_str());
            let aggregate = word.starts_with("actor_type_") || word.starts_with("actor_metrics_");
            if !part_of_a_name && !label && !aggregate && !rest.starts_with(':') {
                per_actor.push(word);
            }
        }
    }
    assert!(
        per_actor.is_empty(),
        "recording.yml reads per-actor families: {per_actor:?}"
    );
}
