//! `actor-host` end to end through its app API on ephemeral ports, with the exact
//! metric values read back from a parsed scrape of its metrics port after each step.

use std::process::Command;
use std::time::Duration;

use actor_e2e_tests::{Host, actor_host_bin, wait_for};
use actor_metrics::scrape::Scrape;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// Sum of `name` over series with `actor_id_gen` (and any `extra` labels).
fn per(s: &Scrape, name: &str, id_gen: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("actor_id_gen", id_gen)];
    labels.extend_from_slice(extra);
    s.sum(name, &labels)
}

fn agg(s: &Scrape, name: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("actor_name", "counter")];
    labels.extend_from_slice(extra);
    s.sum(name, &labels)
}

fn id_gen(created: &serde_json::Value) -> String {
    format!(
        "{}:{}",
        created["actor_id"].as_str().expect("actor_id"),
        created["generation"].as_u64().expect("generation")
    )
}

fn call(host: &Host, key: &str, action: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    host.post(
        &format!("/actors/counter/{key}/actions/{action}"),
        &body.to_string(),
    )
}

#[test]
fn every_lifecycle_step_shows_exact_values_in_the_scrape() {
    let host = Host::start(&["--workload", "none"]);

    // Create.
    let (status, created) = host.post("/actors/counter/k1", "");
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["generation"], 1);
    let g1 = id_gen(&created);
    let s = host.scrape();
    assert_eq!(per(&s, "actor_active", &g1, &[]), 1.0);
    assert_eq!(agg(&s, "actor_type_active", &[]), 1.0);
    for phase in ["open_db", "load_state", "on_start"] {
        assert_eq!(
            per(
                &s,
                "actor_startup_duration_seconds_count",
                &g1,
                &[("phase", phase)]
            ),
            1.0,
            "{phase}"
        );
    }
    let commits0 = per(&s, "actor_sqlite_commits_total", &g1, &[]);

    // Three increments: three actions, three transactions, three updated rows.
    for expect in 1..=3 {
        let (status, body) = call(&host, "k1", "increment", json!({}));
        assert_eq!(
            (status, body["result"]["value"].as_i64()),
            (200, Some(expect))
        );
    }
    let s = host.scrape();
    assert_eq!(per(&s, "actor_action_calls_total", &g1, &[]), 3.0);
    assert_eq!(per(&s, "actor_action_errors_total", &g1, &[]), 0.0);
    assert_eq!(
        per(&s, "actor_sqlite_commits_total", &g1, &[]),
        commits0 + 3.0
    );
    assert_eq!(
        per(
            &s,
            "actor_sqlite_rows_changed_total",
            &g1,
            &[("op", "update")]
        ),
        3.0
    );
    assert_eq!(
        per(
            &s,
            "actor_state_mutations_total",
            &g1,
            &[("reason", "action")]
        ),
        3.0
    );
    assert_eq!(
        agg(
            &s,
            "actor_type_action_calls_total",
            &[("action", "increment")]
        ),
        3.0
    );

    // An error, and a slow call.
    assert_eq!(call(&host, "k1", "fail", json!({})).0, 422);
    assert_eq!(call(&host, "k1", "slow", json!({"ms": 50})).0, 200);
    let s = host.scrape();
    assert_eq!(per(&s, "actor_action_calls_total", &g1, &[]), 5.0);
    assert_eq!(per(&s, "actor_action_errors_total", &g1, &[]), 1.0);
    assert_eq!(
        per(&s, "actor_action_duration_seconds_count", &g1, &[]),
        5.0
    );
    assert!(per(&s, "actor_action_duration_seconds_sum", &g1, &[]) >= 0.05);
    assert_eq!(
        agg(&s, "actor_type_action_errors_total", &[("action", "fail")]),
        1.0
    );

    // Connections and the queue.
    assert_eq!(call(&host, "k1", "connect", json!({})).0, 200);
    for m in 0..2 {
        assert_eq!(call(&host, "k1", "enqueue", json!({"message": m})).0, 200);
    }
    let (_, got) = call(&host, "k1", "dequeue", json!({}));
    assert_eq!(got["result"]["message"], 0);
    let s = host.scrape();
    assert_eq!(per(&s, "actor_connections_active", &g1, &[]), 1.0);
    assert_eq!(per(&s, "actor_connections_total", &g1, &[]), 1.0);
    assert_eq!(per(&s, "actor_queue_depth", &g1, &[]), 1.0);
    assert_eq!(per(&s, "actor_queue_messages_sent_total", &g1, &[]), 2.0);
    assert_eq!(
        per(&s, "actor_queue_messages_received_total", &g1, &[]),
        1.0
    );
    assert_eq!(agg(&s, "actor_type_connections_active", &[]), 1.0);

    // A user task: active while it runs, then one observed duration.
    assert_eq!(
        call(
            &host,
            "k1",
            "spawn_task",
            json!({"kind": "background", "ms": 1500})
        )
        .0,
        200
    );
    let bg = [("kind", "background")];
    assert_eq!(
        per(&host.scrape(), "actor_user_tasks_active", &g1, &bg),
        1.0
    );
    wait_for(T, "the user task to finish", || {
        let s = host.scrape();
        (per(&s, "actor_user_tasks_active", &g1, &bg) == 0.0
            && per(&s, "actor_user_task_duration_seconds_count", &g1, &bg) == 1.0)
            .then_some(())
    });

    // Sleep: inactive, gauges 0, counters kept, no longer listed.
    assert_eq!(host.post("/actors/counter/k1/sleep", "").0, 200);
    let s = host.scrape();
    assert_eq!(per(&s, "actor_active", &g1, &[]), 0.0);
    assert_eq!(per(&s, "actor_connections_active", &g1, &[]), 0.0);
    assert_eq!(per(&s, "actor_queue_depth", &g1, &[]), 0.0);
    assert_eq!(per(&s, "actor_action_calls_total", &g1, &[]), 10.0);
    assert_eq!(
        per(
            &s,
            "actor_shutdown_wait_seconds_count",
            &g1,
            &[("reason", "sleep")]
        ),
        1.0
    );
    assert_eq!(agg(&s, "actor_type_active", &[]), 0.0);
    assert_eq!(agg(&s, "actor_type_connections_active", &[]), 0.0);
    assert_eq!(host.get("/actors").1["actors"], json!([]));

    // Wake: a new generation and label set; state kept on disk.
    let (status, woken) = host.post("/actors/counter/k1", "");
    assert_eq!(status, 200);
    assert_eq!(woken["generation"], 2);
    assert_eq!(woken["actor_id"], created["actor_id"]);
    let g2 = id_gen(&woken);
    let (_, body) = call(&host, "k1", "increment", json!({}));
    assert_eq!(body["result"]["value"], 4, "state survived sleep");
    let s = host.scrape();
    assert_eq!(per(&s, "actor_active", &g2, &[]), 1.0);
    assert_eq!(per(&s, "actor_action_calls_total", &g2, &[]), 1.0);
    assert_eq!(
        per(&s, "actor_active", &g1, &[]),
        0.0,
        "old generation retained"
    );
    assert_eq!(per(&s, "actor_action_calls_total", &g1, &[]), 10.0);
    assert_eq!(agg(&s, "actor_type_action_calls_total", &[]), 11.0);
    assert_eq!(host.get("/actors").1["actors"][0]["generation"], 2);

    // Destroy: stops, forgets the id; a new create starts from zero with a new id.
    assert_eq!(host.delete("/actors/counter/k1").0, 200);
    let s = host.scrape();
    assert_eq!(per(&s, "actor_active", &g2, &[]), 0.0);
    assert_eq!(
        per(
            &s,
            "actor_shutdown_wait_seconds_count",
            &g2,
            &[("reason", "destroy")]
        ),
        1.0
    );
    assert_eq!(agg(&s, "actor_type_active", &[]), 0.0);
    assert_eq!(host.delete("/actors/counter/k1").0, 404);
    let (_, again) = host.post("/actors/counter/k1", "");
    assert_ne!(again["actor_id"], created["actor_id"]);
    assert_eq!(call(&host, "k1", "get", json!({})).1["result"]["value"], 0);
}

