//! What a client can make `actor-host` hold, measured on the binary with its
//! default flags: waiting calls with large bodies, queued messages, user
//! tasks, a mixed flood against the host-wide budget; and that a call to an
//! unknown key never takes a live actor's place. Each test failed on the build
//! before these bounds (`ACTOR_HOST=old-binary cargo test --test host_bounds`).
//!
//! Memory is read from `/proc/{pid}/status`: `VmHWM`, the peak resident set,
//! so a bound holds at the worst moment, not only at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use actor_e2e_tests::{Host, wait_for};

const MB: u64 = 1_000_000;

/// A `kB` field of `/proc/{pid}/status`, in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kb * 1024
}

/// The host's resident set now.
fn rss(host: &Host) -> u64 {
    proc_status(host.pid(), "VmRSS:")
}

/// The host's peak resident set so far.
fn peak_rss(host: &Host) -> u64 {
    proc_status(host.pid(), "VmHWM:")
}

/// `{"pad":[0,0,…]}` of exactly `bytes` bytes: 2 bytes of text per element, a
/// 32-byte value each once parsed.
fn padded_body(field: &str, bytes: usize) -> String {
    let head = format!("{{\"{field}\":[");
    let elements = (bytes - head.len() - 2).div_ceil(2);
    let mut body = head;
    body.push_str(&"0,".repeat(elements - 1));
    body.push_str("0]}");
    assert!(body.len() <= bytes, "{} > {bytes}", body.len());
    body
}

fn action(key: &str, action: &str) -> String {
    format!("/actors/counter/{key}/actions/{action}")
}

