//! Proof at the cap: a metrics-only host (no SQLite) holding N retained actors
//! with the `counter` profile (most stopped and inside retention, some live and
//! busy), served by the real metrics server, scraped by the real Prometheus
//! with the shipped `deploy/prometheus/prometheus.yml` for a few minutes.
//!
//! Prints what BENCHMARKS.md records: series per actor, bytes per scrape
//! (identity and gzip), Prometheus's `scrape_duration_seconds` and
//! `scrape_samples_scraped` per scrape, its head series and memory, the host's
//! render-and-send time per scrape and its peak memory growth while scraped.
//!
//! ```sh
//! cargo run --release -p actor-benches --bin cap -- [--actors 100000] [--live 10000] [--minutes 3] [--level core] [--promoted 64]
//! ```
//!
//! The live actors' calls are traced (each records an exemplar, as every app
//! API call does), and Prometheus runs with `exemplar-storage`, so the
//! OpenMetrics scrape carries and stores exemplars.
//!
//! `--promoted N` makes the first N live actors fail half their calls, and
//! ticks the promotion watch until they are promoted to `full` detail (the
//! default `max_promoted` is 64): the cap scrape with promoted actors.
//!
//! It serves on `127.0.0.1:9091`, the target of the shipped config, so that
//! port must be free; Prometheus listens on a free port with a temp data dir.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actor_benches::rss_bytes;
use actor_metrics::exemplar::{Exemplar, SpanId, TraceId};
use actor_metrics::labels::{
    Inbox, LabelEnum, MutationReason, SqliteOp, StartupPhase, StatementKind,
};
use actor_metrics::{ActionMetrics, ActorMetrics, Config, DetailLevel, Metrics};
use actor_metrics_server::{MetricsServer, Readiness, ServerOptions};

struct Args {
    actors: usize,
    live: usize,
    minutes: f64,
    level: DetailLevel,
    /// Prometheus with `--enable-feature=native-histograms`: it then asks for
    /// protobuf, and each per-actor histogram is one native series.
    native: bool,
    /// Live actors failing half their calls, promoted before scraping.
    promoted: usize,
}

fn args() -> Args {
    let mut a = Args {
        actors: 100_000,
        live: 10_000,
        minutes: 3.0,
        level: DetailLevel::Core,
        native: false,
        promoted: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        let bad = |what: &str| -> ! {
            eprintln!("cap: {flag} {v:?}: {what}");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--actors" => a.actors = v.parse().unwrap_or_else(|_| bad("a count")),
            "--live" => a.live = v.parse().unwrap_or_else(|_| bad("a count")),
            "--minutes" => a.minutes = v.parse().unwrap_or_else(|_| bad("minutes")),
            "--level" => a.level = v.parse().unwrap_or_else(|e| bad(&format!("{e}"))),
            "--native-histograms" => a.native = v.parse().unwrap_or_else(|_| bad("true or false")),
            "--promoted" => a.promoted = v.parse().unwrap_or_else(|_| bad("a count")),
            _ => bad(
                "use --actors N --live N --minutes M --level off|core|full --native-histograms true|false --promoted N",
            ),
        }
    }
    a
}

/// What a `counter` actor records from create through one `increment` in
/// `actor-host` (startup phases, schema and first row, one action).
fn counter_profile(a: &ActorMetrics, increment: &ActionMetrics, i: usize) {
    let ms = |n: usize| Duration::from_micros(50 + (n % 900) as u64);
    for &p in StartupPhase::ALL {
        a.startup_duration_seconds(p).observe_duration(ms(i));
    }
    for (kind, n) in [
        (StatementKind::Ddl, 1),
        (StatementKind::Write, 2),
        (StatementKind::Transaction, 2),
        (StatementKind::Read, 1),
    ] {
        for _ in 0..n {
            a.sqlite_statement_duration_seconds(kind)
                .observe_duration(ms(i / 3));
        }
    }
    a.sqlite_commits_total().inc_by(2);
    a.sqlite_commit_duration_seconds().observe(0.0004);
    a.sqlite_commit_duration_seconds().observe(0.0005);
    a.sqlite_wal_pages_total().inc_by(4);
    a.sqlite_rows_changed_total(SqliteOp::Insert).inc();
    a.sqlite_rows_changed_total(SqliteOp::Update).inc();
    a.state_mutations_total(MutationReason::Internal).inc();
    a.state_mutations_total(MutationReason::Action).inc();
    a.inbox_depth(Inbox::Action).inc();
    a.inbox_depth(Inbox::Action).dec();
    a.record_action(increment, ms(i), true);
}

