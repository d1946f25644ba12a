//! `actor-host`'s flags: their parsers and what they check, the bearer token
//! and the default bound on live actors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actor_metrics::DetailLevel;
use clap::{Parser, ValueEnum};

/// A small real actor host that exports per-actor Prometheus metrics.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Args {
    /// Directory for the actors' SQLite files [default: a fresh temp dir, removed at exit].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address of the JSON app API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) app_addr: SocketAddr,
    /// Address of the metrics port (`/metrics`, `/healthz`, `/readyz`,
    /// `/actors`, `/actors/top`). It serves at most 256 connections (and 16
    /// more, one probe each, when those are taken) and 32 scrapes at once. A
    /// client whose acknowledgements do not advance for 30 s, or that takes
    /// longer than 5 min to take one response however steadily it reads, is
    /// cut; a connection's close waits, under those bounds, until the client
    /// has the whole response.
    #[arg(long, default_value = "127.0.0.1:9091")]
    pub(crate) metrics_addr: SocketAddr,
    /// `envoy_key` label of every per-actor series [default: hostname:pid].
    #[arg(long)]
    pub(crate) envoy_key: Option<String>,
    /// How long a stopped actor's series stay exported (at least 1s: shorter
    /// lets a stopped actor's last values vanish between two scrapes).
    #[arg(long, default_value = "10m", value_parser = duration_at_least(MIN_RETENTION))]
    pub(crate) retention: Duration,
    /// How often the sweeper removes expired label sets (at least 1ms).
    #[arg(long, default_value = "10s", value_parser = duration_at_least(actor_metrics::Config::MIN_SWEEP_INTERVAL))]
    pub(crate) sweep_interval: Duration,
    /// Cap on retained label sets (live + expiring).
    #[arg(long, default_value_t = actor_metrics::Config::DEFAULT_MAX_RETAINED)]
    pub(crate) max_retained: usize,
    /// Per-actor detail exported by default: off, core or full (aggregates are
    /// always exported; a scrape may ask for another level with `?detail=`).
    #[arg(long, default_value_t = DetailLevel::Core)]
    pub(crate) per_actor_detail: DetailLevel,
    /// Built-in workload to run.
    #[arg(long, value_enum, default_value_t = Workload::Demo)]
    pub(crate) workload: Workload,
    /// Actors the demo keeps in play.
    #[arg(long, default_value_t = 20)]
    pub(crate) actors: usize,
    /// Demo action calls per second, paced exactly (0 = as fast as possible).
    #[arg(long, default_value_t = 200)]
    pub(crate) rate: u64,
    /// Stop after this long [default: run until Ctrl-C / SIGTERM].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// How long stopping an actor waits for its user tasks; at shutdown, also
    /// how long an action in flight may still run before it is cancelled (at
    /// least 10ms).
    #[arg(long, default_value = "5s", value_parser = duration_at_least(MIN_SHUTDOWN_TIMEOUT))]
    pub(crate) shutdown_timeout: Duration,
    /// Bearer token required on `/metrics` [default: none]. Visible to anyone
    /// who can list processes; prefer --metrics-token-file.
    #[arg(long, conflicts_with = "metrics_token_file")]
    pub(crate) metrics_token: Option<String>,
    /// File holding the bearer token required on `/metrics` (surrounding
    /// whitespace, such as a final newline, is not part of it).
    #[arg(long)]
    pub(crate) metrics_token_file: Option<PathBuf>,
    /// How often the host logs a progress event (at least 100ms); `0s` turns
    /// it off.
    #[arg(long, default_value = "5s", value_parser = parse_progress)]
    pub(crate) progress_every: Duration,
    /// An actor with no call, open connection, queued message or user task for
    /// this long goes to sleep (its database closes; its series stay retained;
    /// the next call wakes it as a new generation, a new label set). At least
    /// 100ms; `never` disables.
    #[arg(long, default_value = "5m", value_parser = parse_idle)]
    pub(crate) idle_timeout: Idle,
    /// Most actors live at once; waking one more puts the least recently used
    /// idle one to sleep [default: 10000, lowered to fit the open-file limit at
    /// 2 descriptors per live actor plus 256].
    #[arg(long)]
    pub(crate) max_live_actors: Option<usize>,
    /// Most messages in each actor's in-memory queue (`enqueue` past it is 503).
    #[arg(long, default_value_t = actor_core::config::DEFAULT_QUEUE_MAX_MESSAGES, value_parser = at_least_one)]
    pub(crate) queue_max_messages: usize,
    /// Most bytes in each actor's in-memory queue, as stored: the messages'
    /// JSON text (`enqueue` past it is 503; a message larger than it, 413).
    #[arg(long, default_value_t = actor_core::config::DEFAULT_QUEUE_MAX_BYTES, value_parser = at_least_one)]
    pub(crate) queue_max_bytes: usize,
    /// Most calls waiting in each actor's inbox (past it: 503).
    #[arg(long, default_value_t = actor_core::config::DEFAULT_INBOX_CAPACITY, value_parser = at_least_one)]
    pub(crate) inbox_capacity: usize,
    /// Most bytes the calls waiting in each actor's inbox hold, each counted
    /// as its payload's JSON text or the parsed value it becomes, whichever is
    /// larger (`[0,0,…]` takes 16 times its text). Past it: 503; a call that
    /// alone passes it: 413. [default: 32 MiB]
    #[arg(long, default_value_t = actor_core::config::DEFAULT_INBOX_MAX_BYTES, hide_default_value = true, value_parser = at_least_one)]
    pub(crate) inbox_max_bytes: usize,
    /// Most bytes the whole host holds for clients: request bodies being
    /// read, call payloads (waiting or running), queued messages and user
    /// tasks. Past it new ones are refused (503); nothing accepted is dropped.
    /// The host's memory is at most its base (about 10 MB), plus about 64 KB
    /// per live actor and 4.2 KB per retained label set, plus this.
    /// [default: 256 MiB]
    #[arg(long, default_value_t = actor_core::config::DEFAULT_MAX_CLIENT_BYTES, hide_default_value = true, value_parser = at_least_one)]
    pub(crate) max_client_bytes: usize,
    /// Most user tasks of one actor at once (`spawn_task` past it: 429).
    #[arg(long, default_value_t = actor_core::config::DEFAULT_MAX_TASKS_PER_ACTOR, value_parser = at_least_one)]
    pub(crate) max_tasks_per_actor: usize,
    /// Most user tasks of the whole host at once (`spawn_task` past it: 429).
    #[arg(long, default_value_t = actor_core::config::DEFAULT_MAX_TASKS, value_parser = at_least_one)]
    pub(crate) max_tasks: usize,
    /// Bound of each actor's SQLite page cache, in KiB.
    #[arg(long, default_value_t = actor_core::database::DEFAULT_CACHE_KIB)]
    pub(crate) sqlite_cache_kib: u32,
    /// Page size of new actor databases, in bytes (a power of two from 512 to
    /// 65536); existing databases keep theirs.
    #[arg(long, default_value_t = actor_core::database::DEFAULT_PAGE_SIZE, value_parser = parse_page_size)]
    pub(crate) sqlite_page_size: u32,
    /// How long to wait for another actor-host to release the data dir.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) data_dir_lock_timeout: Duration,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Most actors promoted to full detail at once (the worst kept; a
    /// newcomer displaces a promoted actor only at twice its score); each
    /// costs a full actor's series in the `/metrics?promoted=1` scrape (the
    /// shipped actor-host-promoted job). 0 turns promotion off
    /// (`/actors/top` still answers).
    #[arg(long, default_value_t = 64, help_heading = "Detail follows trouble")]
    pub(crate) max_promoted: usize,
    /// The window the promotion rules read (at least 1s); `/actors/top` also
    /// offers five times it.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration, help_heading = "Detail follows trouble")]
    pub(crate) promotion_window: Duration,
    /// How often every actor's figures are taken and the rules applied (10ms
    /// to the window).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Detail follows trouble")]
    pub(crate) promotion_tick: Duration,
    /// How long an actor stays promoted after it last stood out.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, help_heading = "Detail follows trouble")]
    pub(crate) promotion_hold: Duration,
    /// Fewest calls in the window before an error ratio or latency counts.
    #[arg(long, default_value_t = 20, help_heading = "Detail follows trouble")]
    pub(crate) promotion_min_calls: u64,
    /// Error ratio that promotes, at least (and at least
    /// --promotion-error-factor × the rest of its type's).
    #[arg(long, default_value_t = 0.05, help_heading = "Detail follows trouble")]
    pub(crate) promotion_error_ratio: f64,
    /// See --promotion-error-ratio.
    #[arg(long, default_value_t = 10.0, help_heading = "Detail follows trouble")]
    pub(crate) promotion_error_factor: f64,
    /// Mean latency that promotes, as a multiple of its type's p99.
    #[arg(long, default_value_t = 5.0, help_heading = "Detail follows trouble")]
    pub(crate) promotion_latency_factor: f64,
    /// With native buckets: a p99 over the window that promotes, as a
    /// multiple of its type's p99 (needs 100 calls in the window).
    #[arg(long, default_value_t = 10.0, help_heading = "Detail follows trouble")]
    pub(crate) promotion_p99_factor: f64,
    /// Queue or inbox depth that promotes when held for
    /// --promotion-depth-ticks ticks.
    #[arg(long, default_value_t = 100, help_heading = "Detail follows trouble")]
    pub(crate) promotion_depth: u64,
    /// See --promotion-depth.
    #[arg(long, default_value_t = 2, help_heading = "Detail follows trouble")]
    pub(crate) promotion_depth_ticks: u8,
    /// A promoted actor still stands out while its figure is at least this
    /// share of the threshold (hysteresis), in (0, 1].
    #[arg(long, default_value_t = 0.5, help_heading = "Detail follows trouble")]
    pub(crate) promotion_release: f64,
}

