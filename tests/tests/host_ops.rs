//! What an operator's tools see of `actor-host`: readiness that tells the truth
//! (not ready until the catalogue is loaded, not ready while draining) and logs
//! a pipeline can take (no colour codes off a terminal, JSON on request).

use std::process::{Command, Stdio};
use std::time::Duration;

use actor_e2e_tests::{Host, actor_host_bin, wait_for};

const T: Duration = Duration::from_secs(30);

#[test]
fn readyz_is_503_until_the_catalogue_is_loaded_and_while_draining() {
    let data = tempfile::tempdir().unwrap();
    let first = Host::start_in(data.path(), &["--workload", "none"]);
    assert_eq!(first.readyz().0, 200);
    // The sweeper runs and the runtime beats: healthy.
    assert_eq!(first.healthz(), (200, "ok\n".to_owned()));
    assert_eq!(first.post("/actors/counter/kept", "").0, 200);
    assert_eq!(
        first
            .post("/actors/counter/kept/actions/increment", r#"{"by": 41}"#)
            .0,
        200
    );

    // A second host on the same data dir serves its metrics port but cannot load
    // the catalogue while the first one holds it.
    let second = Host::spawn_in(
        data.path(),
        &["--workload", "none", "--data-dir-lock-timeout", "60s"],
    );
    let (status, body) = second.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("catalogue"), "{body}");
    assert!(first.terminate().success());
    wait_for(T, "the second host to load the catalogue", || {
        (second.readyz().0 == 200).then_some(())
    });
    let (status, body) = second.post("/actors/counter/kept/actions/get", "{}");
    assert_eq!((status, body["result"]["value"].as_i64()), (200, Some(41)));

    // Draining: a user task keeps the stop busy for the shutdown timeout (5 s),
    // and readiness says so while the process is still up.
    let mut draining = second;
    assert_eq!(
        draining
            .post(
                "/actors/counter/kept/actions/spawn_task",
                r#"{"kind": "keep_awake", "ms": 600000}"#
            )
            .0,
        200
    );
    draining.send_sigterm();
    let body = wait_for(T, "readyz 503 while draining", || {
        let (status, body) = draining.readyz();
        (status == 503).then_some(body)
    });
    assert!(body.contains("shutting down"), "{body}");
    assert!(draining.is_running(), "readyz answered by a live process");
    assert_eq!(draining.healthz().0, 200, "draining is not unhealthy");
}

/// Runs the host for a short while with `args`; returns (stdout, stderr).
fn run_briefly(args: &[&str]) -> (String, String) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(actor_host_bin())
        .args(["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(["--actors", "3", "--rate", "50", "--duration", "1500ms"])
        .args(["--progress-every", "200ms"])
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run actor-host");
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn logs_off_a_terminal_have_no_colour_codes_and_progress_is_a_log_event() {
    let (stdout, stderr) = run_briefly(&[]);
    assert!(!stderr.contains('\u{1b}'), "ANSI codes in {stderr:?}");
    assert!(!stdout.contains('\u{1b}'), "ANSI codes in {stdout:?}");
    assert!(
        stdout.lines().any(|l| l.starts_with("listening app=")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("progress"),
        "progress is a log event: {stdout}"
    );
    let progress = stderr
        .lines()
        .find(|l| l.contains("progress") && l.contains("live_actors="))
        .unwrap_or_else(|| panic!("no progress event in {stderr}"));
    assert!(progress.contains("INFO"), "{progress}");
}

#[test]
fn log_format_json_gives_one_json_object_per_line() {
    let (_, stderr) = run_briefly(&["--log-format", "json"]);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let progress = events
        .iter()
        .find(|e| e["fields"]["message"] == "progress")
        .unwrap_or_else(|| panic!("no progress event in {stderr}"));
    assert!(progress["fields"]["live_actors"].is_u64(), "{progress}");
    assert_eq!(progress["level"], "INFO");
    // Rates are numbers and durations read as durations, not Rust's Debug text.
    for rate in ["actions_per_s", "commits_per_s"] {
        assert!(progress["fields"][rate].is_number(), "{rate}: {progress}");
    }
    let loading = events
        .iter()
        .find(|e| e["fields"]["message"] == "loading the catalogue")
        .unwrap_or_else(|| panic!("no loading event in {stderr}"));
    assert_eq!(loading["fields"]["idle_timeout"], "5m", "{loading}");
}

#[test]
fn with_log_format_json_the_fatal_error_is_json_too() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(actor_host_bin())
        .args(["--app-addr", &addr, "--metrics-addr", "127.0.0.1:0"])
        .args(["--workload", "none", "--log-format", "json", "--data-dir"])
        .arg(data.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run actor-host");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let fatal = events.last().expect("an error event");
    assert_eq!(fatal["level"], "ERROR", "{fatal}");
    let message = fatal["fields"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("actor-host: error:") && message.contains(&addr),
        "{fatal}"
    );
}
