//! `actor-host`: runs the actor host with its app API, metrics on a side port,
//! and (by default) the demo workload. Ctrl-C or SIGTERM shut it down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actor_core::workload::{DemoOptions, DemoStats};
use actor_core::{Host, HostConfig};
use actor_metrics::{Config, DetailLevel, Metrics};
use actor_metrics_server::{MetricsServer, Readiness, ServerOptions};
use clap::{Parser, ValueEnum};

/// A small real actor host that exports per-actor Prometheus metrics.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory for the actors' SQLite files [default: a fresh temp dir, removed at exit].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the JSON app API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    app_addr: SocketAddr,
    /// Address of the metrics port (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value = "127.0.0.1:9091")]
    metrics_addr: SocketAddr,
    /// `envoy_key` label of every per-actor series [default: hostname:pid].
    #[arg(long)]
    envoy_key: Option<String>,
    /// How long a stopped actor's series stay exported.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// How often the sweeper removes expired label sets.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    sweep_interval: Duration,
    /// Cap on retained label sets (live + expiring).
    #[arg(long, default_value_t = actor_metrics::DEFAULT_MAX_RETAINED)]
    max_retained: usize,
    /// Per-actor detail exported by default: off, core or full (aggregates are
    /// always exported; a scrape may ask for another level with `?detail=`).
    #[arg(long, default_value_t = DetailLevel::Core)]
    per_actor_detail: DetailLevel,
    /// Built-in workload to run.
    #[arg(long, value_enum, default_value_t = Workload::Demo)]
    workload: Workload,
    /// Actors the demo keeps in play.
    #[arg(long, default_value_t = 20)]
    actors: usize,
    /// Demo action calls per second (0 = as fast as possible).
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Stop after this long [default: run until Ctrl-C / SIGTERM].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// How long stopping an actor waits for its user tasks.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// Bearer token required on `/metrics` [default: none].
    #[arg(long)]
    metrics_token: Option<String>,
    /// How often the demo prints a progress line.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Demo,
    None,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the tokio runtime: {e}")),
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// One clear line, exit code 2.
fn fail(message: &str) -> ExitCode {
    eprintln!("actor-host: error: {message}");
    ExitCode::from(2)
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
    let config = Config {
        retention: args.retention,
        sweep_interval: args.sweep_interval,
        max_retained: args.max_retained,
        per_actor_detail: args.per_actor_detail,
        envoy_key: args
            .envoy_key
            .clone()
            .unwrap_or_else(actor_metrics::default_envoy_key),
        ..Config::default()
    };
    let metrics = Metrics::new(config).map_err(|e| e.to_string())?;

    let readiness = Readiness::new(["metrics not initialised", "actors not loaded"]);
    let server = MetricsServer::bind(
        args.metrics_addr,
        metrics.clone(),
        ServerOptions {
            bearer_token: args.metrics_token.clone(),
            readiness: readiness.clone(),
            ..ServerOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let sweeper = metrics.spawn_sweeper();
    readiness.mark_ready("metrics not initialised");

    let app_listener = tokio::net::TcpListener::bind(args.app_addr)
        .await
        .map_err(|e| format!("cannot bind the app address {}: {e}", args.app_addr))?;
    let app_addr = app_listener
        .local_addr()
        .map_err(|e| format!("app address: {e}"))?;

    let mut host_config = HostConfig::new(&data_dir);
    host_config.shutdown_timeout = args.shutdown_timeout;
    let host = Host::new(metrics.clone(), host_config).map_err(|e| e.to_string())?;
    readiness.mark_ready("actors not loaded");

    let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(actor_core::app::serve(app_listener, host.clone(), async {
        let _ = app_stopped.await;
    }));
    println!(
        "listening app={app_addr} metrics={} data_dir={}",
        server.local_addr(),
        data_dir.display()
    );

    let stats = Arc::new(DemoStats::default());
    let demo = (args.workload == Workload::Demo).then(|| {
        tokio::spawn(actor_core::workload::run(
            host.clone(),
            DemoOptions {
                actors: args.actors,
                rate: args.rate,
                ..DemoOptions::default()
            },
            stats.clone(),
        ))
    });
    let progress = tokio::spawn(progress(host.clone(), args.progress_every));

    let started = tokio::time::Instant::now();
    let reason = wait_for_stop(args.duration).await;
    tracing::info!(reason, "shutting down");

    readiness.set_not_ready("shutting down");
    let _ = stop_app.send(());
    let _ = app.await;
    if let Some(demo) = demo {
        demo.abort();
        let _ = demo.await;
    }
    progress.abort();
    host.shutdown().await;
    let secs = started.elapsed().as_secs_f64();
    let calls = host.calls_total();
    println!(
        "summary calls={calls} seconds={secs:.3} calls_per_s={:.1}",
        calls as f64 / secs.max(1e-9)
    );
    server.shutdown().await;
    sweeper.abort();
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or the end of `duration`; says which.
async fn wait_for_stop(duration: Option<Duration>) -> &'static str {
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "ctrl-c",
        () = term => "SIGTERM",
        () = deadline => "duration elapsed",
    }
}

/// Prints `progress live_actors=… retained_label_sets=… actions_per_s=… commits_per_s=…`.
async fn progress(host: Host, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = (
        tokio::time::Instant::now(),
        host.calls_total(),
        commits(&host).await,
    );
    loop {
        tick.tick().await;
        let now = (
            tokio::time::Instant::now(),
            host.calls_total(),
            commits(&host).await,
        );
        let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
        println!(
            "progress live_actors={} retained_label_sets={} actions_per_s={:.1} commits_per_s={:.1}",
            host.live_count(),
            host.metrics().retained_len(),
            (now.1 - last.1) as f64 / secs,
            (now.2 - last.2).max(0.0) / secs,
        );
        last = now;
    }
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
