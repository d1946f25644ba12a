//! The pieces of a monitoring pipeline past one Prometheus, as real processes
//! on loopback: VictoriaMetrics (the TSDB), vmagent shards (scrapers), vmalert
//! (rules), Alertmanager, and a webhook relay that stands in for the person
//! at the end. Each runs from its Debian package ([`crate::tools`]), logs into
//! the caller's directory and is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, get_json, serve_on_free_port};
use crate::promql::PromApi;
use crate::tools::{ALERTMANAGER, Tool, VICTORIA_METRICS, VMAGENT, VMALERT};

const READY: Duration = Duration::from_secs(30);

/// Starts `tool` on a fresh loopback port with the arguments `args(port)`
/// gives, logging into `dir`, and waits until `GET {ready}` answers 200.
fn serve(
    name: &str,
    tool: &Tool,
    dir: &Path,
    ready: &str,
    args: impl Fn(SocketAddr) -> Vec<String>,
) -> (Daemon, SocketAddr) {
    serve_on_free_port(name, dir, ready, READY, |addr| {
        let mut command = Command::new(tool.bin());
        command.args(args(addr));
        command
    })
}

/// A single-node VictoriaMetrics server.
pub struct VictoriaMetrics {
    _daemon: Daemon,
    /// Its query API.
    pub api: PromApi,
}

impl VictoriaMetrics {
    /// Starts it with its data in `dir`. Samples are visible to queries as
    /// soon as they are written (`-search.latencyOffset=0s`; the default
    /// hides the last 30 s) and query results are not cached.
    pub fn start(dir: &Path) -> VictoriaMetrics {
        let (daemon, addr) = serve(
            "victoria-metrics",
            &VICTORIA_METRICS,
            dir,
            "/health",
            |addr| {
                vec![
                    format!(
                        "-storageDataPath={}",
                        dir.join("victoria-metrics-data").display()
                    ),
                    format!("-httpListenAddr={addr}"),
                    "-search.latencyOffset=0s".into(),
                    "-search.disableCache".into(),
                    "-loggerLevel=WARN".into(),
                ]
            },
        );
        VictoriaMetrics {
            _daemon: daemon,
            api: PromApi::victoria_metrics(addr),
        }
    }

    /// Its base URL (vmalert's datasource and remote-write target).
    pub fn url(&self) -> String {
        format!("http://{}", self.api.addr)
    }
}

/// One vmagent shard.
pub struct Vmagent {
    _daemon: Daemon,
    /// Its HTTP address (`/api/v1/targets`).
    pub addr: SocketAddr,
}

impl Vmagent {
    /// Starts shard `member` of `members` scraping what `config` lists, and
    /// remote-writing to `remote_write`.
    pub fn start(
        dir: &Path,
        config: &Path,
        member: usize,
        members: usize,
        remote_write: &str,
    ) -> Vmagent {
        let name = format!("vmagent-{member}");
        let (daemon, addr) = serve(&name, &VMAGENT, dir, "/health", |addr| {
            vec![
                format!("-promscrape.config={}", config.display()),
                format!("-promscrape.cluster.membersCount={members}"),
                format!("-promscrape.cluster.memberNum={member}"),
                format!("-remoteWrite.url={remote_write}"),
                format!(
                    "-remoteWrite.tmpDataPath={}",
                    dir.join(format!("{name}-queue")).display()
                ),
                "-remoteWrite.flushInterval=1s".into(),
                format!("-httpListenAddr={addr}"),
                "-loggerLevel=WARN".into(),
            ]
        });
        Vmagent {
            _daemon: daemon,
            addr,
        }
    }

    /// The `instance` of every target this shard scrapes.
    pub fn targets(&self) -> Vec<String> {
        let resp = get_json(&format!("http://{}/api/v1/targets", self.addr));
        let mut targets: Vec<String> = resp["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            // The main job's: each host also has an actor-host-promoted
            // target, which may land on another shard.
            .filter(|t| t["labels"]["job"] == "actor-host")
            .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_owned))
            .collect();
        targets.sort();
        targets
    }
}

/// vmalert evaluating rule files against a datasource.
pub struct Vmalert {
    _daemon: Daemon,
}

impl Vmalert {
    /// Starts vmalert evaluating `rules` every `interval` against `tsdb`
    /// (which also receives the recording rules' results), sending alerts to
    /// `alertmanager`.
    pub fn start(
        dir: &Path,
        rules: &[PathBuf],
        tsdb: &str,
        alertmanager: &str,
        interval: &str,
    ) -> Vmalert {
        let (daemon, _) = serve("vmalert", &VMALERT, dir, "/health", |addr| {
            let mut args: Vec<String> = rules
                .iter()
                .map(|r| format!("-rule={}", r.display()))
                .collect();
            args.extend([
                format!("-datasource.url={tsdb}"),
                format!("-remoteWrite.url={tsdb}"),
                "-remoteWrite.flushInterval=1s".into(),
                format!("-notifier.url={alertmanager}"),
                format!("-evaluationInterval={interval}"),
                format!("-httpListenAddr={addr}"),
                "-loggerLevel=WARN".into(),
            ]);
            args
        });
        Vmalert { _daemon: daemon }
    }
}

/// A real Alertmanager, clustering off.
pub struct Alertmanager {
    _daemon: Daemon,
    /// Its HTTP address.
    pub addr: SocketAddr,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (the text of its config file).
    pub fn start(dir: &Path, config: &str) -> Alertmanager {
        let config_path = dir.join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("write alertmanager.yml");
        let (daemon, addr) = serve("alertmanager", &ALERTMANAGER, dir, "/-/ready", |addr| {
            vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.path={}", dir.join("alertmanager-data").display()),
                format!("--web.listen-address={addr}"),
                "--cluster.listen-address=".into(),
                "--log.level=warn".into(),
            ]
        });
        Alertmanager {
            _daemon: daemon,
            addr,
        }
    }

    /// Its base URL (the notifier URL for vmalert or Prometheus).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every alert it holds (`GET /api/v2/alerts`).
    pub fn alerts(&self) -> Vec<Value> {
        get_json(&format!("http://{}/api/v2/alerts", self.addr))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// One webhook notification: the path it was posted to and its JSON body.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The request path (`/page`, `/ticket`).
    pub path: String,
    /// The body Alertmanager sent (`{receiver, status, alerts: [...]}`).
    pub body: Value,
}

/// An HTTP endpoint that records every POST it gets: where Alertmanager's
/// webhooks land, in place of a pager or a ticket system.
pub struct WebhookRelay {
    /// Its address.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookRelay {
    /// Listens on an ephemeral loopback port.
    pub fn start() -> WebhookRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(n) = read_notification(stream) {
                        received.lock().expect("relay lock").push(n);
                    }
                }
            })
        };
        WebhookRelay {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Notification> {
        self.received.lock().expect("relay lock").clone()
    }
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of JSON),
/// answers 200 and closes.
fn read_notification(stream: TcpStream) -> Option<Notification> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Notification {
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

impl Drop for WebhookRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
