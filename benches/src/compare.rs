//! [`assert_same_per_actor_samples`]: two scrapes parsed with a real parser,
//! every per-actor series checked to read back the same value; a peer's
//! OpenMetrics text is read through [`TextFormat::OpenMetrics`].

use std::collections::{BTreeMap, HashMap};

use actor_metrics::families::Kind;
use actor_metrics::families::{FAMILIES, FamilyInfo};
use actor_metrics::scrape::Scrape;

use crate::client::openmetrics_name;

/// The `# HELP name …` block of one family (up to the next `# HELP`).
fn family_block<'a>(text: &'a str, name: &str) -> &'a str {
    let pat = format!("# HELP {name} ");
    let Some((start, _)) = text
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
    else {
        return "";
    };
    let end = text[start + 1..]
        .find("\n# HELP ")
        .map_or(text.len(), |e| start + 1 + e + 1);
    &text[start..end]
}

type SeriesKey = (String, BTreeMap<String, String>);

/// How a scrape is written, for [`assert_same_per_actor_samples`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// Prometheus text format 0.0.4: ours and `prometheus::TextEncoder`.
    Prometheus,
    /// OpenMetrics text as `prometheus_client::encoding::text::encode` writes
    /// it: a counter family's `# HELP`/`# TYPE` name lacks the `_total` its
    /// samples carry, the text ends with `# EOF`, and whole-number bounds keep
    /// their fraction (`le="1.0"` where 0.0.4 writers print `le="1"`).
    OpenMetrics,
}

/// The `# TYPE` word of a kind.
fn type_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    }
}

/// The samples of family `f` in `text`, keyed by name and labels, with `le`
/// in one canonical spelling (the formats print the same bound differently).
fn parse_block(text: &str, f: &FamilyInfo, format: TextFormat) -> HashMap<SeriesKey, f64> {
    let parsed = match format {
        TextFormat::Prometheus => Scrape::parse(family_block(text, f.name)),
        TextFormat::OpenMetrics => {
            // Check the header as OpenMetrics writes it, then state it the 0.0.4
            // way (named like the samples) so the same parser reads the samples.
            let name = openmetrics_name(f);
            let block = family_block(text, name);
            let typed = format!("\n# TYPE {name} {}\n", type_word(f.kind));
            assert!(block.contains(&typed), "{}: no {typed:?}", f.name);
            let mut restated = format!("# TYPE {} {}\n", f.name, type_word(f.kind));
            for line in block.lines().filter(|l| !l.starts_with('#')) {
                restated.push_str(line);
                restated.push('\n');
            }
            Scrape::parse(&restated)
        }
    };
    let parsed = parsed.unwrap_or_else(|e| panic!("{format:?} {}: {e}", f.name));
    parsed
        .samples()
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            if let Some(le) = labels.get_mut("le") {
                let bound: f64 = le.parse().unwrap_or_else(|_| panic!("le={le:?}"));
                *le = bound.to_string();
            }
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

/// Parses both scrapes family by family (to bound memory) with
/// [`Scrape::parse`] and asserts that every per-actor family has exactly the same
/// series with exactly the same values in both (`ours` in the 0.0.4 format,
/// `theirs` in `format`). Returns the samples compared.
pub fn assert_same_per_actor_samples(ours: &str, theirs: &str, format: TextFormat) -> usize {
    let mut compared = 0;
    for f in &FAMILIES {
        let a = parse_block(ours, f, TextFormat::Prometheus);
        let b = parse_block(theirs, f, format);
        assert!(!a.is_empty(), "{}: our scrape has samples", f.name);
        assert_eq!(a.len(), b.len(), "{}: same number of samples", f.name);
        for (key, v) in &b {
            let mine = a
                .get(key)
                .unwrap_or_else(|| panic!("{}: ours lacks {key:?}", f.name));
            assert_eq!(mine.to_bits(), v.to_bits(), "{}: {key:?}", f.name);
        }
        compared += a.len();
    }
    compared
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::actors::bench_metrics;
    use crate::clock::ManualClock;
    use crate::populate::{build_client, build_mirror, build_ours};

    /// The peers hold what we hold: the benches' equivalence check, on a few actors.
    #[test]
    fn both_peers_read_back_our_per_actor_samples() {
        let m = bench_metrics(ManualClock::new(), Duration::from_secs(600));
        let _live = build_ours(&m, 3);
        let ours = m.render();

        let mut prom = Vec::new();
        build_mirror(3).encode_into(&mut prom);
        let prom = String::from_utf8(prom).expect("UTF-8");
        let expected = assert_same_per_actor_samples(&ours, &prom, TextFormat::Prometheus);

        let mut om = String::new();
        build_client(3).encode_into(&mut om);
        assert!(om.ends_with("# EOF\n"), "OpenMetrics text");
        assert_eq!(
            assert_same_per_actor_samples(&ours, &om, TextFormat::OpenMetrics),
            expected
        );
    }
}
