//! `actor-host`: runs the actor host with its app API, metrics on a side port,
//! and (by default) the demo workload. Ctrl-C or SIGTERM shut it down gracefully.
//!
//! Start-up order, as `/readyz` reports it: the metrics port serves first (503
//! `catalogue not loaded`), then the app port is bound and the `listening …`
//! line printed on stdout, then the catalogue is taken (waiting for another host
//! on the same data dir to let go) and the app API served; `/readyz` turns 200.
//! On shutdown `/readyz` is 503 `shutting down` while actors drain.
//!
//! Shutdown (Ctrl-C, SIGTERM or `--duration`) is bounded:
//!
//! 1. `/readyz` turns 503, the app port stops accepting, new calls get 503;
//! 2. every actor stops at once: an action still running `--shutdown-timeout`
//!    after the signal is cancelled (its caller gets a 503, its open
//!    transaction is rolled back), user tasks get what is left of that timeout
//!    and are then aborted, and an actor task still running one second later is
//!    aborted;
//! 3. app connections get the same timeout plus one second to take their
//!    answers, then are closed;
//! 4. the metrics port lets scrapes in flight finish (up to its 10 s grace),
//!    the `summary` line is printed, and the process exits 0.
//!
//! So the process is gone within `--shutdown-timeout` + 1 s, plus the time of
//! a scrape in flight. A second Ctrl-C or SIGTERM during the shutdown exits at
//! once, with 130 (SIGINT) or 143 (SIGTERM).
//!
//! Logs go to stderr through `tracing` (`RUST_LOG` filters; `--log-format
//! json` for collectors; colour only on a terminal). Stdout carries two lines
//! for scripts: `listening app=… metrics=… data_dir=…` and, at exit,
//! `summary calls=… seconds=… calls_per_s=…`.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actor_core::health::{self, Heartbeat};
use actor_core::{Host, HostConfig};
use actor_host::counter::Counter;
use actor_host::workload::{DemoOptions, DemoStats};
use actor_metrics::{Config, Metrics};
use actor_metrics_server::{Health, MetricsServer, Readiness, ServerOptions, ServerThread};
use clap::Parser;

mod args;

use args::{Args, LogFormat, Workload, default_max_live, metrics_token};

/// How long app connections get past `--shutdown-timeout` to take the
/// answers of the calls that were in flight (cancelled ones included).
const APP_GRACE_PAST_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    return_large_blocks();
    let args = Args::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                &format!("cannot start the tokio runtime: {e}"),
                args.log_format,
            );
        }
    };
    let log_format = args.log_format;
    let result = runtime.block_on(run(args));
    // Work still on the blocking pool (an actor open waiting on a lock) must
    // not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message, log_format),
    }
}

/// One clear line on stderr, exit code 2: plain text, or with `--log-format
/// json` one JSON object shaped like the log events (and never filtered out
/// by `RUST_LOG`).
fn fail(message: &str, format: LogFormat) -> ExitCode {
    let line = format!("actor-host: error: {message}");
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                "level": "ERROR",
                "fields": { "message": line },
                "target": "actor_host",
            })
        ),
    }
    ExitCode::from(2)
}

/// Heap blocks at least this large are mapped on their own and unmapped
/// when freed: 128 KiB, glibc's own starting value.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Makes memory a client made the host hold go back to the system when it
/// is released. glibc raises its mmap threshold each time a mapped block is
/// freed (up to 32 MiB), after which a large payload parsed on one runtime
/// thread stays in that thread's arena when freed: 10 queued 1 MiB messages
/// left the host 72 MB larger, where 10 MB were held. A threshold set
/// explicitly is never raised.
fn return_large_blocks() {
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    if set != 1 {
        eprintln!(
            "warning: could not set the allocator's mmap threshold; freed payloads may stay in the heap"
        );
    }
}

