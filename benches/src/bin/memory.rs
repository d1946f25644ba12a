//! RSS per retained actor (full catalogue populated) for this design and for the
//! same series in the two Rust clients: `prometheus` `MetricVec` children and
//! `prometheus-client` `Family` children.
//!
//! `cargo run --release -p actor-benches --bin memory [-- --actors N]`
//!
//! Each design is measured in a fresh child process (this binary re-executed
//! with `--mode ours|mirror|client`), reading `/proc/self/statm` before and
//! after building, so one design's allocator state does not pollute another's.

use std::process::Command;
use std::time::Duration;

use actor_benches::{
    ENVOY, actor_id, actor_key, build_client, build_mirror, populate, rss_bytes, series_per_actor,
};
use actor_metrics::{Config, DetailLevel, Metrics};

const DEFAULT_ACTORS: usize = 100_000;

fn usage() -> ! {
    eprintln!("usage: memory [--actors N] [--mode ours|mirror|client]");
    std::process::exit(2)
}

/// Returns the allocator's free memory to the OS so RSS counts live data only.
fn trim() {
    // SAFETY: malloc_trim has no preconditions (glibc).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Child: builds `n` retained actors in one design, prints the RSS growth.
fn measure(mode: &str, n: usize) {
    trim();
    let before = rss_bytes();
    let keep: Box<dyn std::any::Any> = match mode {
        "ours" | "ours-classic" => {
            let m = Metrics::new(Config {
                max_retained: n.max(1) * 2,
                retention: Duration::from_secs(3600),
                envoy_key: ENVOY.into(),
                per_actor_detail: DetailLevel::Full,
                // ours-classic: native histogram buckets off, as before they existed.
                native_histograms: mode == "ours",
                ..Config::default()
            })
            .expect("valid configuration");
            let ty = m.actor_type("counter");
            let act = ty.action("increment");
            for i in 0..n {
                let a = ty.register(&actor_id(i), Some(1), &actor_key(i));
                populate(i, Some((&a, &act)), &[]);
                a.stopped(); // retained: stopped, within retention
            }
            assert_eq!(m.retained_len(), n);
            Box::new(m)
        }
        "mirror" => Box::new(build_mirror(n)),
        "client" => Box::new(build_client(n)),
        _ => usage(),
    };
    trim();
    let after = rss_bytes();
    println!("{}", after.saturating_sub(before));
    drop(keep);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut n = DEFAULT_ACTORS;
    let mut mode = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--actors" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--mode" => mode = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if let Some(mode) = mode {
        measure(&mode, n);
        return;
    }

    let exe = std::env::current_exe().expect("own executable path");
    let run = |mode: &str| -> u64 {
        let out = Command::new(&exe)
            .args(["--mode", mode, "--actors", &n.to_string()])
            .output()
            .expect("re-execute the memory binary");
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("child prints its RSS growth")
    };
    let ours = run("ours");
    let classic = run("ours-classic");
    let mirror = run("mirror");
    let client = run("client");
    let per = |b: u64| b as f64 / n as f64;
    println!(
        "RSS per retained actor, {n} actors, full catalogue ({} series per actor):",
        series_per_actor()
    );
    println!("| design | RSS growth | bytes per actor |");
    println!("|---|---:|---:|");
    for (design, bytes) in [
        ("actor-metrics (one allocation per actor)", ours),
        ("actor-metrics, native histograms off", classic),
        ("prometheus MetricVec children", mirror),
        ("prometheus-client Family children", client),
    ] {
        println!(
            "| {design} | {:.1} MB | {:.0} |",
            bytes as f64 / 1e6,
            per(bytes)
        );
    }
    println!(
        "native histograms on / off: {:.2}x (goal <= 2x)",
        per(ours) / per(classic)
    );
    for (peer, bytes, goal) in [
        ("MetricVec", mirror, "; goal <= 1/10"),
        ("Family", client, ""),
    ] {
        println!(
            "ratio ours / {peer}: {:.3} (1/{:.2}{goal})",
            per(ours) / per(bytes),
            per(bytes) / per(ours)
        );
    }
}