#[test]
fn a_panicking_action_stops_the_actor_and_leaves_no_gauge_up() {
    let host = Host::start(&["--workload", "none", "--shutdown-timeout", "500ms"]);
    let (_, created) = host.post("/actors/counter/p", "");
    let g1 = id_gen(&created);
    assert_eq!(call(&host, "p", "connect", json!({})).0, 200);
    assert_eq!(call(&host, "p", "enqueue", json!({"message": "x"})).0, 200);
    assert_eq!(
        call(
            &host,
            "p",
            "spawn_task",
            json!({"kind": "keep_awake", "ms": 60000})
        )
        .0,
        200
    );

    let (status, body) = call(&host, "p", "panic", json!({}));
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("panicked"),
        "{body}"
    );

    // The caller got its answer at once; the stop (draining the task) follows.
    let s = wait_for(T, "the panicked actor's stop", || {
        let s = host.scrape();
        (per(&s, "actor_active", &g1, &[]) == 0.0).then_some(s)
    });
    for gauge in ["actor_connections_active", "actor_queue_depth"] {
        assert_eq!(per(&s, gauge, &g1, &[]), 0.0, "{gauge}");
    }
    assert_eq!(
        per(
            &s,
            "actor_user_tasks_active",
            &g1,
            &[("kind", "keep_awake")]
        ),
        0.0
    );
    assert_eq!(per(&s, "actor_action_errors_total", &g1, &[]), 1.0);
    assert_eq!(
        per(
            &s,
            "actor_shutdown_wait_seconds_count",
            &g1,
            &[("reason", "panic")]
        ),
        1.0
    );
    assert_eq!(agg(&s, "actor_type_active", &[]), 0.0);
    assert_eq!(agg(&s, "actor_type_connections_active", &[]), 0.0);
    assert_eq!(agg(&s, "actor_type_user_tasks_active", &[]), 0.0);

    // The next call wakes a new generation; the host kept serving.
    let (status, body) = call(&host, "p", "increment", json!({}));
    assert_eq!((status, body["result"]["value"].as_i64()), (200, Some(1)));
    assert_eq!(host.get("/actors").1["actors"][0]["generation"], 2);
}