async fn run(args: Args) -> Result<(), String> {
    let temp;
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("actor-host-")
                .tempdir()
                .map_err(|e| format!("cannot create a temp data dir: {e}"))?;
            temp.path().to_owned()
        }
    };
    let metrics = Metrics::new(metrics_config(&args)).map_err(|e| e.to_string())?;
    // The host's own memory, CPU, descriptors and start time, per host (7
    // series, none per actor): what an operator watches next to the actors'.
    #[cfg(target_os = "linux")]
    metrics
        .registry()
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .map_err(|e| format!("cannot register the process metrics: {e}"))?;
    let port = MetricsPort::start(&args, &metrics)?;

    // From here on a signal is a graceful stop (and a second one, an exit).
    let mut signals = Signals::new();
    let app_listener = tokio::net::TcpListener::bind(args.app_addr)
        .await
        .map_err(|e| format!("cannot bind the app address {}: {e}", args.app_addr))?;
    let app_addr = app_listener
        .local_addr()
        .map_err(|e| format!("app address: {e}"))?;
    say(format_args!(
        "listening app={app_addr} metrics={} data_dir={}",
        port.server.local_addr(),
        data_dir.display()
    ));

    let host_config = host_config(&args, &data_dir)?;
    tracing::info!(
        max_live_actors = max_live_actors(&args),
        idle_timeout = %args
            .idle_timeout
            .0
            .map_or_else(|| "never".to_owned(), |t| humantime::format_duration(t).to_string()),
        "loading the catalogue"
    );
    let build = Host::builder(metrics.clone(), host_config)
        .behaviour(Counter)
        .build();
    let host = tokio::select! {
        host = build => host.map_err(|e| e.to_string())?,
        (reason, _) = signals.next() => {
            tracing::info!(reason, "stopped before the catalogue was loaded");
            port.stop().await;
            return Ok(());
        }
    };
    port.readiness.mark_ready("catalogue not loaded");

    let serving = Serving::start(&args, host, app_listener);
    let reason = tokio::select! {
        (reason, _) = signals.next() => reason,
        () = until(args.duration) => "duration elapsed",
    };
    tracing::info!(reason, shutdown_timeout = %humantime::format_duration(args.shutdown_timeout), "shutting down");
    // A second signal means "now": the shutdown is not waited for.
    tokio::spawn(async move {
        let (signal, code) = signals.next().await;
        tracing::error!(
            signal,
            code,
            "second signal during shutdown; exiting at once"
        );
        std::process::exit(code);
    });
    port.readiness.set_not_ready("shutting down");
    serving.stop().await;
    port.stop().await;
    Ok(())
}

/// The metrics library's settings from the flags.
fn metrics_config(args: &Args) -> Config {
    Config {
        retention: args.retention,
        sweep_interval: args.sweep_interval,
        max_retained: args.max_retained,
        per_actor_detail: args.per_actor_detail,
        envoy_key: args
            .envoy_key
            .clone()
            .unwrap_or_else(actor_metrics::Config::default_envoy_key),
        promotion: actor_metrics::Promotion {
            max_promoted: args.max_promoted,
            window: args.promotion_window,
            tick: args.promotion_tick,
            hold: args.promotion_hold,
            min_calls: args.promotion_min_calls,
            error_ratio_floor: args.promotion_error_ratio,
            error_ratio_factor: args.promotion_error_factor,
            latency_factor: args.promotion_latency_factor,
            p99_factor: args.promotion_p99_factor,
            depth_threshold: args.promotion_depth,
            depth_ticks: args.promotion_depth_ticks,
            release: args.promotion_release,
        },
        ..Config::default()
    }
}

