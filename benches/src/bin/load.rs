//! End-to-end load: runs `actor-host --workload demo --rate 0` (as fast as the
//! actors go) for a fixed time with per-actor detail on and scraped every second,
//! and with per-actor detail off and never scraped, alternating runs, and prints
//! actions/s of each and the overhead in percent.
//!
//! `cargo build --release -p actor-core && cargo run --release -p actor-benches --bin load -- [--seconds 20] [--rounds 2] [--actors 50]`

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
        let a = run(&bin, seconds, actors, true);
        println!(
            "round {round}: detail on, scraped every 1 s: {:.0} actions/s ({} scrapes)",
            a.0, a.1
        );
        on.push(a.0);
        let b = run(&bin, seconds, actors, false);
        println!(
            "round {round}: detail off, not scraped:      {:.0} actions/s",
            b.0
        );
        off.push(b.0);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (on, off) = (mean(&on), mean(&off));
    println!(
        "mean: on {on:.0} actions/s, off {off:.0} actions/s, overhead {:.2} %",
        (off - on) / off * 100.0
    );
}

/// `target/<profile>/actor-host`, next to this binary.
fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name("actor-host");
    if !bin.exists() {
        eprintln!(
            "{} not built: run `cargo build --release -p actor-core` first",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

/// One run; returns (actions/s from the host's own summary line, scrapes taken).
fn run(bin: &PathBuf, seconds: u64, actors: u32, detail: bool) -> (f64, u64) {
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
        .args(["--per-actor-detail", if detail { "on" } else { "off" }])
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
    let mut rate = None;
    for line in lines.by_ref() {
        let line = line.expect("stdout");
        if let Some(rest) = line.strip_prefix("summary ") {
            rate = rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix("calls_per_s="))
                .and_then(|v| v.parse::<f64>().ok());
        }
    }
    done.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        s.thread().unpark();
        let _ = s.join();
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "actor-host exited with {status}");
    (
        rate.expect("a summary line"),
        scrapes.load(Ordering::Relaxed),
    )
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
