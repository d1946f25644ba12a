//! Content negotiation of a scrape: the format from `Accept`, gzip from
//! `Accept-Encoding`, both read by one parser of q-valued header lists. This
//! is the only place a format is chosen; the response's `Content-Type` is the
//! format the source then says it wrote.

use actor_metrics::Format;
use hyper::header::HeaderValue;

/// One item of an `Accept` or `Accept-Encoding` list, such as
/// `text/plain;version=0.0.4;q=0.5` or `gzip;q=0`.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    /// The media range or content coding, trimmed, as sent (compare it with
    /// [`Item::is`], which ignores ASCII case).
    name: &'a str,
    /// Its weight: 1 when it has no `q`, the last `q` when it has several, 0
    /// when that `q` is malformed (not a finite number, quoted included), so a
    /// malformed item is never taken.
    q: f32,
    /// Everything after the name's `;`: the parameters, `q` among them.
    params: &'a str,
}

impl<'a> Item<'a> {
    fn parse(item: &'a str) -> Self {
        let (name, params) = item.split_once(';').unwrap_or((item, ""));
        let q = pairs(params)
            .filter(|(k, _)| k.eq_ignore_ascii_case("q"))
            .last()
            .map_or(1.0, |(_, v)| {
                v.parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(0.0)
            });
        Item {
            name: name.trim(),
            q,
            params,
        }
    }

    /// Whether this item names `name`, ignoring ASCII case.
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The parameters other than `q`, as `(key, value)`, both trimmed and the
    /// value without its quotes.
    fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        pairs(self.params)
            .filter(|(k, _)| !k.eq_ignore_ascii_case("q"))
            .map(|(k, v)| (k, v.trim_matches('"')))
    }
}

/// The `key=value` pairs of a `;`-separated parameter list, trimmed; a
/// parameter without `=` is skipped.
fn pairs(params: &str) -> impl Iterator<Item = (&str, &str)> {
    params.split(';').filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

/// The items of every value of one header, in order. A value that is not
/// visible ASCII is skipped whole.
fn items<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> impl Iterator<Item = Item<'a>> {
    values
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(Item::parse)
}

/// Whether `item` of an `Accept` list names `format`: the one negotiation
/// table (adding a format is one arm here).
fn names(item: &Item<'_>, format: Format) -> bool {
    // A parameter that must be `value` when present.
    let param_is = |key: &str, value: &str| {
        item.params()
            .all(|(k, v)| !k.eq_ignore_ascii_case(key) || v == value)
    };
    match format {
        // Also what a client that takes anything gets.
        Format::Text => ["text/plain", "text/*", "*/*"].iter().any(|r| item.is(r)),
        // Only the version written; Prometheus also offers the 0.0.1 draft, lower.
        Format::OpenMetrics => {
            item.is("application/openmetrics-text") && param_is("version", "1.0.0")
        }
        Format::Protobuf => {
            item.is("application/vnd.google.protobuf")
                && param_is("proto", "io.prometheus.client.MetricFamily")
                && param_is("encoding", "delimited")
        }
    }
}

/// The format the `Accept` values ask for: the one with the highest q above
/// zero among the media ranges that name it (see [`names`]); on a tie the
/// first of [`Format::ALL`] (text, then OpenMetrics, then protobuf); text when
/// nothing acceptable is named, also when nothing is said.
///
/// Prometheus 2.42 sends `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`
/// (OpenMetrics), and with native histograms on, protobuf first with
/// OpenMetrics at q=0.8 (protobuf).
pub(crate) fn format<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Format {
    let mut q = [0f32; Format::ALL.len()];
    for item in items(values) {
        for (i, f) in Format::ALL.into_iter().enumerate() {
            if names(&item, f) {
                q[i] = q[i].max(item.q);
            }
        }
    }
    let mut best = (Format::Text, 0f32);
    for (f, q) in Format::ALL.into_iter().zip(q) {
        if q > best.1 {
            best = (f, q);
        }
    }
    best.0
}

