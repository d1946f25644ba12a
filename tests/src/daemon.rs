//! Long-running external programs (TSDBs, scrapers, Alertmanager) for the
//! end-to-end tests: output goes to a log file, the process is killed and
//! reaped on drop, and when a test panics the log's tail is printed so the
//! failure shows what the program said.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An HTTP client with timeouts, so a hung server fails a test instead of
/// hanging it.
pub fn http() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
    })
}

/// `GET url` and parse the answer as JSON, failing the test on any error.
pub fn get_json(url: &str) -> serde_json::Value {
    let body = http()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_string()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Starts the program `command(addr)` builds on a fresh loopback port, logging
/// into `{log_dir}/{name}.log`, and waits until `GET http://{addr}{ready}`
/// answers 200. The free port is released before the program binds it, so
/// another process can take it in between: on "address already in use" the
/// program is started again on a new port (three tries).
pub fn serve_on_free_port(
    name: &str,
    log_dir: &Path,
    ready: &str,
    timeout: Duration,
    command: impl Fn(SocketAddr) -> Command,
) -> (Daemon, SocketAddr) {
    for attempt in 1.. {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let mut daemon = Daemon::spawn(name, command(addr), log_dir);
        match daemon.ready_or_exit(&format!("http://{addr}{ready}"), timeout) {
            Ok(()) => return (daemon, addr),
            Err(_) if attempt < 3 && daemon.log_tail().contains("address already in use") => {}
            Err(status) => panic!(
                "{name} exited ({status}) before it was ready on {addr}:\n{}",
                daemon.log_tail()
            ),
        }
    }
    unreachable!("the loop returns or panics")
}

/// A running external program, killed on drop.
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr appended to `{log_dir}/{name}.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Daemon {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("create log file");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({command:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Waits until `GET url` answers 200, failing with the log's tail if the
    /// program exits or `timeout` passes first.
    pub fn wait_ready(&mut self, url: &str, timeout: Duration) {
        if let Err(status) = self.ready_or_exit(url, timeout) {
            panic!(
                "{} exited ({status}) before {url} answered:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// Waits until `GET url` answers 200 (`Ok`), or the program exits (`Err`
    /// with its status); fails with the log's tail if `timeout` passes first.
    pub fn ready_or_exit(
        &mut self,
        url: &str,
        timeout: Duration,
    ) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if http().get(url).call().is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(status);
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready at {url} after {timeout:?}:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    /// The last 40 lines of the program's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Straight to the terminal: libtest's capture would hide an eprintln.
            let _ = writeln!(
                std::io::stderr(),
                "--- {} (pid {}) output, last lines ---\n{}",
                self.name,
                self.child.id(),
                self.log_tail()
            );
        }
    }
}
