//! A parsed scrape: the Prometheus text format, OpenMetrics text, or the
//! protobuf format, read back into `(name, labels) → value` (and native
//! histograms), so tests and tools assert on values, not on text prefixes.
//! A scrape reads the same whatever its format: an OpenMetrics counter's type
//! is kept under its samples' `_total` name, as the text format names it.
//!
//! Strict on purpose: a sample without a `# TYPE` for its family, a series that
//! appears twice, a bad escape or an unparsable value is an error, because any
//! of those would be a bug in the renderer.

mod protobuf;
mod text;

use text::family_of;

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample name (`…_bucket`, `…_sum`, `…_count` for histograms).
    pub name: String,
    /// Label name → unescaped value.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// One exemplar of a scrape (OpenMetrics or protobuf), on the sample it follows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarSample {
    /// The sample's name (`…_bucket`, `…_total`).
    pub name: String,
    /// The sample's labels (`le` included for a bucket).
    pub labels: BTreeMap<String, String>,
    /// The exemplar's own labels (`trace_id`, `span_id`).
    pub exemplar: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
    /// Its time in seconds since the Unix epoch, if it has one.
    pub timestamp: Option<f64>,
}

/// What went wrong, with the 1-based line number.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {what}")]
pub struct ScrapeError {
    /// 1-based line number.
    pub line: usize,
    /// Description.
    pub what: String,
}

/// One native histogram of a protobuf scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeSample {
    /// The family name.
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The bucket schema.
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// `(bucket key, count)`, increasing keys, non-zero counts.
    pub buckets: Vec<(i32, u64)>,
}

/// A parsed scrape.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    samples: Vec<Sample>,
    natives: Vec<NativeSample>,
    exemplars: Vec<ExemplarSample>,
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
    units: HashMap<String, String>,
}

impl Scrape {
    /// Parses the text format 0.0.4.
    pub fn parse(text: &str) -> Result<Scrape, ScrapeError> {
        Self::parse_lines(text, false)
    }

    /// Parses OpenMetrics text 1.0.0: as [`Scrape::parse`], and also a body
    /// that ends with `# EOF` and has nothing after it, no blank line, no
    /// comment other than `HELP`, `TYPE` and `UNIT`, counter samples named
    /// `{family}_total`, a `UNIT` only on a family whose name ends with it,
    /// `"` escaped in `HELP`, timestamps in seconds.
    pub fn parse_openmetrics(text: &str) -> Result<Scrape, ScrapeError> {
        let body = text.strip_suffix("# EOF\n").ok_or_else(|| ScrapeError {
            line: text.lines().count(),
            what: "the body does not end with # EOF".into(),
        })?;
        Self::parse_lines(body, true)
    }

    /// Every exemplar, in the order of the samples they follow.
    pub fn exemplars(&self) -> &[ExemplarSample] {
        &self.exemplars
    }

    /// The exemplar on sample `name` whose labels include `labels`, if one.
    pub fn exemplar(&self, name: &str, labels: &[(&str, &str)]) -> Option<&ExemplarSample> {
        self.exemplars.iter().find(|e| {
            e.name == name
                && labels
                    .iter()
                    .all(|(k, v)| e.labels.get(*k).is_some_and(|x| x == v))
        })
    }

    /// Every sample.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Every native histogram (protobuf scrapes only).
    pub fn natives(&self) -> &[NativeSample] {
        &self.natives
    }

    /// The native histogram `name` with exactly these labels.
    pub fn native(&self, name: &str, labels: &[(&str, &str)]) -> Option<&NativeSample> {
        self.natives.iter().find(|n| {
            n.name == name
                && n.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| n.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Every series as `(family, labels)`, whatever its representation: a
    /// histogram's or summary's samples (`le` aside) and a native histogram are
    /// one family entry each. Two scrapes in different formats that select the
    /// same series give the same set.
    pub fn series_keys(&self) -> BTreeSet<(String, BTreeMap<String, String>)> {
        let mut keys = BTreeSet::new();
        for sample in &self.samples {
            let family = family_of(&sample.name, &self.types).unwrap_or(&sample.name);
            let mut labels = sample.labels.clone();
            labels.remove("le");
            keys.insert((family.to_owned(), labels));
        }
        for n in &self.natives {
            keys.insert((n.name.clone(), n.labels.clone()));
        }
        keys
    }

    /// The samples named `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the series with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series(name)
            .find(|s| {
                s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// Sum of the series named `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series(name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// The `# TYPE` of a family.
    pub fn type_of(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    /// The `# UNIT` of a family (OpenMetrics only).
    pub fn unit_of(&self, family: &str) -> Option<&str> {
        self.units.get(family).map(String::as_str)
    }

    /// The unescaped `# HELP` of a family.
    pub fn help_of(&self, family: &str) -> Option<&str> {
        self.helps.get(family).map(String::as_str)
    }

    /// Whether any sample carries `label="value"`.
    pub fn has_label_value(&self, label: &str, value: &str) -> bool {
        self.samples
            .iter()
            .any(|s| s.labels.get(label).map(String::as_str) == Some(value))
    }
}
