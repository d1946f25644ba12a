//! `actor-host` out of file descriptors: the app port's accept loop backs off
//! and logs a line once in a while, not twenty a second, and serves again
//! once descriptors are free.
//!
//! Alone in its test binary: it lowers this process's open-file limit for the
//! moment it spawns the host (the host inherits it).

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use actor_e2e_tests::{Host, wait_for};

const T: Duration = Duration::from_secs(30);

/// Sets this process's soft open-file limit; returns the one it had.
fn set_soft_nofile(limit: &str) -> String {
    let pid = std::process::id().to_string();
    let out = Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--noheadings",
            "--raw",
            "--output=SOFT",
        ])
        .output()
        .expect("prlimit (util-linux)");
    let was = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let set = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={limit}:")])
        .status()
        .expect("prlimit");
    assert!(set.success(), "prlimit --nofile={limit}:");
    was
}

#[test]
fn out_of_descriptors_the_app_accept_loop_backs_off_and_logs_rarely() {
    let data = tempfile::tempdir().unwrap();
    let was = set_soft_nofile("64");
    let host = Host::start_logged(data.path(), &["--workload", "none"]);
    set_soft_nofile(&was);

    // Idle connections until the host cannot accept more.
    let mut held = Vec::new();
    wait_for(T, "an accept failure", || {
        for _ in 0..8 {
            held.push(TcpStream::connect(host.app).expect("connect"));
        }
        host.log()
            .lines()
            .any(|l| l.contains("app API accept failed"))
            .then_some(())
    });
    // The failures go on (the held connections wait in the backlog), but the
    // next line comes only after the throttle's period, and it counts the
    // failures left out since the first: with a line per failure (the old 50 ms
    // retry) there would be no such count and many more lines.
    let (left_out, lines) = wait_for(T, "a second accept-failure line", || {
        let log = host.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("app API accept failed"))
            .collect();
        let second = lines.get(1)?;
        let suppressed: u64 = second
            .split_whitespace()
            .find_map(|w| w.strip_prefix("suppressed="))?
            .parse()
            .ok()?;
        Some((suppressed, lines.len()))
    });
    assert!(
        left_out >= 1 && lines == 2,
        "the second accept-failure line left out {left_out} failures, and {lines} lines were written:\n{}",
        host.log()
    );

    // Descriptors free again: the host serves (within the longest backoff).
    drop(held);
    wait_for(T, "the app API to answer again", || {
        (host.get("/actors").0 == 200).then_some(())
    });
}
