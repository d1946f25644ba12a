//! Many distinct actors through the real binary: no request fails, descriptors
//! stay within the bound of live actors, idle actors sleep and keep their data.
//!
//! The ignored tests are measurements, run by hand (see BENCHMARKS.md, "Host"),
//! one at a time so they do not share the two cores:
//!
//! ```sh
//! cargo test --release -p actor-e2e-tests --test host_load -- --ignored --nocapture --test-threads 1
//! ```
//!
//! * `live_actor_memory`: host memory and descriptors per live actor;
//! * `storm_figures`: 20,000 distinct actors at `--idle-timeout 1s`;
//! * `retained_actor_memory`: host memory per retained (slept) actor, the same
//!   profile replayed into the library in this process, and RSS across
//!   repeated full scrapes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actor_e2e_tests::{Host, wait_for};
use actor_metrics::families::FAMILIES;
use actor_metrics::families::Kind;
use actor_metrics::scrape::{NativeSample, Scrape};
use actor_metrics::testing::{Op, apply};
use actor_metrics::{Config, DetailLevel, Metrics};
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
#[ignore = "a measurement (minutes): cargo test --release -p actor-e2e-tests --test host_load -- --ignored --nocapture --test-threads 1"]
fn live_actor_memory() {
    // 5,000 actors created and kept live, RSS before and after; with the
    // default page size of new databases, then with SQLite's 4 KiB (what
    // databases created before the 1 KiB default keep). The first round
    // passes no new flag, so an older binary can be measured the same way.
    let n_live = 5000;
    for page_size in [None, Some("4096")] {
        let mut args = vec![
            "--workload",
            "none",
            "--idle-timeout",
            "never",
            "--progress-every",
            "1h",
        ];
        args.extend(page_size.iter().flat_map(|p| ["--sqlite-page-size", p]));
        let host = Host::start(&args);
        let pid = host.pid();
        let (rss0, fds0) = (rss_kb(pid), fds(pid));
        let failed = storm(&host, "live", n_live, |_| {});
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(live(&host), n_live);
        let (rss1, fds1) = (rss_kb(pid), fds(pid));
        println!(
            "live, page size {}: {n_live} actors, RSS {rss0} -> {rss1} KB = {:.1} KB per live actor, {:.2} descriptors per live actor",
            page_size.unwrap_or("default"),
            (rss1 - rss0) as f64 / n_live as f64,
            (fds1 - fds0) as f64 / n_live as f64
        );
    }
}

#[test]
#[ignore = "a measurement (minutes): cargo test --release -p actor-e2e-tests --test host_load -- --ignored --nocapture --test-threads 1"]
fn storm_figures() {
    // 20,000 distinct actors one after another, idle after 1 s.
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

/// Creates, increments and puts to sleep `n` distinct actors one after
/// another: each leaves one retained label set and no live actor.
fn retire(host: &Host, prefix: &str, n: usize) {
    for i in 0..n {
        let key = format!("{prefix}{i}");
        for (path, body) in [
            (format!("/actors/counter/{key}"), String::new()),
            (
                format!("/actors/counter/{key}/actions/increment"),
                json!({ "by": i }).to_string(),
            ),
            (format!("/actors/counter/{key}/sleep"), String::new()),
        ] {
            let (status, reply) = host.post(&path, &body);
            assert_eq!(status, 200, "{path}: {reply}");
        }
    }
}

/// A self-metric of the metrics port, read at `detail=off` (the scrape is
/// aggregates only, however many actors are retained).
fn self_metric(host: &Host, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = Scrape::parse(&host.scrape_text_with("detail=off")).expect("scrape parses");
    scrape
        .get(name, labels)
        .unwrap_or_else(|| panic!("{name}{labels:?} missing"))
}

/// Streams `/metrics?detail=full` to nowhere; returns its length in bytes.
fn scrape_full_len(host: &Host) -> u64 {
    let resp = ureq::get(&format!("http://{}/metrics?detail=full", host.metrics))
        .call()
        .expect("scrape");
    std::io::copy(&mut resp.into_reader(), &mut std::io::sink()).expect("scrape body")
}

/// What one actor recorded, as recordings that rebuild the same cells.
struct Profile {
    /// `(family index, extra label index, op)`, every family but the action
    /// ones and `actor_active`.
    recordings: Vec<(usize, Option<usize>, Op)>,
    /// Action calls, for `record_action`: run time and whether it succeeded.
    calls: Vec<(Duration, bool)>,
}

/// Every observation a native histogram counted, each as a value inside the
/// bucket it was counted in (so a replay fills the same buckets).
fn observations(n: &NativeSample) -> impl Iterator<Item = f64> + '_ {
    let width = 2f64.powf(-f64::from(n.schema));
    let zero = std::iter::repeat_n(0.0, n.zero_count as usize);
    zero.chain(n.buckets.iter().flat_map(move |&(key, count)| {
        // Bucket `key` covers (2^((key-1)·width), 2^(key·width)].
        std::iter::repeat_n(2f64.powf((f64::from(key) - 0.5) * width), count as usize)
    }))
}