#[test]
fn a_user_task_that_outlives_the_shutdown_timeout_is_counted_with_its_reason() {
    let host = Host::start(&["--workload", "none", "--shutdown-timeout", "300ms"]);
    let (_, created) = host.post("/actors/counter/t", "");
    let g1 = id_gen(&created);
    assert_eq!(
        call(
            &host,
            "t",
            "spawn_task",
            json!({"kind": "scheduled", "ms": 60000})
        )
        .0,
        200
    );
    assert_eq!(host.post("/actors/counter/t/sleep", "").0, 200);
    let s = host.scrape();
    assert_eq!(
        per(
            &s,
            "actor_shutdown_timeouts_total",
            &g1,
            &[("reason", "sleep")]
        ),
        1.0
    );
    assert!(
        per(
            &s,
            "actor_shutdown_wait_seconds_sum",
            &g1,
            &[("reason", "sleep")]
        ) >= 0.3
    );
    assert_eq!(
        per(&s, "actor_user_tasks_active", &g1, &[("kind", "scheduled")]),
        0.0
    );
    assert_eq!(
        agg(
            &s,
            "actor_type_shutdown_timeouts_total",
            &[("reason", "sleep")]
        ),
        1.0
    );
}

#[test]
fn bad_requests_get_clear_errors_and_the_host_keeps_serving() {
    let host = Host::start(&["--workload", "none"]);
    let err = |r: (u16, serde_json::Value)| -> (u16, String) {
        (r.0, r.1["error"].as_str().unwrap_or_default().to_owned())
    };

    let (status, msg) = err(host.post("/actors/nope/k", ""));
    assert_eq!(status, 404);
    assert!(msg.contains("unknown actor type"), "{msg}");
    assert_eq!(host.post("/actors/counter/k", "").0, 200);
    let (status, msg) = err(call(&host, "k", "nope", json!({})));
    assert_eq!(status, 400);
    assert!(msg.contains("no action"), "{msg}");
    let (status, msg) = err(host.post("/actors/counter/k/actions/increment", "{not json"));
    assert_eq!(status, 400);
    assert!(msg.contains("invalid JSON"), "{msg}");
    let (status, msg) = err(call(&host, "k", "increment", json!({"by": "two"})));
    assert_eq!(status, 400, "{msg}");
    assert_eq!(err(call(&host, "missing", "get", json!({}))).0, 404);
    assert_eq!(err(host.get("/nope")).0, 404);
    assert_eq!(
        err(host.get("/metrics")).0,
        404,
        "metrics only on the metrics port"
    );
    assert_eq!(err(host.delete("/actors")).0, 405);

    // Keys with '/', '"', '\' and a newline, percent-encoded, are one key each.
    let (status, created) = host.post("/actors/counter/a%2Fb%22c%5Cd%0Ae", "");
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["key"], "a/b\"c\\d\ne");
    assert_eq!(
        call(&host, "a%2Fb%22c%5Cd%0Ae", "increment", json!({})).0,
        200
    );
    let s = host.scrape();
    assert!(s.has_label_value("actor_key", "a/b\"c\\d\ne"));
    // An unknown action never became a label value.
    assert!(!s.has_label_value("action", "nope"));

    // A 64 KiB key is refused with a 4xx.
    let long = "x".repeat(64 * 1024);
    let status = host.post(&format!("/actors/counter/{long}"), "").0;
    assert!((400..500).contains(&status), "64 KiB key: {status}");

    // Still serving.
    let (status, list) = host.get("/actors");
    assert_eq!(status, 200);
    assert_eq!(list["actors"].as_array().map(Vec::len), Some(2));
    assert_eq!(call(&host, "k", "increment", json!({})).0, 200);
}

