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
    // A measurement window, not a wait for an event: at 20 lines a second
    // (the old 50 ms retry) this would be about 40 lines.
    std::thread::sleep(Duration::from_secs(2));
    let lines = host
        .log()
        .lines()
        .filter(|l| l.contains("app API accept failed"))
        .count();
    assert!(
        lines <= 2,
        "{lines} accept-failure lines in 2 s:\n{}",
        host.log()
    );

    // Descriptors free again: the host serves (within the longest backoff).
    drop(held);
    wait_for(T, "the app API to answer again", || {
        (host.get("/actors").0 == 200).then_some(())
    });
}