/// Finding 1: one actor busy in `slow`, then 20 calls with 1 MiB `[0,0,…]`
/// bodies. Before, each waited as a parsed value (~17 MB): 345 MB. Now each
/// waits as its text and is charged its parsed size against the actor's
/// inbox bytes; those past it are refused with 503 naming the flag, and
/// every accepted call runs once the actor is free.
#[test]
fn waiting_calls_with_large_bodies_add_at_most_64_mb() {
    let host = Host::start(&["--workload", "none"]);
    assert_eq!(host.post("/actors/counter/busy", "").0, 200);
    let before = rss(&host);
    let post = |path: String, body: String| {
        let app = host.app;
        thread::spawn(
            move || match ureq::post(&format!("http://{app}{path}")).send_string(&body) {
                Ok(r) => (r.status(), String::new()),
                Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
                Err(e) => panic!("request failed: {e}"),
            },
        )
    };
    let waiting = || {
        host.scrape_text_with("actor_key=busy")
            .lines()
            .find(|l| l.starts_with("actor_inbox_depth{") && l.contains("inbox=\"action\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map_or(0, |v| v as usize)
    };
    let slow = post(action("busy", "slow"), r#"{"ms": 4000}"#.to_owned());
    // A small call seen waiting proves the actor is busy in `slow`; one that
    // ran first (before `slow` arrived) is sent again.
    let marker = loop {
        let marker = post(action("busy", "get"), String::new());
        let queued = wait_for(
            Duration::from_secs(10),
            "a call waiting behind slow",
            || {
                if waiting() == 1 {
                    Some(true)
                } else {
                    marker.is_finished().then_some(false)
                }
            },
        );
        if queued {
            break marker;
        }
        assert_eq!(marker.join().unwrap().0, 200);
    };
    let body = padded_body("pad", 1 << 20);
    let calls: Vec<_> = (0..20)
        .map(|_| post(action("busy", "get"), body.clone()))
        .collect();
    // Every large call is either waiting in the inbox or already refused.
    wait_for(
        Duration::from_secs(30),
        "20 calls waiting or refused",
        || {
            let refused = calls.iter().filter(|c| c.is_finished()).count();
            (waiting() - 1 + refused == 20).then_some(())
        },
    );
    let grew = peak_rss(&host).saturating_sub(before);
    eprintln!(
        "measured: 20 waiting 1 MiB calls: peak +{:.1} MB",
        grew as f64 / 1e6
    );
    assert!(
        grew <= 64 * MB,
        "20 waiting 1 MiB calls grew the host by {} MB (bound 64)",
        grew / MB
    );
    assert_eq!(slow.join().unwrap().0, 200);
    assert_eq!(marker.join().unwrap().0, 200);
    let answers: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(ok >= 1, "the inbox bound admits at least one such call");
    for (status, text) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 503, "{text}");
        assert!(text.contains("--inbox-max-bytes"), "{text}");
    }
}

/// Finding 2: ten actors each queue one message of 1 MiB of `[0,0,…]`.
/// Before, each was kept parsed (17–20 MB): 215 MB. Now a message is kept as
/// its JSON text; each comes back whole.
#[test]
fn ten_actors_holding_a_1_mib_message_add_at_most_40_mb() {
    let host = Host::start(&["--workload", "none"]);
    let keys: Vec<String> = (0..10).map(|i| format!("q{i}")).collect();
    for key in &keys {
        assert_eq!(host.post(&format!("/actors/counter/{key}"), "").0, 200);
    }
    let before = rss(&host);
    // The message's own text fits the queue's 1 MiB; the body wraps it.
    let body = padded_body("message", (1 << 20) - 64);
    let message: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"].clone();
    for key in &keys {
        let (status, reply) = host.post(&action(key, "enqueue"), &body);
        assert_eq!(status, 200, "{reply}");
    }
    let grew = peak_rss(&host).saturating_sub(before);
    eprintln!(
        "measured: 10 queued 1 MiB messages: peak +{:.1} MB",
        grew as f64 / 1e6
    );
    assert!(
        grew <= 40 * MB,
        "10 queued 1 MiB messages grew the host by {} MB (bound 40)",
        grew / MB
    );
    for key in &keys {
        let (status, reply) = host.post(&action(key, "dequeue"), "");
        assert_eq!(status, 200);
        assert!(
            reply["result"]["message"] == message,
            "{key}: message changed"
        );
    }
}

/// Finding 3: a 10 s `spawn_task` flood on one actor. Before, ~70,000 tasks
/// of ~850 bytes each, living up to 10 minutes. Now exactly
/// `--max-tasks-per-actor` (1,024) run; the rest are 429 naming the flag.
#[test]
fn a_spawn_task_flood_on_one_actor_adds_at_most_16_mb() {
    let host = Host::start(&["--workload", "none", "--shutdown-timeout", "100ms"]);
    assert_eq!(host.post("/actors/counter/tasks", "").0, 200);
    let before = rss(&host);
    let until = Instant::now() + Duration::from_secs(10);
    let start = Arc::new(Barrier::new(4));
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let (app, path, start) = (host.app, action("tasks", "spawn_task"), start.clone());
            thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let url = format!("http://{app}{path}");
                let (mut ok, mut refused, mut last) = (0usize, 0usize, String::new());
                start.wait();
                while Instant::now() < until {
                    match agent.post(&url).send_string(r#"{"ms": 600000}"#) {
                        Ok(_) => ok += 1,
                        Err(ureq::Error::Status(429, r)) => {
                            refused += 1;
                            last = r.into_string().unwrap_or_default();
                        }
                        Err(e) => panic!("spawn_task: {e}"),
                    }
                }
                (ok, refused, last)
            })
        })
        .collect();
    let results: Vec<_> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let ok: usize = results.iter().map(|r| r.0).sum();
    let refused: usize = results.iter().map(|r| r.1).sum();
    assert_eq!(ok, 1024, "tasks accepted ({refused} refused)");
    assert!(refused > 0);
    let text = &results.iter().find(|r| r.1 > 0).unwrap().2;
    assert!(text.contains("--max-tasks-per-actor"), "{text}");
    let grew = peak_rss(&host).saturating_sub(before);
    eprintln!(
        "measured: spawn_task flood: {ok} accepted, {refused} refused, peak +{:.1} MB",
        grew as f64 / 1e6
    );
    assert!(
        grew <= 16 * MB,
        "a 10 s spawn_task flood grew the host by {} MB (bound 16)",
        grew / MB
    );
}

