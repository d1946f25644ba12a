//! How `actor-host` ends: a shutdown bounded by `--shutdown-timeout` whatever
//! is in flight, a second signal that exits at once, and a clean exit when
//! whoever read stdout has gone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actor_e2e_tests::{Host, actor_host_bin, wait_for};

const T: Duration = Duration::from_secs(30);

/// Starts a `slow` call of `ms` on `key` on a thread; returns its answer there.
fn slow_call(host: &Host, key: &str, ms: u64) -> std::thread::JoinHandle<(u16, serde_json::Value)> {
    let app = host.app;
    let path = format!("/actors/counter/{key}/actions/slow");
    let body = format!(r#"{{"ms": {ms}}}"#);
    std::thread::spawn(move || {
        let r = match ureq::post(&format!("http://{app}{path}")).send_string(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("no answer to the slow call: {e}"),
        };
        let status = r.status();
        let text = r.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or_default())
    })
}

/// Starts a slow call on `key` and waits until it runs in the actor: a second
/// call queues behind it, so the action inbox holds exactly one message.
fn action_in_flight(
    host: &Host,
    key: &str,
    ms: u64,
) -> Vec<std::thread::JoinHandle<(u16, serde_json::Value)>> {
    let calls = vec![slow_call(host, key, ms), slow_call(host, key, ms)];
    wait_for(T, "a slow action running with one call queued", || {
        let depth = host.scrape().sum(
            "actor_inbox_depth",
            &[("actor_key", key), ("inbox", "action")],
        );
        (depth == 1.0).then_some(())
    });
    calls
}

/// Waits for the process to exit, failing past `bound`; returns how long it took.
fn exits_within(host: &mut Host, since: Instant, bound: Duration) -> Duration {
    wait_for(bound, "actor-host to exit", || {
        (!host.is_running()).then_some(())
    });
    since.elapsed()
}

#[test]
fn sigterm_with_an_action_in_flight_exits_within_the_shutdown_timeout() {
    let mut host = Host::start(&["--workload", "none", "--shutdown-timeout", "1s"]);
    assert_eq!(host.post("/actors/counter/s", "").0, 200);
    // A 60 s action (600 s is accepted), and one queued behind it.
    let calls = action_in_flight(&host, "s", 60_000);
    let t0 = Instant::now();
    host.send_sigterm();
    let took = exits_within(&mut host, t0, T);
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    for call in calls {
        // Each caller got an answer, not a reset connection.
        let (status, body) = call.join().unwrap();
        assert_eq!(status, 503, "{body}");
    }
    assert!(host.wait().success());
}

#[test]
fn a_second_signal_during_the_shutdown_exits_at_once() {
    let mut host = Host::start(&["--workload", "none", "--shutdown-timeout", "10m"]);
    assert_eq!(host.post("/actors/counter/s", "").0, 200);
    let _calls = action_in_flight(&host, "s", 600_000);
    host.send_sigterm();
    wait_for(T, "readyz 503 while shutting down", || {
        (host.readyz().0 == 503).then_some(())
    });
    assert!(host.is_running(), "the first signal waits for the action");
    let t0 = Instant::now();
    host.send_sigterm();
    let took = exits_within(&mut host, t0, T);
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert_eq!(host.wait().code(), Some(143), "128 + SIGTERM");
}

#[test]
fn a_clean_shutdown_exits_0_when_the_reader_of_stdout_has_gone() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(actor_host_bin())
        .args(["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(["--workload", "none", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn actor-host");
    // Read the listening line, then go away, as `| head -1` does.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening "), "{line}");
    drop(stdout);
    let metrics = line
        .split_whitespace()
        .find_map(|part| part.strip_prefix("metrics="))
        .expect("metrics address")
        .to_owned();
    wait_for(T, "actor-host ready", || {
        let ready = ureq::get(&format!("http://{metrics}/readyz")).call();
        ready.is_ok().then_some(())
    });
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