/// The host's settings from the flags (whose parsers already refused what
/// the setters would).
fn host_config(args: &Args, data_dir: &std::path::Path) -> Result<HostConfig, String> {
    let mut sqlite = HostConfig::new(data_dir).sqlite_options().clone();
    sqlite.cache_kib = Some(args.sqlite_cache_kib);
    sqlite.page_size = Some(args.sqlite_page_size);
    let config = HostConfig::new(data_dir)
        .shutdown_timeout(args.shutdown_timeout)
        .data_dir_lock_timeout(args.data_dir_lock_timeout)
        .idle_timeout(args.idle_timeout.0)
        .and_then(|c| c.max_live_actors(max_live_actors(args)))
        .and_then(|c| c.queue_max_messages(args.queue_max_messages))
        .and_then(|c| c.queue_max_bytes(args.queue_max_bytes))
        .and_then(|c| c.inbox_capacity(args.inbox_capacity))
        .and_then(|c| c.inbox_max_bytes(args.inbox_max_bytes))
        .and_then(|c| c.max_client_bytes(args.max_client_bytes))
        .and_then(|c| c.max_tasks_per_actor(args.max_tasks_per_actor))
        .and_then(|c| c.max_tasks(args.max_tasks))
        .and_then(|c| c.sqlite(sqlite));
    config.map_err(|e| e.to_string())
}

/// `--max-live-actors`, or the default that fits the open-file limit.
fn max_live_actors(args: &Args) -> usize {
    args.max_live_actors.unwrap_or_else(default_max_live)
}

/// The metrics port on its own thread, with what `/healthz` watches (the
/// sweeper, this runtime's heartbeat) and what `/readyz` waits for.
struct MetricsPort {
    server: ServerThread,
    readiness: Readiness,
    sweeper: Arc<tokio::task::JoinHandle<()>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl MetricsPort {
    /// Starts the sweeper, the heartbeat and the server; `/readyz` waits for
    /// the catalogue.
    fn start(args: &Args, metrics: &Metrics) -> Result<MetricsPort, String> {
        let readiness = Readiness::new(["metrics not initialised", "catalogue not loaded"]);
        // /healthz fails when the sweeper task ends or this runtime stops running
        // its heartbeat. The server runs on its own thread and runtime, so it can
        // still answer (and say so) when this one is wedged.
        let health = Health::default();
        let sweeper = Arc::new(metrics.spawn_sweeper());
        health.check(
            "sweeper",
            health::task_alive(sweeper.clone(), "the sweeper task"),
        );
        let (beat, heartbeat) =
            Heartbeat::spawn(health::DEFAULT_BEAT_EVERY, health::DEFAULT_STALE_AFTER);
        health.check("runtime", move || beat.check());
        let server = MetricsServer::spawn_thread(
            args.metrics_addr,
            metrics.clone(),
            ServerOptions {
                bearer_token: metrics_token(args)?,
                readiness: readiness.clone(),
                health,
                ..ServerOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        readiness.mark_ready("metrics not initialised");
        Ok(MetricsPort {
            server,
            readiness,
            sweeper,
            heartbeat,
        })
    }

    /// Stops the server (a scrape in flight gets its grace), then the sweeper
    /// and the heartbeat.
    async fn stop(self) {
        shutdown_server(self.server).await;
        self.sweeper.abort();
        self.heartbeat.abort();
    }
}

/// The host at work: the app API, the demo workload and the progress line.
struct Serving {
    host: Host,
    app: tokio::task::JoinHandle<()>,
    stop_app: tokio::sync::oneshot::Sender<()>,
    demo: Option<tokio::task::JoinHandle<()>>,
    progress: tokio::task::JoinHandle<()>,
    started: tokio::time::Instant,
}

impl Serving {
    fn start(args: &Args, host: Host, app_listener: tokio::net::TcpListener) -> Serving {
        let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
        let app = tokio::spawn(actor_host::app::serve(
            app_listener,
            host.clone(),
            async {
                let _ = app_stopped.await;
            },
            args.shutdown_timeout + APP_GRACE_PAST_SHUTDOWN_TIMEOUT,
        ));
        let demo = (args.workload == Workload::Demo).then(|| {
            tokio::spawn(actor_host::workload::run(
                host.clone(),
                DemoOptions {
                    actors: args.actors,
                    rate: args.rate,
                    ..DemoOptions::default()
                },
                Arc::new(DemoStats::default()),
            ))
        });
        let progress = tokio::spawn(progress(host.clone(), args.progress_every));
        Serving {
            host,
            app,
            stop_app,
            demo,
            progress,
            started: tokio::time::Instant::now(),
        }
    }

    /// Stops taking requests and the demo, then stops every actor while the
    /// requests in flight drain (both bounded), and prints the summary line.
    async fn stop(self) {
        let Serving {
            host,
            app,
            stop_app,
            demo,
            progress,
            started,
        } = self;
        let _ = stop_app.send(());
        if let Some(demo) = demo {
            demo.abort();
            let _ = demo.await;
        }
        progress.abort();
        // In-flight requests wait on actors: both drain together, each bounded.
        tokio::join!(host.shutdown(), async {
            let _ = app.await;
        });
        let secs = started.elapsed().as_secs_f64();
        let calls = host.calls_total();
        say(format_args!(
            "summary calls={calls} seconds={secs:.3} calls_per_s={:.1}",
            calls as f64 / secs.max(1e-9)
        ));
    }
}

/// Writes one line for scripts on stdout. `println!` panics when stdout's
/// reader has gone (a wrapper that read the `listening` line and closed the
/// pipe): the host's own work is done by then, so a closed pipe is ignored
/// and any other write error logged.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => tracing::warn!(error = %e, "cannot write to stdout"),
    }
}

/// Lets in-flight scrapes finish, then stops the metrics thread.
async fn shutdown_server(server: ServerThread) {
    if tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .is_err()
    {
        tracing::error!("stopping the metrics server failed");
    }
}

/// Completes after `duration`; never without one.
async fn until(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The signals that stop the host, listened to from start-up on so that a
/// second one is seen as a second one.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for Ctrl-C or SIGTERM; returns its name and the exit code of a
    /// process it ends at once (128 + the signal's number).
    async fn next(&mut self) -> (&'static str, i32) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.interrupt) => ("ctrl-c", 130),
                () = recv(&mut self.terminate) => ("SIGTERM", 143),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("ctrl-c", 130)
        }
    }
}