/// The per-actor series of `actor_id_gen` in a protobuf `detail=full` scrape,
/// as a [`Profile`]: counters and gauges with their value, histograms one
/// observation per observation counted, in the native bucket it was counted in.
fn profile_of(scrape: &Scrape, actor_id_gen: &str) -> Profile {
    let of_actor = |labels: &BTreeMap<String, String>| {
        labels.get("actor_id_gen").map(String::as_str) == Some(actor_id_gen)
    };
    let natives = |name: &'static str| {
        scrape
            .natives()
            .iter()
            .filter(move |n| n.name == name && of_actor(&n.labels))
    };
    let mut recordings = Vec::new();
    for (fi, f) in FAMILIES.iter().enumerate() {
        if f.by_action || f.name == "actor_active" {
            continue;
        }
        let label_of = |labels: &BTreeMap<String, String>| {
            f.extra_label.map(|l| {
                let value = &labels[l];
                f.label_values
                    .iter()
                    .position(|v| v == value)
                    .unwrap_or_else(|| panic!("{}: unknown {l}={value}", f.name))
            })
        };
        match f.kind {
            Kind::Histogram => {
                for n in natives(f.name) {
                    let label = label_of(&n.labels);
                    recordings.extend(observations(n).map(|v| (fi, label, Op::Observe(v))));
                }
            }
            Kind::Counter | Kind::Gauge => {
                for s in scrape.series(f.name).filter(|s| of_actor(&s.labels)) {
                    let op = match f.kind {
                        Kind::Counter => Op::Inc(s.value as u64),
                        _ => Op::Set(s.value as i64),
                    };
                    recordings.push((fi, label_of(&s.labels), op));
                }
            }
        }
    }
    let errors = scrape
        .series("actor_action_errors_total")
        .filter(|s| of_actor(&s.labels))
        .map(|s| s.value as usize)
        .sum();
    let calls = natives("actor_action_duration_seconds")
        .flat_map(observations)
        .enumerate()
        .map(|(i, secs)| (Duration::from_secs_f64(secs), i >= errors))
        .collect();
    Profile { recordings, calls }
}

/// Bytes of RSS per retained actor when `n` actors record `profile` into the
/// library in this process and stop, labelled by `labels(i)` (id, key). The
/// instance is built before the first reading, as the binary's is before its
/// first actor, so its map preallocated for the cap is not counted. One
/// replay per process: a second one would reuse the first one's freed heap.
fn replay(
    profile: &Profile,
    n: usize,
    envoy_key: &str,
    labels: impl Fn(usize) -> (String, String),
) -> f64 {
    let m = Metrics::new(Config {
        retention: Duration::from_secs(3600),
        per_actor_detail: DetailLevel::Full,
        envoy_key: envoy_key.to_owned(),
        ..Config::default()
    })
    .expect("valid configuration");
    let ty = m.actor_type("counter");
    let act = ty.action("increment");
    trim();
    let before = rss_kb(std::process::id());
    for i in 0..n {
        let (id, key) = labels(i);
        let a = ty.register(&id, Some(1), &key);
        for &(fi, label, op) in &profile.recordings {
            apply(&a, &FAMILIES[fi], label, op).expect("replays");
        }
        for &(elapsed, ok) in &profile.calls {
            a.record_action(&act, elapsed, ok);
        }
        a.stopped();
    }
    assert_eq!(m.retained_len(), n);
    trim();
    let after = rss_kb(std::process::id());
    drop(m);
    (after - before) as f64 * 1024.0 / n as f64
}

