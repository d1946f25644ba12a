//! The shipped `deploy/` files run by a test in compressed time: every range
//! and `for:` of the rule files divided by [`SCALE`] (`[5m]` → `[20s]`,
//! `for: 5m` → `for: 20s`), Prometheus scraping and evaluating every second,
//! Alertmanager's `group_wait`s divided alike, and the receivers pointed at a
//! local relay. The files in the repository keep their production values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{deploy_file_with, deploy_path};

/// How much faster than production the rules' windows and `for:` run.
pub const SCALE: u64 = 15;

/// The rule files `prometheus.yml` loads, relative to it.
pub const RULE_FILES: [&str; 2] = ["alerts.yml", "recording.yml"];

/// `{number}{unit}` as seconds, for a Prometheus duration such as `5m`.
fn seconds(duration: &str) -> Option<u64> {
    let unit = duration.chars().last()?;
    let n: u64 = duration[..duration.len() - 1].parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    Some(n * factor)
}

/// `duration` divided by [`SCALE`], at least 1 s, as Prometheus writes it.
fn scaled(duration: &str) -> Option<String> {
    seconds(duration).map(|s| format!("{}s", (s / SCALE).max(1)))
}

/// A rule file's text with every range selector `[d]` and every `for: d`
/// divided by [`SCALE`] (at least 1 s).
pub fn compressed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(d) = trimmed.strip_prefix("for: ")
            && let Some(s) = scaled(d.trim())
        {
            out.push_str(&line[..line.len() - trimmed.len()]);
            out.push_str(&format!("for: {s}\n"));
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']').map(|c| open + c) else {
                break;
            };
            out.push_str(&rest[..open]);
            match scaled(&rest[open + 1..close]) {
                Some(s) => out.push_str(&format!("[{s}]")),
                None => out.push_str(&rest[open..=close]),
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The shipped rule files, compressed, written into `dir`; returns their paths.
pub fn compressed_rule_files(dir: &Path) -> Vec<PathBuf> {
    RULE_FILES
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(deploy_path(&format!("prometheus/{f}")))
                .unwrap_or_else(|e| panic!("{f}: {e}"));
            let path = dir.join(f);
            std::fs::write(&path, compressed(&text)).expect("write rule file");
            path
        })
        .collect()
}

/// The shipped `prometheus.yml` scraping `target` every second with the rule
/// files `rules`, the debug job reading `debug_key`, alerts to `alertmanager`.
pub fn prometheus_config(
    target: SocketAddr,
    rules: &[PathBuf],
    debug_key: &str,
    alertmanager: &str,
) -> String {
    let shipped: String = RULE_FILES.iter().map(|f| format!("  - {f}\n")).collect();
    let rule_files: String = rules
        .iter()
        .map(|r| format!("  - {}\n", r.display()))
        .collect();
    deploy_file_with(
        "prometheus/prometheus.yml",
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("scrape_timeout: 10s", "scrape_timeout: 900ms"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            (&shipped, &rule_files),
            (
                "targets: ['localhost:9091']",
                &format!("targets: ['{target}']"),
            ),
            (
                "targets: ['localhost:9093']",
                &format!("targets: ['{alertmanager}']"),
            ),
            (
                "actor_key: ['user-42']",
                &format!("actor_key: ['{debug_key}']"),
            ),
        ],
    )
}

/// The shipped `alertmanager.yml` notifying `page` and `ticket` (webhook URLs)
/// instead of its placeholders, every `group_wait` divided by [`SCALE`]:
/// the per-actor ticket's 10m (which gives a page the time to inhibit it)
/// becomes 40 s, as the rules' `for: 5m` became 20 s.
pub fn alertmanager_config(page: &str, ticket: &str) -> String {
    let text = deploy_file_with(
        "alertmanager/alertmanager.yml",
        &[
            ("https://pager.example.com/actor-host", page),
            ("https://tickets.example.com/actor-host", ticket),
        ],
    );
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        match trimmed
            .strip_prefix("group_wait: ")
            .and_then(|d| scaled(d.trim()))
        {
            Some(s) => {
                out.push_str(&line[..line.len() - trimmed.len()]);
                out.push_str(&format!("group_wait: {s}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_divides_ranges_and_for_only() {
        let text = "        expr: rate(x[5m]) > 1 and y[1h] > 0 and z{a=\"[b]\"}\n        for: 10m\n        labels:\n";
        assert_eq!(
            compressed(text),
            "        expr: rate(x[20s]) > 1 and y[240s] > 0 and z{a=\"[b]\"}\n        for: 40s\n        labels:\n"
        );
    }

    #[test]
    fn alertmanager_group_waits_are_divided() {
        let text = alertmanager_config("http://p", "http://t");
        let waits: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("group_wait: "))
            .collect();
        assert_eq!(waits, ["2s", "1s", "40s", "1s"], "{text}");
        assert!(!text.contains("example.com/actor-host"), "{text}");
    }
}