#[test]
fn a_corrupt_database_fails_that_actor_only() {
    let host = Host::start(&["--workload", "none"]);
    // The first actor of a fresh host gets id 1: plant a broken file where its database goes.
    let dir = host.data_dir().join("counter");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1.db"), vec![0x5a; 8192]).unwrap();

    let (status, body) = host.post("/actors/counter/broken", "");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("could not start"),
        "{body}"
    );
    let s = host.scrape();
    assert_eq!(s.sum("actor_active", &[("actor_key", "broken")]), 0.0);
    assert_eq!(s.sum("actor_type_active", &[]), 0.0);
    assert_eq!(host.post("/actors/counter/fine", "").0, 200);
    assert_eq!(call(&host, "fine", "increment", json!({})).0, 200);
}

#[test]
fn sigterm_during_the_demo_exits_cleanly() {
    let host = Host::start(&["--workload", "demo", "--actors", "5"]);
    wait_for(T, "some demo traffic", || {
        (host.scrape().sum("actor_type_action_calls_total", &[]) > 20.0).then_some(())
    });
    let status = host.terminate();
    assert!(status.success(), "exit status {status:?}");
}

/// The first line of `stderr` that starts with `prefix`.
fn line_with<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}: {stderr}"))
}

/// Starts `actor-host` expecting it to fail; returns (exit code, stderr).
fn start_fails(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(actor_host_bin())
        .args(["--workload", "none", "--duration", "30s"])
        .args(args)
        .output()
        .expect("run actor-host");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn startup_errors_print_one_line_and_exit_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = start_fails(&["--metrics-addr", &addr, "--app-addr", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    let line = line_with(&stderr, "actor-host: error:");
    assert!(line.contains(&addr), "{line}");

    let (code, stderr) = start_fails(&["--app-addr", &addr, "--metrics-addr", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");

    let file = tempfile::NamedTempFile::new().unwrap();
    let (code, stderr) = start_fails(&[
        "--app-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
        "--data-dir",
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not writable"), "{stderr}");
}

#[test]
fn a_counter_increment_past_i64_max_is_refused_with_the_limit_and_changes_nothing() {
    let host = Host::start(&["--workload", "none"]);
    let max = i64::MAX;
    assert_eq!(host.post("/actors/counter/big", "").0, 200);
    let (status, body) = call(&host, "big", "increment", json!({ "by": max }));
    assert_eq!((status, body["result"]["value"].as_i64()), (200, Some(max)));
    for _ in 0..2 {
        let (status, body) = call(&host, "big", "increment", json!({ "by": 1 }));
        assert!((400..500).contains(&status), "{status} {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(msg.contains(&max.to_string()), "{msg}");
    }
    // The value is unchanged and the actor keeps working.
    let (status, body) = call(&host, "big", "get", json!({}));
    assert_eq!((status, body["result"]["value"].as_i64()), (200, Some(max)));
    assert_eq!(call(&host, "big", "increment", json!({ "by": 0 })).0, 200);
    let (status, body) = call(&host, "big", "increment", json!({ "by": max as u64 + 1 }));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn flags_that_would_panic_or_churn_are_refused_with_the_flag_and_its_minimum() {
    let ports = ["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"];
    for (flag, value, minimum) in [
        ("--idle-timeout", "0s", "100ms"),
        ("--idle-timeout", "10ms", "100ms"),
        ("--sweep-interval", "0s", "1ms"),
    ] {
        let mut args = ports.to_vec();
        args.extend([flag, value]);
        let (code, stderr) = start_fails(&args);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        // A usage error, as clap words it.
        let line = line_with(&stderr, "error:");
        assert!(line.contains(flag) && line.contains(minimum), "{line}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (_, stderr) = start_fails(&[&ports[..], &["--idle-timeout", "0s"]].concat());
    assert!(
        stderr.contains("never"),
        "says how to turn it off: {stderr}"
    );

    // `--progress-every 0s` turns progress off (it used to panic the task).
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(actor_host_bin())
        .args(ports)
        .args(["--workload", "none", "--duration", "300ms"])
        .args(["--progress-every", "0s", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run actor-host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("progress"), "{stderr}");
}

#[test]
fn an_action_body_that_is_not_a_json_object_is_refused() {
    let host = Host::start(&["--workload", "none"]);
    assert_eq!(host.post("/actors/counter/k", "").0, 200);
    for body in ["[1]", "\"x\"", "null", "7", "[{\"by\": 5}]"] {
        let (status, reply) = host.post("/actors/counter/k/actions/increment", body);
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(
            reply["error"], "the request body must be a JSON object",
            "{body}"
        );
    }
    // Nothing ran; an empty body is still `{}`.
    assert_eq!(host.post("/actors/counter/k/actions/increment", "").0, 200);
    let (_, got) = call(&host, "k", "get", json!({}));
    assert_eq!(got["result"]["value"], 1);
}

#[test]
fn the_metrics_token_can_come_from_a_file_and_a_bad_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let path = file.to_str().unwrap();
    let host = Host::start(&["--workload", "none", "--metrics-token-file", path]);
    let url = format!("http://{}/metrics", host.metrics);
    match ureq::get(&url).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("no token: {:?}", other.map(|r| r.status())),
    }
    let ok = ureq::get(&url)
        .set("Authorization", "Bearer s3cret")
        .call()
        .expect("the token from the file, without its newline");
    assert_eq!(ok.status(), 200);

    let ports = ["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"];
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let missing = dir.path().join("missing");
    for (file, says) in [(&empty, "is empty"), (&missing, "cannot read")] {
        let file = file.to_str().unwrap();
        let (code, stderr) = start_fails(&[&ports[..], &["--metrics-token-file", file]].concat());
        assert_eq!(code, Some(2), "{stderr}");
        let line = line_with(&stderr, "actor-host: error:");
        assert!(line.contains(says) && line.contains(file), "{line}");
    }
}

/// The host's own figures are in its default scrape (7 or 8 series, none per
/// actor): its resident memory as the kernel counts it, its descriptors and
/// threads, its start time. A selecting scrape does not carry them.
#[test]
fn the_default_scrape_carries_the_host_process_figures() {
    let host = Host::start(&["--workload", "none"]);
    let s = host.scrape();
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.pid())).unwrap();
    let vm_rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .expect("VmRSS in /proc/<pid>/status")
        * 1024.0;
    let rss = s
        .get("process_resident_memory_bytes", &[])
        .expect("process_resident_memory_bytes");
    assert!(
        rss > 0.5 * vm_rss && rss < 2.0 * vm_rss,
        "process_resident_memory_bytes {rss} against VmRSS {vm_rss}"
    );
    let open = s.get("process_open_fds", &[]).expect("process_open_fds");
    let max = s.get("process_max_fds", &[]).expect("process_max_fds");
    assert!(open >= 3.0 && open < max, "{open} of {max}");
    assert!(s.get("process_threads", &[]).expect("process_threads") >= 2.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = s
        .get("process_start_time_seconds", &[])
        .expect("process_start_time_seconds");
    assert!(
        (now - 600.0..=now + 5.0).contains(&started),
        "started at {started}, now {now}"
    );
    assert!(s.get("process_cpu_seconds_total", &[]).is_some());
    let selected = Scrape::parse(&host.scrape_text_with("actor_key=nobody")).unwrap();
    assert!(selected.get("process_resident_memory_bytes", &[]).is_none());
}