/// Gives glibc's free memory back to the OS, so RSS counts live data.
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim has no preconditions.
    unsafe {
        malloc_trim(0);
    }
}

#[test]
#[ignore = "a measurement (minutes): cargo test --release -p actor-e2e-tests --test host_load -- --ignored --nocapture --test-threads 1"]
fn retained_actor_memory() {
    // Warm-up actors first (allocator pools, the first SQLite connection,
    // HTTP buffers), then `n` more, each created, incremented and put to
    // sleep: one retained label set each, at most one live actor at a time.
    let (warm, n) = (1000, 10_000);
    let host = Host::start(&[
        "--workload",
        "none",
        "--idle-timeout",
        "never",
        "--retention",
        "1h",
        "--progress-every",
        "1h",
        "--envoy-key",
        "vm:00000",
    ]);
    let pid = host.pid();

    // What one such actor records, read from the binary's own full scrape
    // while it is the only one, to replay into the library below.
    retire(&host, "profile", 1);
    let scrape = host.scrape_protobuf_with("detail=full");
    let id_gen = scrape
        .samples()
        .iter()
        .find(|s| s.labels.get("actor_key").map(String::as_str) == Some("profile0"))
        .and_then(|s| s.labels.get("actor_id_gen").cloned())
        .expect("the actor is in the scrape");
    let counter = profile_of(&scrape, &id_gen);
    let series = scrape
        .series_keys()
        .iter()
        .filter(|(_, labels)| labels.get("actor_id_gen") == Some(&id_gen))
        .count();

    retire(&host, "w", warm);
    let rss0 = rss_kb(pid);
    let t0 = Instant::now();
    println!("| retained | RSS KB |");
    println!("| {} | {rss0} |", warm + 1);
    for round in 0..5 {
        retire(&host, &format!("r{round}-"), n / 5);
        println!("| {} | {} |", 1 + warm + (round + 1) * n / 5, rss_kb(pid));
    }
    let rss1 = rss_kb(pid);
    let retained = self_metric(
        &host,
        "actor_metrics_retained_label_sets",
        &[("state", "expiring")],
    );
    assert_eq!(
        retained as usize,
        1 + warm + n,
        "every slept actor is retained"
    );
    assert_eq!(live(&host), 0);
    let catalogue = std::fs::metadata(host.data_dir().join("catalogue.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let binary = (rss1 - rss0) as f64 * 1024.0 / n as f64;
    println!(
        "binary: {n} retained actors in {:.0} s, RSS {rss0} -> {rss1} KB = {binary:.0} B per retained actor (catalogue file {} KB for {} keys)",
        t0.elapsed().as_secs_f64(),
        catalogue / 1024,
        1 + warm + n
    );

    // The same profile in the library, in this process, labelled as the
    // binary labelled the measured actors.
    let step = n / 5;
    let library = replay(&counter, n, "vm:00000", |i| {
        let id = 2 + warm + i; // after the profiled actor and the warm-up
        (id.to_string(), format!("r{}-{}", i / step, i % step))
    });
    println!(
        "library, the same profile ({} recordings + {} action calls, {series} series per actor): {library:.0} B per retained actor",
        counter.recordings.len(),
        counter.calls.len()
    );

    // Scrapes at full detail while the actors are retained: RSS must level
    // off (the server streams each scrape in 64 KiB chunks; the first ones
    // warm its buffers and the allocator's per-thread arenas).
    let scrapes = 100;
    let before = rss_kb(pid);
    let mut after = Vec::new();
    let mut bytes = 0;
    for _ in 0..scrapes {
        bytes = scrape_full_len(&host);
        after.push(rss_kb(pid));
    }
    let every_tenth: Vec<u64> = after.iter().skip(9).step_by(10).copied().collect();
    println!(
        "scrapes: {scrapes} x {:.1} MB at detail=full; RSS KB before {before}, after the first {}, after every 10th {every_tenth:?}",
        bytes as f64 / 1e6,
        after[0],
    );
}