/// The host-wide budget: queues on 300 actors, waiting large calls and a task
/// flood at once. Past `--max-client-bytes` (256 MiB by default) new items
/// are refused with 503; the host's peak stays under what `--help`
/// documents: its base, about 64 KB per live actor and the budget.
#[test]
fn a_mixed_flood_stays_under_the_documented_host_budget() {
    let host = Host::start(&["--workload", "none", "--shutdown-timeout", "100ms"]);
    let base = rss(&host);
    let actors = 300;
    let message = format!("{{\"message\":\"{}\"}}", "x".repeat((1 << 20) - 64));
    let refused_host = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (app, message, refused_host) = (host.app, message.clone(), refused_host.clone());
            thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                for i in (w..actors).step_by(4) {
                    let create = format!("http://{app}/actors/counter/m{i}");
                    agent.post(&create).call().expect("create");
                    let url = format!("http://{app}{}", action(&format!("m{i}"), "enqueue"));
                    match agent.post(&url).send_string(&message) {
                        Ok(_) => {}
                        Err(ureq::Error::Status(503, r)) => {
                            let text = r.into_string().unwrap_or_default();
                            assert!(text.contains("--max-client-bytes"), "{text}");
                            refused_host.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("enqueue: {e}"),
                    }
                    let spawn = format!("http://{app}{}", action(&format!("m{i}"), "spawn_task"));
                    for _ in 0..20 {
                        match agent.post(&spawn).send_string(r#"{"ms": 600000}"#) {
                            Ok(_) | Err(ureq::Error::Status(429 | 503, _)) => {}
                            Err(e) => panic!("spawn_task: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        refused_host.load(Ordering::SeqCst) > 0,
        "300 MiB of queued messages must pass the 256 MiB budget"
    );
    let bound = base + actors as u64 * 64 * 1024 + 256 * 1024 * 1024 + 16 * MB;
    let peak = peak_rss(&host);
    eprintln!(
        "measured: mixed flood: base {:.1} MB, peak {:.1} MB, bound {:.1} MB, {} enqueues refused",
        base as f64 / 1e6,
        peak as f64 / 1e6,
        bound as f64 / 1e6,
        refused_host.load(Ordering::SeqCst)
    );
    assert!(
        peak <= bound,
        "peak {} MB over the documented bound {} MB",
        peak / MB,
        bound / MB
    );
}

/// Finding 7: with 10 live actors of 10 allowed, calls to unknown keys are
/// 404 and put no live actor to sleep.
#[test]
fn a_call_to_an_unknown_key_evicts_no_live_actor() {
    let host = Host::start(&["--workload", "none", "--max-live-actors", "10"]);
    for i in 0..10 {
        assert_eq!(host.post(&format!("/actors/counter/live{i}"), "").0, 200);
    }
    for i in 0..10 {
        let (status, body) = host.post(&action(&format!("nobody{i}"), "get"), "");
        assert_eq!(status, 404, "{body}");
    }
    let (_, list) = host.get("/actors");
    let live = list["actors"].as_array().map_or(0, Vec::len);
    assert_eq!(
        live, 10,
        "live actors after 10 calls to unknown keys: {list}"
    );
}

/// Finding 8: a progress interval of 1ns is refused at start (it logged
/// 31,034 lines in 2 s), and `0s` still turns progress off.
#[test]
fn a_progress_interval_under_100ms_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(actor_e2e_tests::actor_host_bin())
        .args([
            "--workload",
            "none",
            "--progress-every",
            "1ns",
            "--data-dir",
        ])
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Refused at start; the build before this bound ran (flooding its log) until killed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = wait_for(
        Duration::from_secs(30),
        "actor-host to exit or the deadline",
        || match child.try_wait().unwrap() {
            Some(status) => Some(Some(status)),
            None => (Instant::now() > deadline).then_some(None),
        },
    );
    let Some(status) = exited else {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("--progress-every 1ns was accepted: the host still ran after 20 s");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("shorter than the minimum 100ms"), "{err}");
}

/// Finding 8: when the data dir cannot be written (a full disk: here a file
/// size limit of 1 byte, which fails the write the same way), start-up fails
/// and leaves no `.write-probe` behind.
#[test]
fn a_failed_start_leaves_no_write_probe() {
    use std::os::unix::process::CommandExt;
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(actor_e2e_tests::actor_host_bin());
    command
        .args(["--workload", "none", "--data-dir"])
        .arg(data.path());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &one) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not writable"), "{err}");
    let left: Vec<_> = walk(data.path())
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}