/// An idle timeout, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle(pub(crate) Option<Duration>);

pub(crate) fn parse_idle(s: &str) -> Result<Idle, String> {
    if s == "never" {
        return Ok(Idle(None));
    }
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < actor_core::config::MIN_IDLE_TIMEOUT {
        return Err(format!(
            "{s} is shorter than the minimum {} (every wake is a new generation and label set); `never` turns idle sleep off",
            humantime::format_duration(actor_core::config::MIN_IDLE_TIMEOUT)
        ));
    }
    Ok(Idle(Some(d)))
}

/// Shortest `--retention`: 1 second.
const MIN_RETENTION: Duration = Duration::from_secs(1);
/// Shortest `--shutdown-timeout`: 10 ms.
const MIN_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(10);
/// Shortest `--progress-every` other than `0s`: 100 ms.
const MIN_PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// `--progress-every`: `0s` (off) or at least [`MIN_PROGRESS_EVERY`].
pub(crate) fn parse_progress(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if !d.is_zero() && d < MIN_PROGRESS_EVERY {
        return Err(format!(
            "{s} is shorter than the minimum {}; `0s` turns progress lines off",
            humantime::format_duration(MIN_PROGRESS_EVERY)
        ));
    }
    Ok(d)
}

/// A count or size bound: at least 1.
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A duration parser that refuses anything shorter than `min`.
pub(crate) fn duration_at_least(
    min: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| {
        let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
        if d < min {
            return Err(format!(
                "{s} is shorter than the minimum {}",
                humantime::format_duration(min)
            ));
        }
        Ok(d)
    }
}

