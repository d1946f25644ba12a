//! Helpers for the cross-crate tests: start the built `actor-host` binary and a
//! real Prometheus server on loopback, talk to both over HTTP. The fleet tests
//! add VictoriaMetrics, vmagent, vmalert and Alertmanager ([`fleet`]).

#![deny(missing_docs)]

pub mod daemon;
pub mod driver;
pub mod fleet;
pub mod promql;
pub mod shipped;
pub mod tools;
pub mod traced;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actor_metrics::scrape::Scrape;

/// Path of the `actor-host` binary built by `cargo test --workspace`, next to
/// this test's own executable (`target/<profile>/deps/..`); `ACTOR_HOST`
/// names another (to show a test failing on an older build).
pub fn actor_host_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ACTOR_HOST") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("actor-host");
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace --release` (or `cargo build --release -p actor-host`)",
        bin.display()
    );
    bin
}

/// Host flags that promote an actor whose queue holds more than 50
/// messages at one 1 s tick ([`Host::queue_until_promoted`]); the demo's own
/// queues stay far below.
pub const PROMOTE_BY_QUEUE: [&str; 6] = [
    "--promotion-tick",
    "1s",
    "--promotion-depth",
    "50",
    "--promotion-depth-ticks",
    "1",
];

/// The `Accept` header Prometheus 2.42 sends by default: OpenMetrics first.
pub const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The `Accept` header Prometheus sends with `--enable-feature=native-histograms`: protobuf first.
pub const PROTOBUF_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A running `actor-host`, killed on drop.
pub struct Host {
    child: Child,
    /// The app API address.
    pub app: SocketAddr,
    /// The metrics address.
    pub metrics: SocketAddr,
    data_dir: PathBuf,
    /// The temp dir the host owns, when the test did not give one.
    owned_data: Option<tempfile::TempDir>,
    /// Where stderr goes when the test reads the log.
    log: Option<tempfile::NamedTempFile>,
}

impl Host {
    /// Starts `actor-host` on ephemeral ports with `args` added, and waits for its
    /// `listening app=… metrics=…` line.
    pub fn start(args: &[&str]) -> Host {
        let data = tempfile::tempdir().expect("temp dir");
        let mut host = Host::start_in(data.path(), args);
        host.owned_data = Some(data);
        host
    }

    /// As [`Host::start`], on the data directory `data_dir`, which outlives the
    /// host (for restarts on the same data); returns once `/readyz` says ready.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Host {
        Host::ready(Host::launch(data_dir, "127.0.0.1:0", args))
    }

    /// As [`Host::start_in`], with stderr kept for [`Host::log`] instead of
    /// passed through.
    pub fn start_logged(data_dir: &Path, args: &[&str]) -> Host {
        Host::start_logged_env(data_dir, args, &[])
    }

    /// As [`Host::start_logged`], with `env` added to the host's environment
    /// (`RUST_LOG`, for one).
    pub fn start_logged_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Host {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let stderr = log.reopen().expect("log file");
        let mut host = Host::launch_with(data_dir, "127.0.0.1:0", args, env, stderr.into());
        host.log = Some(log);
        Host::ready(host)
    }

    /// What the host wrote on stderr so far (started with [`Host::start_logged`]).
    pub fn log(&self) -> String {
        let log = self.log.as_ref().expect("started with Host::start_logged");
        std::fs::read_to_string(log.path()).expect("read the log")
    }

    /// As [`Host::start_in`], with the metrics port on `metrics` (a scraper's
    /// configured target), so a restarted host comes back at the same target.
    pub fn start_at(data_dir: &Path, metrics: SocketAddr, args: &[&str]) -> Host {
        Host::ready(Host::launch(data_dir, &metrics.to_string(), args))
    }

    /// Starts `actor-host` on `data_dir` and returns once it is listening,
    /// ready or not (its catalogue may still be loading).
    pub fn spawn_in(data_dir: &Path, args: &[&str]) -> Host {
        Host::launch(data_dir, "127.0.0.1:0", args)
    }

    fn ready(host: Host) -> Host {
        wait_for(Duration::from_secs(60), "actor-host ready", || {
            (host.readyz().0 == 200).then_some(())
        });
        host
    }

    fn launch(data_dir: &Path, metrics: &str, args: &[&str]) -> Host {
        Host::launch_with(data_dir, metrics, args, &[], Stdio::inherit())
    }

    fn launch_with(
        data_dir: &Path,
        metrics: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Host {
        let mut child = Command::new(actor_host_bin())
            .args([
                "--app-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                metrics,
                "--data-dir",
            ])
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn actor-host");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (app, metrics) = loop {
            let line = lines
                .next()
                .expect("actor-host exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut app = None;
                let mut metrics = None;
                for part in rest.split_whitespace() {
                    if let Some(a) = part.strip_prefix("app=") {
                        app = a.parse().ok();
                    }
                    if let Some(m) = part.strip_prefix("metrics=") {
                        metrics = m.parse().ok();
                    }
                }
                break (app.expect("app addr"), metrics.expect("metrics addr"));
            }
        };
        // Keep draining stdout so the host never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Host {
            child,
            app,
            metrics,
            data_dir: data_dir.to_owned(),
            owned_data: None,
            log: None,
        }
    }

    /// `POST`s to the app API; returns the status and JSON body.
    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let url = format!("http://{}{}", self.app, path);
        json_response(
            ureq::post(&url)
                .set("content-type", "application/json")
                .send_string(body),
        )
    }

    /// `GET`s from the app API.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        json_response(ureq::get(&format!("http://{}{}", self.app, path)).call())
    }

    /// The host's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /readyz` on the metrics port: status and body.
    pub fn readyz(&self) -> (u16, String) {
        self.probe("/readyz")
    }

    /// `GET /healthz` on the metrics port: status and body.
    pub fn healthz(&self) -> (u16, String) {
        self.probe("/healthz")
    }

    fn probe(&self, path: &str) -> (u16, String) {
        let r = match ureq::get(&format!("http://{}{path}", self.metrics)).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{path}: {e}"),
        };
        (r.status(), r.into_string().unwrap_or_default())
    }

    /// Sends SIGKILL and waits: the host gets no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL actor-host");
        self.child.wait().expect("wait for actor-host");
    }

    /// Sends SIGTERM without waiting; [`Host::wait`] collects the exit.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for actor-host")
    }

    /// `DELETE`s on the app API.
    pub fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        json_response(ureq::delete(&format!("http://{}{}", self.app, path)).call())
    }

    /// The raw scrape of the metrics port, at the host's default level.
    pub fn scrape_text(&self) -> String {
        self.scrape_text_with("")
    }

    /// The raw scrape of `/metrics?{query}`.
    pub fn scrape_text_with(&self, query: &str) -> String {
        ureq::get(&format!("http://{}/metrics?{query}", self.metrics))
            .call()
            .expect("scrape")
            .into_string()
            .expect("scrape body")
    }

    /// The scrape of `/metrics?{query}` in the protobuf format, as Prometheus
    /// with native histograms asks for it.
    pub fn scrape_protobuf_with(&self, query: &str) -> Scrape {
        let resp = ureq::get(&format!("http://{}/metrics?{query}", self.metrics))
            .set("Accept", PROTOBUF_ACCEPT)
            .call()
            .expect("scrape");
        assert_eq!(
            resp.header("content-type"),
            Some(actor_metrics::Format::PROTOBUF_CONTENT_TYPE)
        );
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("scrape body");
        Scrape::parse_protobuf(&body).expect("protobuf scrape decodes")
    }

    /// The raw scrape of `/metrics?{query}` in OpenMetrics text, asked for as
    /// Prometheus 2.42 asks by default.
    pub fn scrape_openmetrics_with(&self, query: &str) -> String {
        let resp = ureq::get(&format!("http://{}/metrics?{query}", self.metrics))
            .set("Accept", OPENMETRICS_ACCEPT)
            .call()
            .expect("scrape");
        assert_eq!(
            resp.header("content-type"),
            Some(actor_metrics::Format::OPENMETRICS_CONTENT_TYPE)
        );
        resp.into_string().expect("scrape body")
    }

    /// The parsed scrape of the metrics port at `full` detail, so a test can
    /// read any family.
    pub fn scrape(&self) -> Scrape {
        Scrape::parse(&self.scrape_text_with("detail=full")).expect("scrape parses")
    }

    /// Queues 60 messages that nothing reads on the `counter` actor `key`
    /// (a host started with [`PROMOTE_BY_QUEUE`] promotes it at its next
    /// tick) and waits until the default scrape names it promoted.
    pub fn queue_until_promoted(&self, key: &str) {
        for n in 0..60 {
            let (status, body) = self.post(
                &format!("/actors/counter/{key}/actions/enqueue"),
                &format!("{{\"message\":{n}}}"),
            );
            assert_eq!(status, 200, "{body}");
        }
        poll(Duration::from_secs(30), &format!("{key} promoted"), || {
            let promoted = self.promoted();
            match promoted.get(key).map(String::as_str) {
                Some("queue_depth") => Ok(()),
                _ => Err(format!("{promoted:?}")),
            }
        });
    }

    /// The actors promoted to `full` detail now (the default scrape's
    /// `actor_detail_promoted`), by `actor_key`, with their `reason`.
    pub fn promoted(&self) -> std::collections::BTreeMap<String, String> {
        let scrape = Scrape::parse(&self.scrape_text()).expect("scrape parses");
        scrape
            .series("actor_detail_promoted")
            .map(|s| {
                let label = |name: &str| s.labels.get(name).cloned().unwrap_or_default();
                (label("actor_key"), label("reason"))
            })
            .collect()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_response(r: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// `deploy/{relative}` in this repository.
pub fn deploy_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(relative)
}

/// The text of the shipped `deploy/{relative}` with each `(from, to)` replaced.
/// Every `from` must occur, so a test that runs a shipped file with its
/// addresses and intervals shortened fails loudly when the file changes shape.
pub fn deploy_file_with(relative: &str, replacements: &[(&str, &str)]) -> String {
    let path = deploy_path(relative);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "deploy/{relative} no longer contains {from:?}; update the test's replacements"
        );
        text = text.replace(from, to);
    }
    text
}

