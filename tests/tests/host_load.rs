//! Many distinct actors through the real binary: no request fails, descriptors
//! stay within the bound of live actors, idle actors sleep and keep their data.
//!
//! `storm_figures` (ignored; run by hand, see BENCHMARKS.md) measures host
//! memory per live actor and a 20,000-actor storm.

use std::time::{Duration, Instant};

use actor_e2e_tests::{Host, wait_for};
use serde_json::json;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn live(host: &Host) -> usize {
    host.get("/actors").1["actors"]
        .as_array()
        .map_or(usize::MAX, Vec::len)
}

/// Creates `n` distinct actors one after another (each incremented by its
/// index); returns the failed requests and the most descriptors seen.
fn storm(host: &Host, prefix: &str, n: usize, mut sample: impl FnMut(usize)) -> Vec<String> {
    let mut failed = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let (status, body) = host.post(&format!("/actors/counter/{key}"), "");
        if status != 200 {
            failed.push(format!("create {key}: {status} {body}"));
        }
        let (status, body) = host.post(
            &format!("/actors/counter/{key}/actions/increment"),
            &json!({ "by": i }).to_string(),
        );
        if status != 200 {
            failed.push(format!("increment {key}: {status} {body}"));
        }
        sample(i);
    }
    failed
}

#[test]
fn a_storm_of_distinct_actors_fails_nothing_and_stays_within_the_bound() {
    let bound = 64;
    let host = Host::start(&[
        "--workload",
        "none",
        "--idle-timeout",
        "300ms",
        "--max-live-actors",
        &bound.to_string(),
    ]);
    let pid = host.pid();
    let base = fds(pid);
    let mut most = base;
    let failed = storm(&host, "s", 1500, |i| {
        if i % 50 == 0 {
            most = most.max(fds(pid));
        }
    });
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    // Two descriptors per live actor (database and WAL), a few sockets besides.
    assert!(
        most <= base + 2 * bound + 16,
        "{most} descriptors, {base} at start"
    );
    wait_for(Duration::from_secs(30), "every actor asleep", || {
        (live(&host) == 0).then_some(())
    });
    for i in (0..1500).step_by(149) {
        let (status, body) = host.post(&format!("/actors/counter/s{i}/actions/get"), "{}");
        assert_eq!(
            (status, body["result"]["value"].as_u64()),
            (200, Some(i as u64))
        );
    }
}

#[test]
#[ignore = "a measurement (minutes): cargo test --release -p actor-e2e-tests --test host_load -- --ignored --nocapture"]
fn storm_figures() {
    // Memory per live actor: 5,000 actors kept live, RSS before and after.
    let n_live = 5000;
    let host = Host::start(&[
        "--workload",
        "none",
        "--idle-timeout",
        "never",
        "--progress-every",
        "1h",
    ]);
    let pid = host.pid();
    let (rss0, fds0) = (rss_kb(pid), fds(pid));
    let failed = storm(&host, "live", n_live, |_| {});
    assert!(failed.is_empty(), "{failed:?}");
    let (rss1, fds1) = (rss_kb(pid), fds(pid));
    println!(
        "live: {n_live} actors, RSS {rss0} -> {rss1} KB = {:.1} KB per live actor, {:.2} descriptors per live actor",
        (rss1 - rss0) as f64 / n_live as f64,
        (fds1 - fds0) as f64 / n_live as f64
    );
    drop(host);

    // The storm: 20,000 distinct actors one after another, idle after 1 s.
    let n = 20_000;
    let host = Host::start(&[
        "--workload",
        "none",
        "--idle-timeout",
        "1s",
        "--retention",
        "10s",
        "--sweep-interval",
        "1s",
        "--progress-every",
        "1h",
    ]);
    let pid = host.pid();
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let failed = storm(&host, "storm", n, |i| {
        if (i + 1) % 2000 == 0 {
            samples.push((i + 1, t0.elapsed().as_secs_f64(), rss_kb(pid), fds(pid)));
        }
    });
    println!(
        "storm: {n} actors in {:.1} s, {} failed requests of {}",
        t0.elapsed().as_secs_f64(),
        failed.len(),
        2 * n
    );
    println!("| created | seconds | RSS KB | descriptors |");
    for (created, secs, rss, fds) in samples {
        println!("| {created} | {secs:.1} | {rss} | {fds} |");
    }
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(5)]);
}
