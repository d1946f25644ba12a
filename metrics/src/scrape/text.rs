//! The two text formats, Prometheus text 0.0.4 and OpenMetrics 1.0.0, line
//! by line.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{ExemplarSample, Sample, Scrape, ScrapeError};

impl Scrape {
    pub(super) fn parse_lines(text: &str, om: bool) -> Result<Scrape, ScrapeError> {
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
}

pub(super) fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
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
