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