/// Whether the `Accept-Encoding` values allow gzip: an explicit `gzip` (or
/// `x-gzip`) with a non-zero q, or else `*` with a non-zero q. The last
/// mention of each counts.
pub(crate) fn accepts_gzip<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    let (mut gzip, mut star) = (None, None);
    for item in items(values) {
        if item.is("gzip") || item.is("x-gzip") {
            gzip = Some(item.q);
        } else if item.is("*") {
            star = Some(item.q);
        }
    }
    gzip.or(star).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> Vec<HeaderValue> {
        values.iter().map(|s| HeaderValue::from_static(s)).collect()
    }

    /// Asserts the `(name, q)` of every item the shared parser reads.
    fn check(values: &[&'static str], expected: &[(&str, f32)]) {
        let v = headers(values);
        let got: Vec<(&str, f32)> = items(&v).map(|i| (i.name, i.q)).collect();
        assert_eq!(got, expected, "{values:?}");
    }

    #[test]
    fn the_shared_parser_reads_names_and_q_values() {
        // No q is 1; q=0 is 0; the last q counts; whitespace and case are free.
        check(
            &["gzip, x-gzip;q=0.5", " * ; Q=0 ,identity;q=0.1;q=1"],
            &[
                ("gzip", 1.0),
                ("x-gzip", 0.5),
                ("*", 0.0),
                ("identity", 1.0),
            ],
        );
        // Malformed: not a number, not finite, empty or quoted is weight 0.
        for bad in [
            "gzip;q=abc",
            "gzip;q=inf",
            "gzip;q=NaN",
            "gzip;q=",
            "gzip;q=\"1\"",
        ] {
            check(&[bad], &[("gzip", 0.0)]);
        }
        // A parameter without `=` is skipped; an empty item is an empty name.
        check(&["gzip;q;level=1,"], &[("gzip", 1.0), ("", 1.0)]);
        check(&[], &[]);
        // Parameters other than q, unquoted, q left out.
        let v = headers(&["application/x;proto=\"a.B\" ; q=0.3;encoding=delimited"]);
        let item = items(&v).next().unwrap();
        assert!(item.is("APPLICATION/X"));
        assert_eq!(
            item.params().collect::<Vec<_>>(),
            [("proto", "a.B"), ("encoding", "delimited")]
        );
    }

    fn gz(values: &[&'static str]) -> bool {
        accepts_gzip(&headers(values))
    }

    #[test]
    fn accept_encoding_q_values() {
        assert!(gz(&["gzip"]));
        assert!(gz(&["identity, GZIP;q=0.5"]));
        assert!(gz(&["deflate", "gzip"]));
        assert!(gz(&["*"]));
        assert!(gz(&["x-gzip"]));
        assert!(!gz(&[]));
        assert!(!gz(&["identity"]));
        assert!(!gz(&["gzip;q=0"]));
        assert!(!gz(&["gzip;q=0.0, *;q=1"]), "explicit gzip wins over *");
        assert!(!gz(&["*;q=0"]));
        assert!(!gz(&["gzip;q=abc"]));
        assert!(gz(&["gzip ; q=0.001"]));
    }

    fn fmt(values: &[&'static str]) -> Format {
        format(&headers(values))
    }

    #[test]
    fn accept_picks_the_format() {
        // What Prometheus sends with native histograms on.
        let prometheus = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(fmt(&[prometheus]), Format::Protobuf);
        assert_eq!(fmt(&["application/vnd.google.protobuf"]), Format::Protobuf);
        // Without the feature, Prometheus asks for OpenMetrics first.
        assert_eq!(
            fmt(&[
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ]),
            Format::OpenMetrics
        );
        assert_eq!(
            fmt(&["application/openmetrics-text; version=1.0.0; charset=utf-8"]),
            Format::OpenMetrics
        );
        assert_eq!(fmt(&["application/openmetrics-text"]), Format::OpenMetrics);
        // Another version is not what we write; a tie goes to text.
        assert_eq!(
            fmt(&["application/openmetrics-text;version=0.0.1"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["application/openmetrics-text;version=2.0.0, text/plain;q=0.1"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["text/plain, application/openmetrics-text;version=1.0.0"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["text/plain;q=0.5, application/openmetrics-text;version=1.0.0;q=0.6"]),
            Format::OpenMetrics
        );
        assert_eq!(
            fmt(&["application/openmetrics-text;q=0, */*;q=0.1"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["application/openmetrics-text;q=0.9, application/vnd.google.protobuf"]),
            Format::Protobuf
        );
        assert_eq!(fmt(&["application/json"]), Format::Text);
        assert_eq!(fmt(&[]), Format::Text);
        assert_eq!(fmt(&["*/*"]), Format::Text);
        assert_eq!(
            fmt(&["application/vnd.google.protobuf;encoding=text"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["application/vnd.google.protobuf;proto=other.Message"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["application/vnd.google.protobuf;q=0.5, text/plain"]),
            Format::Text
        );
        assert_eq!(fmt(&["application/vnd.google.protobuf;q=0"]), Format::Text);
        assert_eq!(
            fmt(&["text/plain;q=0.2", "application/vnd.google.protobuf;q=0.3"]),
            Format::Protobuf
        );
    }
}
