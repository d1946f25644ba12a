//! Helpers for the cross-crate tests: start the built `actor-host` binary and a
//! real Prometheus server on loopback, talk to both over HTTP.

#![deny(missing_docs)]

pub mod tools;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actor_metrics::scrape::Scrape;

/// Path of the `actor-host` binary built by `cargo test --workspace`, next to
/// this test's own executable (`target/<profile>/deps/..`).
pub fn actor_host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("actor-host");
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace --release` (or `cargo build --release -p actor-core`)",
        bin.display()
    );
    bin
}

/// A running `actor-host`, killed on drop.
pub struct Host {
    child: Child,
    /// The app API address.
    pub app: SocketAddr,
    /// The metrics address.
    pub metrics: SocketAddr,
    data: tempfile::TempDir,
}

impl Host {
    /// Starts `actor-host` on ephemeral ports with `args` added, and waits for its
    /// `listening app=… metrics=…` line.
    pub fn start(args: &[&str]) -> Host {
        let data = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(actor_host_bin())
            .args([
                "--app-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
            data,
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
        self.data.path()
    }

    /// `DELETE`s on the app API.
    pub fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        json_response(ureq::delete(&format!("http://{}{}", self.app, path)).call())
    }

    /// The raw scrape of the metrics port.
    pub fn scrape_text(&self) -> String {
        ureq::get(&format!("http://{}/metrics", self.metrics))
            .call()
            .expect("scrape")
            .into_string()
            .expect("scrape body")
    }

    /// The parsed scrape of the metrics port.
    pub fn scrape(&self) -> Scrape {
        Scrape::parse(&self.scrape_text()).expect("scrape parses")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for actor-host")
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

/// Whether `prometheus` and `promtool` are on PATH; see [`tools::require`]
/// (a loud skip, or a failure in CI).
pub fn prometheus_available(test: &str) -> bool {
    tools::require(test, &[&tools::PROMETHEUS, &tools::PROMTOOL])
}

/// A real Prometheus server scraping one target every second, killed on drop.
pub struct Prometheus {
    child: Child,
    /// Its HTTP API address.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on loopback with a generated config scraping `target`
    /// every second, and waits until it is ready.
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: actor-host\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        wait_for(Duration::from_secs(30), "prometheus ready", || {
            ureq::get(&format!("http://{addr}/-/ready"))
                .call()
                .ok()
                .filter(|r| r.status() == 200)
        });
        p
    }

    /// Runs an instant query; returns the result vector (`[{metric, value}]`).
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body = ureq::get(&format!("http://{}/api/v1/query", self.addr))
            .query("query", promql)
            .call()
            .expect("query")
            .into_string()
            .expect("query body");
        let resp: serde_json::Value = serde_json::from_str(&body).expect("query json");
        assert_eq!(resp["status"], "success", "{promql}: {resp}");
        resp["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant query, if it returned exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        if r.len() != 1 {
            return None;
        }
        r[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
