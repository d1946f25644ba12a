//! Content negotiation of a scrape: the format from `Accept`, gzip from
//! `Accept-Encoding`, both read by one parser of q-valued header lists.

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

/// The media ranges that take the text format.
const TEXT_RANGES: [&str; 3] = ["text/plain", "text/*", "*/*"];

/// The format the `Accept` values ask for: protobuf when
/// `application/vnd.google.protobuf` (with `proto=io.prometheus.client.MetricFamily`
/// and `encoding=delimited`, or without them) has a q above zero and above every
/// text type the client takes (`text/plain`, `text/*`, `*/*`); otherwise text,
/// also when nothing is said.
pub(crate) fn format<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Format {
    let (mut proto, mut text) = (0f32, 0f32);
    for item in items(values) {
        if item.is("application/vnd.google.protobuf") {
            let delimited = item.params().all(|(k, v)| {
                if k.eq_ignore_ascii_case("proto") {
                    v == "io.prometheus.client.MetricFamily"
                } else if k.eq_ignore_ascii_case("encoding") {
                    v == "delimited"
                } else {
                    true
                }
            });
            if delimited {
                proto = proto.max(item.q);
            }
        } else if TEXT_RANGES.iter().any(|r| item.is(r)) {
            text = text.max(item.q);
        }
    }
    if proto > 0.0 && proto > text {
        Format::Protobuf
    } else {
        Format::Text
    }
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
        // Without the feature, Prometheus asks for text.
        assert_eq!(
            fmt(&[
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ]),
            Format::Text
        );
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
