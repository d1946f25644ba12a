//! End-to-end load: runs `actor-host --workload demo --rate 0` (as fast as the
//! actors go) for a fixed time with per-actor detail on and scraped every second,
//! and with per-actor detail off and never scraped, alternating runs, and prints
//! actions/s of each and the overhead in percent, and the host's CPU time per
//! action (user + system, from `getrusage(RUSAGE_CHILDREN)` around each run) for
//! each, since a latency-bound workload can hide CPU spent on metrics.
//!
//! `cargo build --release -p actor-host && cargo run --release -p actor-benches --bin load -- [--seconds 20] [--rounds 2] [--actors 50]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn main() {
    let mut seconds = 20u64;
    let mut rounds = 2u32;
    let mut actors = 50u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--seconds" => seconds = v.parse().expect("--seconds N"),
            "--rounds" => rounds = v.parse().expect("--rounds N"),
            "--actors" => actors = v.parse().expect("--actors N"),
            other => {
                eprintln!("unknown argument {other}; use --seconds N --rounds N --actors N");
                std::process::exit(2);
            }
        }
    }
    let bin = host_bin();
    println!("actor-host: {}", bin.display());
    println!("{seconds} s per run, {rounds} rounds, {actors} actors, 4 callers, rate unthrottled");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate which mode goes first, so drift over the run (page cache,
        // clock, neighbours) does not favour one mode.
        let order = if round % 2 == 1 {
            [true, false]
        } else {
            [false, true]
        };
        for detail in order {
            let r = run(&bin, seconds, actors, detail);
            if detail {
                println!(
                    "round {round}: detail on, scraped every 1 s: {:.0} actions/s, {:.2} us CPU per action ({} scrapes)",
                    r.rate, r.cpu_us_per_call, r.scrapes
                );
                on.push(r);
            } else {
                println!(
                    "round {round}: detail off, not scraped:      {:.0} actions/s, {:.2} us CPU per action",
                    r.rate, r.cpu_us_per_call
                );
                off.push(r);
            }
        }
    }
    let mean = |v: &[Run], f: fn(&Run) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let (on_rate, off_rate) = (mean(&on, |r| r.rate), mean(&off, |r| r.rate));
    let (on_cpu, off_cpu) = (
        mean(&on, |r| r.cpu_us_per_call),
        mean(&off, |r| r.cpu_us_per_call),
    );
    println!(
        "mean: on {on_rate:.0} actions/s, off {off_rate:.0} actions/s, throughput overhead {:.2} %",
        (off_rate - on_rate) / off_rate * 100.0
    );
    println!(
        "mean: on {on_cpu:.2} us CPU per action, off {off_cpu:.2} us, CPU overhead {:.2} %",
        (on_cpu - off_cpu) / off_cpu * 100.0
    );
}

/// What one run measured.
struct Run {
    /// Actions per second, from the host's own summary line.
    rate: f64,
    /// Scrapes taken during the run.
    scrapes: u64,
    /// Host CPU time (user + system) per action answered, in microseconds.
    cpu_us_per_call: f64,
}

/// CPU time of waited-for children so far, in microseconds.
fn children_cpu_us() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0, "getrusage");
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(u.ru_utime) + us(u.ru_stime)
}

/// `target/<profile>/actor-host`, next to this binary.
fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name("actor-host");
    if !bin.exists() {
        eprintln!(
            "{} not built: run `cargo build --release -p actor-host` first",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

/// One run of the host.
fn run(bin: &PathBuf, seconds: u64, actors: u32, detail: bool) -> Run {
    let cpu_before = children_cpu_us();
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(bin)
        .args([
            "--workload",
            "demo",
            "--rate",
            "0",
            "--progress-every",
            "1h",
        ])
        .args(["--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(["--actors", &actors.to_string()])
        .args(["--duration", &format!("{seconds}s")])
        .args(["--per-actor-detail", if detail { "full" } else { "off" }])
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn actor-host");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let metrics: SocketAddr = loop {
        let line = lines
            .next()
            .expect("actor-host exited early")
            .expect("stdout");
        if let Some(rest) = line.strip_prefix("listening ") {
            break rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix("metrics="))
                .and_then(|a| a.parse().ok())
                .expect("metrics address");
        }
    };
    let done = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraper = detail.then(|| {
        let (done, scrapes) = (done.clone(), scrapes.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if scrape(metrics).is_some() {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::park_timeout(Duration::from_secs(1));
            }
        })
    });
    let (mut rate, mut calls) = (None, None);
    for line in lines.by_ref() {
        let line = line.expect("stdout");
        if let Some(rest) = line.strip_prefix("summary ") {
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|p| p.strip_prefix(name))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            rate = field("calls_per_s=");
            calls = field("calls=");
        }
    }
    done.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        s.thread().unpark();
        let _ = s.join();
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "actor-host exited with {status}");
    let cpu = children_cpu_us() - cpu_before;
    Run {
        rate: rate.expect("a summary line"),
        scrapes: scrapes.load(Ordering::Relaxed),
        cpu_us_per_call: cpu / calls.expect("a summary line").max(1.0),
    }
}

/// One plain HTTP/1.0 scrape; the body length, or `None` if it failed.
fn scrape(addr: SocketAddr) -> Option<usize> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    (body.get(8..13) == Some(b" 200 ".as_slice())).then_some(body.len())
}
