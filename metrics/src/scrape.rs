//! A parsed scrape: the Prometheus text format, OpenMetrics text, or the
//! protobuf format, read back into `(name, labels) → value` (and native
//! histograms), so tests and tools assert on values, not on text prefixes.
//! A scrape reads the same whatever its format: an OpenMetrics counter's type
//! is kept under its samples' `_total` name, as the text format names it.
//!
//! Strict on purpose: a sample without a `# TYPE` for its family, a series that
//! appears twice, a bad escape or an unparsable value is an error, because any
//! of those would be a bug in the renderer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::render::client_model::{self, MetricType};

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

    fn parse_lines(text: &str, om: bool) -> Result<Scrape, ScrapeError> {
        let mut s = Scrape::default();
        let mut seen = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let err = |what: String| ScrapeError { line: i + 1, what };
            if line.is_empty() {
                if om {
                    return Err(err("blank line".into()));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("TYPE without a type".into()))?;
                let (name, kind) = match (om, kind) {
                    (true, "counter") => {
                        // The samples, and the text format, name it `…_total`.
                        let total = format!("{name}_total");
                        if let Some(help) = s.helps.remove(name) {
                            s.helps.insert(total.clone(), help);
                        }
                        (total, kind)
                    }
                    (true, "unknown") => (name.to_owned(), "untyped"),
                    (true, "untyped") => {
                        return Err(err("untyped is not an OpenMetrics type".into()));
                    }
                    _ => (name.to_owned(), kind),
                };
                if s.types.insert(name.clone(), kind.to_owned()).is_some() {
                    return Err(err(format!("second TYPE for {name}")));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                s.helps
                    .insert(name.to_owned(), unescape(help, om).map_err(err)?);
                continue;
            }
            if om && let Some(rest) = line.strip_prefix("# UNIT ") {
                let (name, unit) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("UNIT without a unit".into()))?;
                if !name.ends_with(&format!("_{unit}")) {
                    return Err(err(format!("{name} does not end with its unit {unit}")));
                }
                s.units.insert(name.to_owned(), unit.to_owned());
                continue;
            }
            if line.starts_with('#') {
                if om {
                    return Err(err(format!("not an OpenMetrics line: {line:?}")));
                }
                continue;
            }
            // Only OpenMetrics has exemplars: ` # {labels} value [timestamp]`.
            let (line, exemplar) = match line.split_once(" # ") {
                Some((sample, exemplar)) if om => (sample, Some(exemplar)),
                _ => (line, None),
            };
            let sample = parse_sample(line, om).map_err(err)?;
            if let Some(exemplar) = exemplar {
                let e = parse_exemplar(&sample, exemplar).map_err(err)?;
                s.exemplars.push(e);
            }
            family_of(&sample.name, &s.types)
                .ok_or_else(|| err(format!("{} has no # TYPE", sample.name)))?;
            let key = (sample.name.clone(), sample.labels.clone());
            if !seen.insert(key) {
                return Err(err(format!(
                    "duplicate series {}{:?}",
                    sample.name, sample.labels
                )));
            }
            s.samples.push(sample);
        }
        Ok(s)
    }

    /// Parses the protobuf format: length-delimited `MetricFamily` messages.
    /// Counters, gauges, summaries and classic histograms become the samples the
    /// text format would have (`_sum`, `_count`, `_bucket{le}`); native buckets
    /// become [`NativeSample`]s. A family may span several messages.
    pub fn parse_protobuf(mut bytes: &[u8]) -> Result<Scrape, ScrapeError> {
        use prost::Message as _;
        let mut s = Scrape::default();
        let mut seen = HashSet::new();
        let mut n = 0;
        while !bytes.is_empty() {
            n += 1;
            let err = |what: String| ScrapeError { line: n, what };
            let f = client_model::MetricFamily::decode_length_delimited(&mut bytes)
                .map_err(|e| err(format!("not a MetricFamily: {e}")))?;
            s.read_family(f, &mut seen).map_err(err)?;
        }
        Ok(s)
    }

    /// One `MetricFamily` message: its `TYPE` and `HELP`, then each metric's
    /// samples. `seen` holds the series of the messages read so far.
    fn read_family(
        &mut self,
        f: client_model::MetricFamily,
        seen: &mut HashSet<(String, BTreeMap<String, String>)>,
    ) -> Result<(), String> {
        let name = f.name.clone().unwrap_or_default();
        let t = MetricType::try_from(f.r#type.unwrap_or(0))
            .map_err(|_| format!("{name}: unknown type"))?;
        self.declare(&name, t, f.help.clone().unwrap_or_default())?;
        for m in f.metric {
            let labels: BTreeMap<String, String> = m
                .label
                .iter()
                .map(|l| {
                    (
                        l.name.clone().unwrap_or_default(),
                        l.value.clone().unwrap_or_default(),
                    )
                })
                .collect();
            if !seen.insert((name.clone(), labels.clone())) {
                return Err(format!("duplicate series {name}{labels:?}"));
            }
            self.read_metric(&name, t, labels, m)?;
        }
        Ok(())
    }

    /// Records family `name`'s type and help; a family that spans several
    /// messages must keep its type.
    fn declare(&mut self, name: &str, t: MetricType, help: String) -> Result<(), String> {
        let word = match t {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
            MetricType::Untyped => "untyped",
        };
        if let Some(prev) = self.types.insert(name.to_owned(), word.to_owned())
            && prev != word
        {
            return Err(format!("{name}: type {prev} then {word}"));
        }
        self.helps.insert(name.to_owned(), help);
        Ok(())
    }

    /// One metric of family `name`: the samples the text format would have,
    /// and its native buckets, if it has any.
    fn read_metric(
        &mut self,
        name: &str,
        t: MetricType,
        labels: BTreeMap<String, String>,
        m: client_model::Metric,
    ) -> Result<(), String> {
        let exemplars = &mut self.exemplars;
        let mut push_exemplar = |sample: &Sample, e: &client_model::Exemplar| {
            exemplars.push(ExemplarSample {
                name: sample.name.clone(),
                labels: sample.labels.clone(),
                exemplar: e
                    .label
                    .iter()
                    .map(|l| {
                        (
                            l.name.clone().unwrap_or_default(),
                            l.value.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                value: e.value.unwrap_or(0.0),
                timestamp: e
                    .timestamp
                    .as_ref()
                    .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9),
            });
        };
        let samples = &mut self.samples;
        let mut push = |suffix: &str,
                        extra: Option<(&str, String)>,
                        value: f64,
                        exemplar: Option<&client_model::Exemplar>| {
            let mut labels = labels.clone();
            if let Some((k, v)) = extra {
                labels.insert(k.to_owned(), v);
            }
            let sample = Sample {
                name: format!("{name}{suffix}"),
                labels,
                value,
            };
            if let Some(e) = exemplar {
                push_exemplar(&sample, e);
            }
            samples.push(sample);
        };
        match t {
            MetricType::Counter => {
                let c = m.counter.unwrap_or_default();
                push("", None, c.value.unwrap_or(0.0), c.exemplar.as_ref());
            }
            MetricType::Gauge => push("", None, m.gauge.and_then(|g| g.value).unwrap_or(0.0), None),
            MetricType::Untyped => push(
                "",
                None,
                m.untyped.and_then(|u| u.value).unwrap_or(0.0),
                None,
            ),
            MetricType::Summary => {
                let sm = m.summary.unwrap_or_default();
                push("_sum", None, sm.sample_sum.unwrap_or(0.0), None);
                push("_count", None, sm.sample_count.unwrap_or(0) as f64, None);
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = m.histogram.unwrap_or_default();
                let count = h.sample_count.unwrap_or(0);
                let sum = h.sample_sum.unwrap_or(0.0);
                if !h.bucket.is_empty() {
                    // `+Inf` is implicit, or sent when it carries an exemplar.
                    let mut inf = None;
                    for b in &h.bucket {
                        let le = b.upper_bound.unwrap_or(f64::INFINITY);
                        if le == f64::INFINITY {
                            inf = b.exemplar.as_ref();
                            continue;
                        }
                        push(
                            "_bucket",
                            Some(("le", fmt_le(le))),
                            b.cumulative_count.unwrap_or(0) as f64,
                            b.exemplar.as_ref(),
                        );
                    }
                    push("_bucket", Some(("le", "+Inf".into())), count as f64, inf);
                    push("_sum", None, sum, None);
                    push("_count", None, count as f64, None);
                }
                if let Some(schema) = h.schema {
                    let buckets = native_buckets(&h).map_err(|what| format!("{name}: {what}"))?;
                    self.natives.push(NativeSample {
                        name: name.to_owned(),
                        labels,
                        schema,
                        zero_threshold: h.zero_threshold.unwrap_or(0.0),
                        zero_count: h.zero_count.unwrap_or(0),
                        count,
                        sum,
                        buckets,
                    });
                }
            }
        }
        Ok(())
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

/// A native histogram's `(bucket key, count)` pairs, read from its positive
/// spans (key offsets) and deltas (count differences).
fn native_buckets(h: &client_model::Histogram) -> Result<Vec<(i32, u64)>, &'static str> {
    let mut buckets = Vec::new();
    let (mut key, mut value) = (0i32, 0i64);
    let mut deltas = h.positive_delta.iter();
    for (i, span) in h.positive_span.iter().enumerate() {
        let offset = span.offset.unwrap_or(0);
        key = if i == 0 { offset } else { key + offset };
        for _ in 0..span.length.unwrap_or(0) {
            value += deltas
                .next()
                .copied()
                .ok_or("fewer deltas than spans say")?;
            buckets.push((
                key,
                u64::try_from(value).map_err(|_| "negative bucket count")?,
            ));
            key += 1;
        }
    }
    Ok(buckets)
}

/// An `le` value as the text format writes it.
fn fmt_le(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return Some(base);
        }
    }
    None
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// The exemplar after `sample`'s value: `{labels} value [timestamp]`, its
/// labels at most 128 characters in all (the OpenMetrics limit).
fn parse_exemplar(sample: &Sample, text: &str) -> Result<ExemplarSample, String> {
    if !text.starts_with('{') {
        return Err(format!("exemplar without labels: {text:?}"));
    }
    let e = parse_sample(&format!("exemplar{text}"), true)?;
    let chars: usize = e
        .labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if chars > 128 {
        return Err(format!(
            "exemplar labels of {chars} characters (at most 128)"
        ));
    }
    let timestamp = text
        .rsplit_once('}')
        .and_then(|(_, rest)| rest.split_ascii_whitespace().nth(1))
        .map(|t| {
            t.parse::<f64>()
                .map_err(|e| format!("exemplar timestamp {t:?}: {e}"))
        })
        .transpose()?;
    Ok(ExemplarSample {
        name: sample.name.clone(),
        labels: sample.labels.clone(),
        exemplar: e.labels,
        value: e.value,
        timestamp,
    })
}

fn parse_sample(line: &str, om: bool) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(line.len(), |(i, _)| i);
    if name_end == 0 {
        return Err(format!("no metric name in {line:?}"));
    }
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let lname = rest[..eq].trim();
            if lname.is_empty()
                || !lname
                    .chars()
                    .enumerate()
                    .all(|(i, c)| is_name_char(c, i == 0) && c != ':')
            {
                return Err(format!("bad label name {lname:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let (raw, after) = split_quoted(rest)?;
            if labels
                .insert(lname.to_owned(), unescape(raw, true)?)
                .is_some()
            {
                return Err(format!("label {lname} twice"));
            }
            rest = after;
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err("expected , or } after a label".into());
            }
        }
    }
    let mut parts = rest.split_ascii_whitespace();
    let value = parts.next().ok_or("no value")?;
    let value = parse_value(value)?;
    if let Some(ts) = parts.next() {
        // Milliseconds in the text format, seconds in OpenMetrics.
        let valid = if om {
            ts.parse::<f64>().is_ok_and(f64::is_finite)
        } else {
            ts.parse::<i64>().is_ok()
        };
        if !valid {
            return Err(format!("bad timestamp {ts:?}"));
        }
    }
    if parts.next().is_some() {
        return Err("trailing text after the sample".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Splits at the closing unescaped quote.
fn split_quoted(s: &str) -> Result<(&str, &str), String> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Ok((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    Err("unterminated label value".into())
}

fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            other => {
                return Err(format!(
                    "bad escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escapes_and_histograms() {
        let text = "# HELP a A \\\\ help\\nline\n# TYPE a counter\na{x=\"q\\\"\\\\\\n}\",y=\"\"} 3\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
        let s = Scrape::parse(text).unwrap();
        assert_eq!(s.get("a", &[("x", "q\"\\\n}"), ("y", "")]), Some(3.0));
        assert_eq!(s.help_of("a"), Some("A \\ help\nline"));
        assert_eq!(s.get("h_count", &[]), Some(2.0));
        assert_eq!(s.get("h_bucket", &[("le", "+Inf")]), Some(2.0));
    }

    #[test]
    fn rejects_what_a_renderer_must_never_write() {
        for bad in [
            "a 1\n",                              // no TYPE
            "# TYPE a counter\na 1\na 2\n",       // duplicate series
            "# TYPE a counter\na{x=\"\\t\"} 1\n", // bad escape
            "# TYPE a counter\na{x=\"1} 1\n",     // unterminated
            "# TYPE a counter\na one\n",          // bad value
        ] {
            assert!(Scrape::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn openmetrics_reads_as_the_text_format() {
        let om = "# HELP a A \\\"q\\\"\n# TYPE a counter\na_total{x=\"1\"} 3\n# HELP h_seconds H\n# TYPE h_seconds histogram\n# UNIT h_seconds seconds\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.5\nh_seconds_count 2\n# TYPE u unknown\nu 1 1700000000.5\n# EOF\n";
        let s = Scrape::parse_openmetrics(om).unwrap();
        assert_eq!(s.get("a_total", &[("x", "1")]), Some(3.0));
        assert_eq!(s.type_of("a_total"), Some("counter"));
        assert_eq!(s.help_of("a_total"), Some("A \"q\""));
        assert_eq!(s.unit_of("h_seconds"), Some("seconds"));
        assert_eq!(s.get("h_seconds_count", &[]), Some(2.0));
        assert_eq!(s.type_of("u"), Some("untyped"));
        for bad in [
            "# TYPE a counter\na_total 1\n",                  // no EOF
            "# TYPE a counter\na_total 1\n# EOF\n\n",         // after EOF
            "# TYPE a counter\na 1\n# EOF\n",                 // counter sample without _total
            "# TYPE a counter\n\na_total 1\n# EOF\n",         // blank line
            "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n", // unit not in the name
            "# TYPE a untyped\na 1\n# EOF\n",                 // 0.0.4's word
            "# TYPE a gauge\n# comment\na 1\n# EOF\n",        // free comment
        ] {
            assert!(Scrape::parse_openmetrics(bad).is_err(), "{bad:?}");
        }
    }
}
