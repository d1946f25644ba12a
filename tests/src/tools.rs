//! The external programs the end-to-end tests run, each from a Debian package
//! and found on `PATH`. A test that lacks one says so on the terminal and
//! skips; in CI it fails instead, so a missing package can never pass as green.

use std::io::Write;
use std::path::PathBuf;

/// One program and the Debian package that ships it.
#[derive(Debug)]
pub struct Tool {
    /// Names to look for on `PATH`, in order (Debian renames some binaries).
    pub names: &'static [&'static str],
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// `prometheus`, the server.
pub const PROMETHEUS: Tool = Tool {
    names: &["prometheus"],
    package: "prometheus",
};
/// `promtool`, Prometheus' checker.
pub const PROMTOOL: Tool = Tool {
    names: &["promtool"],
    package: "prometheus",
};
/// The single-node VictoriaMetrics server.
pub const VICTORIA_METRICS: Tool = Tool {
    names: &["victoria-metrics"],
    package: "victoria-metrics",
};
/// The scraping agent of VictoriaMetrics.
pub const VMAGENT: Tool = Tool {
    names: &["vmagent"],
    package: "victoria-metrics",
};
/// The rule evaluator of VictoriaMetrics.
pub const VMALERT: Tool = Tool {
    names: &["vmalert"],
    package: "victoria-metrics",
};
/// Alertmanager (Debian calls the binary `prometheus-alertmanager`).
pub const ALERTMANAGER: Tool = Tool {
    names: &["prometheus-alertmanager", "alertmanager"],
    package: "prometheus-alertmanager",
};
/// `amtool`, Alertmanager's checker.
pub const AMTOOL: Tool = Tool {
    names: &["amtool"],
    package: "prometheus-alertmanager",
};

/// Debian's `chromium`, run headless (the `/actors` page in a real browser).
pub const CHROMIUM: Tool = Tool {
    names: &["chromium"],
    package: "chromium",
};

impl Tool {
    /// The first of `names` found as a file on `PATH`.
    pub fn find(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| self.names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    }

    /// The program's path. Call after [`require`] said it is there.
    pub fn bin(&self) -> PathBuf {
        self.find().unwrap_or_else(|| {
            panic!(
                "{} not on PATH; guard the test with tools::require",
                self.names[0]
            )
        })
    }
}

/// Whether a missing tool must fail the test: in CI (`CI` set to anything but
/// `false`/`0`), or when `ACTOR_E2E_REQUIRE_TOOLS=1` (`.ci/run` exports it).
pub fn tools_required() -> bool {
    let set = |name: &str| {
        std::env::var(name)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("ACTOR_E2E_REQUIRE_TOOLS") || set("CI")
}

/// Whether every tool is on `PATH`. If one is missing: in CI the test fails
/// here; elsewhere a `SKIPPED` line goes straight to the terminal (past the
/// test harness' output capture, so it shows even when the test passes) and
/// the caller returns early.
pub fn require(test: &str, tools: &[&Tool]) -> bool {
    let missing: Vec<&Tool> = tools
        .iter()
        .copied()
        .filter(|t| t.find().is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|t| t.names[0]).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.sort_unstable();
    packages.dedup();
    let (names, packages) = (names.join(", "), packages.join(" "));
    assert!(
        !tools_required(),
        "{test}: {names} not installed, and this run requires it (CI or ACTOR_E2E_REQUIRE_TOOLS is set); install with apt-get install -y {packages}"
    );
    // `eprintln!` would be captured by libtest and shown only on failure. The
    // leading newline ends libtest's `test name ... ` line.
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED {test}: {names} not installed; install with apt-get install -y {packages}"
    );
    false
}

/// The reference OpenMetrics parser, Python's
/// `prometheus_client.openmetrics.parser` (Debian `python3-prometheus-client`,
/// which Debian's own `/usr/bin/python3` imports; a `python3` earlier on
/// `PATH`, such as a pyenv shim, may not).
#[derive(Debug)]
pub struct ReferenceParser {
    python: PathBuf,
}

/// The parser's package.
const REFERENCE_PARSER_PACKAGE: &str = "python3-prometheus-client";

/// Reads stdin with the reference parser; prints the number of samples, or
/// exits 1 with the parser's complaint.
const REFERENCE_PARSER_SCRIPT: &str = "\
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
try:
    families = list(text_string_to_metric_families(sys.stdin.read()))
except Exception as e:
    print(f'{type(e).__name__}: {e}')
    sys.exit(1)
print(sum(len(f.samples) for f in families))
";

impl ReferenceParser {
    /// The first Python that imports the parser, or, if none does, what
    /// [`require`] does for a missing tool: fail in CI, else a `SKIPPED` line
    /// and `None`.
    pub fn require(test: &str) -> Option<Self> {
        let on_path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("python3"))
                    .collect()
            })
            .unwrap_or_default();
        let found = std::iter::once(PathBuf::from("/usr/bin/python3"))
            .chain(on_path)
            .filter(|p| p.is_file())
            .find(|p| {
                std::process::Command::new(p)
                    .args(["-c", "import prometheus_client.openmetrics.parser"])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
        if let Some(python) = found {
            return Some(ReferenceParser { python });
        }
        assert!(
            !tools_required(),
            "{test}: no python3 imports prometheus_client.openmetrics.parser, and this run requires it (CI or ACTOR_E2E_REQUIRE_TOOLS is set); install with apt-get install -y {REFERENCE_PARSER_PACKAGE}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED {test}: prometheus_client.openmetrics.parser not importable; install with apt-get install -y {REFERENCE_PARSER_PACKAGE}"
        );
        None
    }

    /// Parses `body`: the samples the parser read, or its complaint.
    pub fn parse(&self, body: &str) -> Result<usize, String> {
        use std::process::{Command, Stdio};
        let mut child = Command::new(&self.python)
            .args(["-c", REFERENCE_PARSER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the reference parser");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = body.to_owned();
        // Written from a thread so a large body cannot deadlock on full pipes.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("reference parser output");
        writer
            .join()
            .expect("writer thread")
            .expect("write to the reference parser");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() {
            stdout
                .parse()
                .map_err(|_| format!("unexpected output {stdout:?}"))
        } else {
            Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}
