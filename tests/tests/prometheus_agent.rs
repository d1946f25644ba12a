//! The Prometheus-only way past one server: Prometheus in agent mode scrapes a
//! real `actor-host` and remote-writes into a Prometheus with the remote-write
//! receiver on, which evaluates the shipped rules. Both run the shipped
//! configs (deploy/prometheus/agent.yml, receiver.yml) with addresses and
//! intervals shortened.

use std::collections::BTreeMap;
use std::time::Duration;

use actor_e2e_tests::{Host, Prometheus, Role, poll, prometheus_available};
use actor_e2e_tests::{deploy_file_with, deploy_path};

const T: Duration = Duration::from_secs(60);

#[test]
fn agent_mode_remote_writes_exact_counts_into_a_receiver() {
    if !prometheus_available("agent_mode_remote_writes_exact_counts_into_a_receiver") {
        return;
    }
    let host = Host::start(&["--workload", "none", "--envoy-key", "agent-test"]);
    let rules = |f: &str| {
        deploy_path(&format!("prometheus/{f}"))
            .display()
            .to_string()
    };
    let receiver = Prometheus::start_with(
        &deploy_file_with(
            "prometheus/receiver.yml",
            &[
                ("evaluation_interval: 15s", "evaluation_interval: 1s"),
                ("- alerts.yml", &format!("- {}", rules("alerts.yml"))),
                ("- recording.yml", &format!("- {}", rules("recording.yml"))),
            ],
        ),
        Role::Receiver,
    );
    let _agent = Prometheus::start_with(
        &deploy_file_with(
            "prometheus/agent.yml",
            &[
                ("scrape_interval: 15s", "scrape_interval: 1s"),
                ("scrape_timeout: 10s", "scrape_timeout: 900ms"),
                ("['localhost:9091']", &format!("['{}']", host.metrics)),
                (
                    "http://localhost:9090/api/v1/write",
                    &format!("http://{}/api/v1/write", receiver.addr),
                ),
            ],
        ),
        Role::Agent,
    );

    let mut sent: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, increments) in [("agent-a", 5), ("agent-b", 3)] {
        assert_eq!(host.post(&format!("/actors/counter/{key}"), "").0, 200);
        for _ in 0..increments {
            assert_eq!(
                host.post(&format!("/actors/counter/{key}/actions/increment"), "{}")
                    .0,
                200
            );
            *sent.entry("increment").or_default() += 1.0;
        }
    }
    assert!(host.post("/actors/counter/agent-a/actions/fail", "{}").0 >= 400);
    *sent.entry("fail").or_default() += 1.0;

    let counter = "actor_name=\"counter\",job=\"actor-host\"";
    poll(T, "exact counts in the receiver", || {
        let calls = receiver.api.values_by(
            &format!("sum by (action) (actor_type_action_calls_total{{{counter}}} > 0)"),
            "action",
        );
        let errors = receiver
            .api
            .value(&format!("sum(actor_type_action_errors_total{{{counter}}})"));
        let per_actor = receiver
            .api
            .value("actor_action_calls_total{actor_key=\"agent-a\",envoy_key=\"agent-test\"}");
        let want: BTreeMap<String, f64> = sent.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if calls == want && errors == Some(1.0) && per_actor == Some(6.0) {
            Ok(())
        } else {
            Err(format!(
                "calls {calls:?} (sent {want:?}), errors {errors:?} (sent 1), agent-a {per_actor:?} (sent 6)"
            ))
        }
    });
    // The receiver evaluates the recording rules on what the agent wrote: one
    // series per type, exact, and `up` arrived too (for ActorHostDown).
    poll(T, "recording rules on the receiver", || {
        let active = receiver.query("actor_type:active:sum");
        let one = active.len() == 1 && active[0]["metric"]["instance"].is_null();
        let up = receiver.value(&format!(
            "up{{job=\"actor-host\",instance=\"{}\"}}",
            host.metrics
        ));
        if one && active[0]["value"][1] == "2" && up == Some(1.0) {
            Ok(())
        } else {
            Err(format!("actor_type:active:sum {active:?}, up {up:?}"))
        }
    });
}