pub(crate) fn parse_page_size(s: &str) -> Result<u32, String> {
    let size: u32 = s.parse().map_err(|e| format!("{e}"))?;
    actor_sqlite_hooks::HookOptions {
        page_size: Some(size),
        ..Default::default()
    }
    .check()
    .map_err(|e| e.to_string())?;
    Ok(size)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    Demo,
    None,
}

/// The bearer token for `/metrics`, from `--metrics-token` or read from
/// `--metrics-token-file`; an unreadable or empty file is an error.
pub(crate) fn metrics_token(args: &Args) -> Result<Option<String>, String> {
    let Some(path) = &args.metrics_token_file else {
        return Ok(args.metrics_token.clone());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --metrics-token-file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "--metrics-token-file {} is empty; put the token in it",
            path.display()
        ));
    }
    Ok(Some(token.to_owned()))
}

/// The bound on live actors when none is given: [`actor_core::config::DEFAULT_MAX_LIVE_ACTORS`],
/// lowered so that two descriptors per live actor plus 256 for sockets and the
/// process itself fit the open-file limit.
pub(crate) fn default_max_live() -> usize {
    const RESERVED: u64 = 256;
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
    match limit {
        Some(limit) => {
            let fits = usize::try_from(limit.saturating_sub(RESERVED) / 2).unwrap_or(usize::MAX);
            actor_core::config::DEFAULT_MAX_LIVE_ACTORS.min(fits).max(1)
        }
        None => actor_core::config::DEFAULT_MAX_LIVE_ACTORS,
    }
}