/// A free loopback port (bound and released; Prometheus needs a concrete one).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` every 100 ms until it returns `Some`, failing after `timeout` with
/// `what`. For state that changes in real time in another process.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Like [`wait_for`], for conditions worth explaining: `f` returns `Err` with
/// what it saw instead, and a timeout fails with the last of those, so the
/// failure shows the data (a query result) and not only that time ran out.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}"
            ),
        }
        std::thread::park_timeout(Duration::from_millis(200));
    }
}

/// Whether `prometheus` and `promtool` are on PATH; see [`tools::require`]
/// (a loud skip, or a failure in CI).
pub fn prometheus_available(test: &str) -> bool {
    tools::require(test, &[&tools::PROMETHEUS, &tools::PROMTOOL])
}

/// What a [`Prometheus`] process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Scrapes and stores (the default server).
    Server,
    /// A server with `--enable-feature=native-histograms`: it asks targets for
    /// the protobuf format and stores native histograms.
    NativeHistograms,
    /// A server that also accepts remote writes (`--web.enable-remote-write-receiver`).
    Receiver,
    /// A server with `--enable-feature=exemplar-storage`: it keeps the
    /// exemplars it scrapes and answers `/api/v1/query_exemplars`.
    Exemplars,
    /// Agent mode: scrapes and remote-writes, stores nothing queryable.
    Agent,
}