/// Logs a `progress` event with `live_actors`, `retained_label_sets`,
/// `actions_per_s`, `commits_per_s`, `client_bytes` and `user_tasks` (what
/// clients hold now, against `--max-client-bytes` and `--max-tasks`) and
/// `queue_dropped` (queued messages dropped with their actor's generation
/// since the last line: the demo's churn drops some by design).
async fn progress(host: Host, every: Duration) {
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = (
        tokio::time::Instant::now(),
        host.calls_total(),
        commits(&host).await,
        host.queue_messages_dropped(),
    );
    loop {
        tick.tick().await;
        let now = (
            tokio::time::Instant::now(),
            host.calls_total(),
            commits(&host).await,
            host.queue_messages_dropped(),
        );
        let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
        tracing::info!(
            live_actors = host.live_count(),
            retained_label_sets = host.metrics().retained_len(),
            actions_per_s = one_decimal((now.1 - last.1) as f64 / secs),
            commits_per_s = one_decimal((now.2 - last.2).max(0.0) / secs),
            client_bytes = host.client_bytes(),
            user_tasks = host.user_tasks(),
            queue_dropped = now.3 - last.3,
            "progress"
        );
        last = now;
    }
}

/// `x` rounded to one decimal, logged as a number (not text) in JSON logs.
fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Commits of every actor, from the never-resetting aggregates: read from the
/// library's totals, never by rendering and parsing a scrape.
async fn commits(host: &Host) -> f64 {
    let metrics = host.metrics().clone();
    tokio::task::spawn_blocking(move || {
        metrics
            .totals()
            .iter()
            .map(|(_, t)| t.sqlite_commits_total as f64)
            .sum()
    })
    .await
    .unwrap_or(0.0)
}