/// One GET of `/metrics` over a raw socket, in text or (`protobuf`) in the
/// format Prometheus negotiates with native histograms on: `(status line, body
/// bytes, seconds)`.
fn scrape_once(addr: SocketAddr, gzip: bool, protobuf: bool) -> (String, usize, f64) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect to the metrics port");
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    let accept = if protobuf {
        "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\n{enc}{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let (mut head, mut total) = (Vec::new(), 0usize);
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        total += n;
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or("").to_owned();
    let header_len = text.find("\r\n\r\n").map_or(0, |i| i + 4);
    // Chunked framing adds a few bytes per 64 KiB; negligible next to the body.
    (
        status,
        total.saturating_sub(header_len),
        started.elapsed().as_secs_f64(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `query` against Prometheus: the first result's value, if any.
fn query(prom: SocketAddr, q: &str) -> Option<f64> {
    let url = format!("http://{prom}/api/v1/query");
    let body = ureq::get(&url)
        .query("query", q)
        .call()
        .ok()?
        .into_string()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// How many exemplars Prometheus stored for the series `selector` selects
/// over the last hour (0 when the query fails).
fn stored_exemplars(prom: SocketAddr, selector: &str) -> usize {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let url = format!("http://{prom}/api/v1/query_exemplars");
    let Some(body) = ureq::get(&url)
        .query("query", selector)
        .query("start", &(now - 3600).to_string())
        .query("end", &(now + 60).to_string())
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
    else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"].as_array().map_or(0, |series| {
        series
            .iter()
            .map(|s| s["exemplars"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

/// A metric from Prometheus's own `/metrics` (the shipped config does not
/// scrape Prometheus itself).
fn own_metric(prom: SocketAddr, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("http://{prom}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Resident memory of process `pid`, bytes.
fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Makes the first `n` of `live` fail half of 100 calls, the others make 20
/// good ones, and ticks the watch
/// (explicit instants, a tick apart) until they are promoted; exits 2 if they
/// are not all promoted.
fn promote(metrics: &Metrics, live: &[ActorMetrics], increment: &ActionMetrics, n: usize) {
    let t0 = tokio::time::Instant::now();
    let tick = metrics.config().promotion.tick;
    metrics.watch(t0);
    // The rest of the type is healthy (20 calls each), so the failing
    // actors stand out from it.
    for (j, a) in live.iter().enumerate() {
        let (calls, failing) = if j < n { (100, true) } else { (20, false) };
        for i in 0..calls {
            a.record_action(
                increment,
                Duration::from_micros(700),
                !failing || i % 2 == 0,
            );
        }
    }
    let report = metrics.watch(t0 + tick);
    println!(
        "promotion: {} of {n} failing actors promoted ({} over max_promoted)",
        report.promoted_now, report.over_budget
    );
    if report.promoted_now != n.min(metrics.config().promotion.max_promoted) {
        eprintln!("cap: the failing actors were not promoted: {report:?}");
        std::process::exit(2);
    }
}

fn main() {
    let args = args();
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let config = format!("{repo}/deploy/prometheus/prometheus.yml");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let before = rss_bytes();
    let metrics = Metrics::new(Config {
        max_retained: args.actors.max(1),
        retention: Duration::from_secs(3600),
        per_actor_detail: args.level,
        envoy_key: "cap-bench:1".into(),
        ..Config::default()
    })
    .expect("valid configuration");
    let ty = metrics.actor_type("counter");
    let increment = ty.action("increment");
    let built = Instant::now();
    let mut live = Vec::with_capacity(args.live);
    for i in 0..args.actors {
        let a = ty.register(&i.to_string(), Some(1), &format!("user-{i}"));
        counter_profile(&a, &increment, i);
        if i < args.live {
            live.push(a);
        } else {
            a.stopped(); // retained: stopped, inside the retention window
        }
    }
    if args.promoted > 0 {
        promote(&metrics, &live, &increment, args.promoted);
    }
    let populated = rss_bytes();
    println!(
        "{} actors ({} live) built in {:.1} s; host RSS +{:.0} MB ({:.0} B per actor)",
        args.actors,
        live.len(),
        built.elapsed().as_secs_f64(),
        populated.saturating_sub(before) as f64 / 1e6,
        populated.saturating_sub(before) as f64 / args.actors as f64
    );

    let addr: SocketAddr = "127.0.0.1:9091".parse().expect("address");
    let server = runtime
        .block_on(MetricsServer::bind(
            addr,
            metrics.clone(),
            ServerOptions {
                readiness: Readiness::new(Vec::<String>::new()),
                ..ServerOptions::default()
            },
        ))
        .unwrap_or_else(|e| {
            eprintln!("cap: {e}");
            std::process::exit(2)
        });

    // Live actors stay busy while Prometheus scrapes.
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let busy = {
        let (stop, updates) = (stop.clone(), updates.clone());
        let increment = increment.clone();
        let failing = args.promoted;
        std::thread::spawn(move || {
            let mut n: u64 = 0;
            let mut pass: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                pass += 1;
                for (i, a) in live.iter().enumerate() {
                    // Traced, as every app API call is: exemplars on the
                    // type's buckets and on the promoted actors' own; the
                    // promoted ones go on failing one call in ten, so error
                    // counters get exemplars too.
                    n += 1;
                    let e = Exemplar {
                        trace_id: TraceId((u128::from(n) << 1 | 1).to_be_bytes()),
                        span_id: SpanId((n | 1).to_be_bytes()),
                        value: 0.0007,
                        timestamp_ns: SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64),
                    };
                    let ok = i >= failing || !pass.is_multiple_of(10);
                    a.record_action_traced(&increment, Duration::from_micros(700), ok, Some(&e));
                    a.sqlite_commits_total().inc();
                }
                updates.fetch_add(live.len() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
            live
        })
    };

    // Bytes per scrape, measured by us before Prometheus starts (the first
    // scrape also builds every actor's cached label block).
    // In the format Prometheus will ask for.
    let (status, identity, first_secs) = scrape_once(addr, false, args.native);
    assert!(status.contains("200"), "{status}");
    let (_, identity_again, identity_secs) = scrape_once(addr, false, args.native);
    let (_, gzip, gzip_secs) = scrape_once(addr, true, args.native);
    let text = metrics.render();
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("actor_id_gen=\""))
        .count();
    let total_series = text.lines().filter(|l| !l.starts_with('#')).count();
    drop(text);
    println!(
        "scrape: {total_series} series ({series} per-actor = {:.1} per actor); identity {:.1} MB in {identity_secs:.2} s (first {first_secs:.2} s); gzip {:.1} MB in {gzip_secs:.2} s",
        series as f64 / args.actors as f64,
        identity_again.max(identity) as f64 / 1e6,
        gzip as f64 / 1e6
    );

    // RSS sampler: the host's peak over the whole run, after warm-up.
    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let mut prom = Command::new("prometheus");
    if args.native {
        prom.arg("--enable-feature=native-histograms,exemplar-storage");
    } else {
        prom.arg("--enable-feature=exemplar-storage");
    }
    let mut prom = prom
        .arg(format!("--config.file={config}"))
        .arg(format!("--storage.tsdb.path={}", dir.path().display()))
        .arg(format!("--web.listen-address={prom_addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("cap: cannot start prometheus (apt-get install prometheus): {e}");
            std::process::exit(2)
        });
    println!(
        "prometheus {prom_addr} with {config}; running {} min",
        args.minutes
    );

    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.minutes * 60.0);
    let mut scrapes: Vec<(f64, f64, f64, f64)> = Vec::new(); // (t, duration, samples, up)
    let mut last_ts = String::new();
    let mut max_prom_rss = 0u64;
    // The server's own time per scrape, between two lines of output.
    let mut host_seen = server_scrape_time(&metrics);
    let mut host_times: Vec<f64> = Vec::new();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        max_prom_rss = max_prom_rss.max(rss_of(prom.id()));
        let url = format!("http://{prom_addr}/api/v1/query");
        let Some(body) = ureq::get(&url)
            .query("query", r#"scrape_duration_seconds{job="actor-host"}"#)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
        else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let Some(sample) = v["data"]["result"].get(0) else {
            continue;
        };
        // The sample's own time, not the query's: one line per scrape.
        let ts = query(
            prom_addr,
            r#"timestamp(scrape_duration_seconds{job="actor-host"})"#,
        )
        .map(|t| t.to_string())
        .unwrap_or_default();
        if ts == last_ts {
            continue;
        }
        last_ts = ts;
        let duration: f64 = sample["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let samples =
            query(prom_addr, r#"scrape_samples_scraped{job="actor-host"}"#).unwrap_or(0.0);
        let up = query(prom_addr, r#"up{job="actor-host"}"#).unwrap_or(0.0);
        let t = started.elapsed().as_secs_f64();
        // One main-job scrape per line; the shipped promoted and debug jobs
        // scrape the host too, so the time since the last line is that
        // scrape plus theirs (64 actors at most, and none): an upper bound
        // on the main scrape's render-and-send.
        let host_now = server_scrape_time(&metrics);
        let host_scrapes = host_now.0 - host_seen.0;
        let host_secs = host_now.1 - host_seen.1;
        if host_scrapes > 0.0 {
            host_times.push(host_secs);
        }
        host_seen = host_now;
        println!(
            "t={t:5.0}s scrape_duration_seconds={duration:.3} scrape_samples_scraped={samples:.0} up={up} host render-and-send {host_secs:.3} s ({host_scrapes:.0} scrapes) host peak +{:.1} MB prometheus RSS {:.2} GB",
            peak.load(Ordering::Relaxed).saturating_sub(baseline) as f64 / 1e6,
            rss_of(prom.id()) as f64 / 1e9
        );
        scrapes.push((t, duration, samples, up));
    }
    let head = own_metric(prom_addr, "prometheus_tsdb_head_series").unwrap_or(f64::NAN);
    let promoted_job = |m: &str| {
        query(prom_addr, &format!("{m}{{job=\"actor-host-promoted\"}}")).unwrap_or(f64::NAN)
    };
    let promoted_scrape = (
        promoted_job("scrape_duration_seconds"),
        promoted_job("scrape_samples_post_metric_relabeling"),
    );
    let exemplars = [
        "actor_type_action_duration_seconds_bucket",
        "actor_action_duration_seconds_bucket",
        "actor_type_action_errors_total",
        "actor_action_errors_total",
    ]
    .map(|q| (q, stored_exemplars(prom_addr, q)));
    let _ = prom.kill();
    let _ = prom.wait();
    stop.store(true, Ordering::Relaxed);
    let _live = busy.join().expect("busy thread");
    let _ = sampler.join();
    let host_peak = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    let (count, sum) = server_scrape_time(&metrics);
    runtime.block_on(server.shutdown());

    let after_first: Vec<_> = scrapes.iter().skip(1).collect();
    let max_after_first = after_first.iter().map(|s| s.1).fold(0.0, f64::max);
    let failed = after_first.iter().filter(|s| s.3 != 1.0).count();
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| retained actors (live) | {} ({}) |",
        args.actors, args.live
    );
    println!("| level | {} |", args.level);
    println!(
        "| format | {} |",
        if args.native {
            "protobuf, native histograms"
        } else {
            "OpenMetrics (Prometheus's first choice)"
        }
    );
    println!(
        "| series per actor | {:.1} |",
        series as f64 / args.actors as f64
    );
    println!("| series per scrape | {total_series} |");
    println!(
        "| bytes per scrape, identity | {:.1} MB |",
        identity_again.max(identity) as f64 / 1e6
    );
    println!("| bytes per scrape, gzip | {:.1} MB |", gzip as f64 / 1e6);
    println!("| scrapes seen | {} |", scrapes.len());
    if let Some(first) = scrapes.first() {
        println!(
            "| first scrape: scrape_duration_seconds | {:.2} s (up={}) |",
            first.1, first.3
        );
    }
    println!("| later scrapes: max scrape_duration_seconds | {max_after_first:.2} s |");
    println!("| later scrapes not up | {failed} |");
    println!(
        "| scrape_samples_scraped | {:.0} |",
        scrapes.last().map_or(0.0, |s| s.2)
    );
    println!("| Prometheus head series | {head:.0} |");
    println!(
        "| actor-host-promoted job: last scrape_duration_seconds, samples kept | {:.3} s, {:.0} |",
        promoted_scrape.0, promoted_scrape.1
    );
    for (name, n) in exemplars {
        println!("| exemplars Prometheus stored on `{name}` | {n} |");
    }
    println!(
        "| Prometheus peak RSS | {:.2} GB |",
        max_prom_rss as f64 / 1e9
    );
    println!(
        "| host render-and-send per scrape (mean of {count:.0}, our own 3 included) | {:.3} s |",
        sum / count.max(1.0)
    );
    let later = host_times.iter().skip(1);
    println!(
        "| host render-and-send per main-job scrape after the first, with the promoted and debug scrapes between (max, mean) | {:.3} s, {:.3} s |",
        later.clone().copied().fold(0.0, f64::max),
        later.clone().sum::<f64>() / later.count().max(1) as f64
    );
    println!(
        "| host peak RSS growth while scraped | {:.1} MB |",
        host_peak as f64 / 1e6
    );
    println!(
        "| live actor updates during the run | {} |",
        updates.load(Ordering::Relaxed)
    );
}

/// `(count, sum)` of the server's `actor_metrics_http_scrape_duration_seconds`.
fn server_scrape_time(m: &Metrics) -> (f64, f64) {
    m.registry()
        .gather()
        .iter()
        .find(|f| f.name() == "actor_metrics_http_scrape_duration_seconds")
        .and_then(|f| f.get_metric().first().map(|x| x.get_histogram().clone()))
        .map_or((0.0, 0.0), |h| {
            (h.get_sample_count() as f64, h.get_sample_sum())
        })
}