/// A real Prometheus server, killed on drop.
pub struct Prometheus {
    _daemon: daemon::Daemon,
    /// Its HTTP API address.
    pub addr: SocketAddr,
    /// Its query API (not served in agent mode).
    pub api: promql::PromApi,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on loopback with a generated config scraping `target`
    /// every second, and waits until it is ready.
    pub fn start(target: SocketAddr) -> Prometheus {
        Prometheus::start_as(target, Role::Server)
    }

    /// Starts Prometheus in `role` scraping `target` every second.
    pub fn start_as(target: SocketAddr, role: Role) -> Prometheus {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: actor-host\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Prometheus::start_with(&config, role)
    }

    /// Starts Prometheus in `role` with `config` (the text of its config file;
    /// relative rule paths would resolve in a temp dir, so give absolute ones),
    /// and waits until it is ready.
    pub fn start_with(config: &str, role: Role) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let data = dir.path().join("data");
        let name = match role {
            Role::Server | Role::NativeHistograms | Role::Exemplars => "prometheus",
            Role::Receiver => "prometheus-receiver",
            Role::Agent => "prometheus-agent",
        };
        let (daemon, addr) = daemon::serve_on_free_port(
            name,
            dir.path(),
            "/-/ready",
            Duration::from_secs(30),
            |addr| {
                let mut command = Command::new(tools::PROMETHEUS.bin());
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--log.level=warn");
                match role {
                    Role::Server => command.arg(format!("--storage.tsdb.path={}", data.display())),
                    Role::NativeHistograms => command
                        .arg(format!("--storage.tsdb.path={}", data.display()))
                        .arg("--enable-feature=native-histograms"),
                    Role::Receiver => command
                        .arg(format!("--storage.tsdb.path={}", data.display()))
                        .arg("--web.enable-remote-write-receiver"),
                    Role::Exemplars => command
                        .arg(format!("--storage.tsdb.path={}", data.display()))
                        .arg("--enable-feature=exemplar-storage"),
                    Role::Agent => command
                        .arg("--enable-feature=agent")
                        .arg(format!("--storage.agent.path={}", data.display())),
                };
                command
            },
        );
        Prometheus {
            _daemon: daemon,
            addr,
            api: promql::PromApi::prometheus(addr),
            _dir: dir,
        }
    }

    /// Runs an instant query; returns the result vector (`[{metric, value}]`).
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        self.api.query(promql)
    }

    /// The single value of an instant query, if it returned exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        self.api.value(promql)
    }

    /// `Ok` once Prometheus has read the host's families as OpenMetrics, else
    /// what its metadata says. Only an OpenMetrics scrape names a counter
    /// family without `_total` and gives a unit: that is how Prometheus 2.42
    /// shows which format it negotiated (its targets page does not).
    pub fn read_openmetrics(&self) -> Result<(), String> {
        let calls = self.api.metadata("actor_action_calls");
        let calls_total = self.api.metadata("actor_action_calls_total");
        let duration = self.api.metadata("actor_action_duration_seconds");
        let counter = calls.first().is_some_and(|m| m["type"] == "counter");
        let unit = duration.first().is_some_and(|m| m["unit"] == "seconds");
        if counter && calls_total.is_empty() && unit {
            Ok(())
        } else {
            Err(format!(
                "actor_action_calls: {calls:?}, actor_action_calls_total: {calls_total:?}, actor_action_duration_seconds: {duration:?}"
            ))
        }
    }
}
