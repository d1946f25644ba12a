//! `top`: the actors that stand out most by one figure, on demand, like
//! Erlang's `recon:proc_window`: from the tick's windowed figures, no stored
//! series.

use super::window::{BUSY, ERRORS, Reading, SECONDS, quantile};
use super::{Promotion, Reason};
use crate::buckets::ACTION_BUCKETS;
use crate::cells::{Cell, HistogramTotal};
use crate::query::{pairs, shown};
use crate::store::{EntryRef, Store};

/// What [`Metrics::top`](crate::Metrics::top) ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    /// Errors / calls over the window (at least `min_calls` calls).
    ErrorRatio,
    /// Errors in the window.
    Errors,
    /// Calls in the window.
    Calls,
    /// Mean action latency over the window, seconds (at least `min_calls` calls).
    MeanLatency,
    /// p99 action latency since the label set was registered, from its classic
    /// buckets, seconds (at least `min_calls` calls in the window).
    P99Latency,
    /// Messages in its queue now.
    QueueDepth,
    /// Items in its inboxes now.
    InboxDepth,
    /// SQLite busy retries in the window.
    SqliteBusy,
}

impl TopBy {
    /// Every ranking, as `?by=` names them.
    pub const ALL: [TopBy; 8] = [
        TopBy::ErrorRatio,
        TopBy::Errors,
        TopBy::Calls,
        TopBy::MeanLatency,
        TopBy::P99Latency,
        TopBy::QueueDepth,
        TopBy::InboxDepth,
        TopBy::SqliteBusy,
    ];

    /// The `?by=` name.
    pub fn as_str(self) -> &'static str {
        match self {
            TopBy::ErrorRatio => "error_ratio",
            TopBy::Errors => "errors",
            TopBy::Calls => "calls",
            TopBy::MeanLatency => "mean_latency",
            TopBy::P99Latency => "p99_latency",
            TopBy::QueueDepth => "queue_depth",
            TopBy::InboxDepth => "inbox_depth",
            TopBy::SqliteBusy => "sqlite_busy",
        }
    }

    /// The unit of its figure.
    pub fn unit(self) -> &'static str {
        match self {
            TopBy::ErrorRatio => "ratio",
            TopBy::MeanLatency | TopBy::P99Latency => "seconds",
            TopBy::QueueDepth | TopBy::InboxDepth => "items",
            TopBy::Errors | TopBy::Calls | TopBy::SqliteBusy => "events",
        }
    }
}

impl std::str::FromStr for TopBy {
    type Err = TopError;
    fn from_str(s: &str) -> Result<Self, TopError> {
        TopBy::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| TopError::UnknownBy(shown(s).into_owned()))
    }
}

/// A refused [`TopQuery`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopError {
    /// `by` names no ranking.
    #[error(
        "unknown by={0:?}; valid: error_ratio, errors, calls, mean_latency, p99_latency, queue_depth, inbox_depth, sqlite_busy"
    )]
    UnknownBy(String),
    /// `window` names no window this instance keeps.
    #[error("unknown window={given:?}; valid: {valid}")]
    UnknownWindow {
        /// What was asked.
        given: String,
        /// The windows kept, comma separated.
        valid: String,
    },
    /// `n` is not a count from 1 to [`TopQuery::MAX_N`].
    #[error("n={0:?} is not a count from 1 to 1000")]
    BadN(String),
    /// A parameter is given more than once (which would win is a guess).
    #[error("{0} is given more than once")]
    Repeated(&'static str),
    /// A value is not UTF-8 once percent-decoded (read lossily, a type would
    /// select nobody and say nothing).
    #[error("{name}={raw} is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// The parameter.
        name: &'static str,
        /// Its value as sent (cut when long).
        raw: String,
    },
}

/// What [`Metrics::top`](crate::Metrics::top) answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TopQuery {
    /// The ranking. Default error ratio.
    pub by: TopBy,
    /// Rows at most, 1 to [`TopQuery::MAX_N`]. Default 20.
    pub n: usize,
    /// Only actors of this type (`actor_name`).
    pub actor_type: Option<String>,
    /// The window by name (`1m`, `5m` by default); `None` is the short one.
    pub window: Option<String>,
}

impl Default for TopQuery {
    fn default() -> Self {
        TopQuery {
            by: TopBy::ErrorRatio,
            n: 20,
            actor_type: None,
            window: None,
        }
    }
}

impl TopQuery {
    /// Most rows one answer holds.
    pub const MAX_N: usize = 1000;

    /// Parses a query string (`by=…&n=…&type=…&window=…`, each at most
    /// once; other keys are ignored, so a page can carry its own).
    ///
    /// # Errors
    /// [`TopError`] for a `by` or `n` out of range, a parameter given twice
    /// or a value not UTF-8 (a window is checked by
    /// [`Metrics::top`](crate::Metrics::top), which knows the windows). An
    /// error repeats at most 64 bytes of a value ([`shown`]).
    pub fn parse(query: &str) -> Result<TopQuery, TopError> {
        const NAMES: [&str; 4] = ["by", "n", "type", "window"];
        let mut q = TopQuery::default();
        let mut seen = [false; NAMES.len()];
        for pair in pairs(query) {
            let Some(i) = NAMES.iter().position(|n| *n == pair.name) else {
                continue;
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(TopError::Repeated(NAMES[i]));
            }
            let v = String::from_utf8(pair.bytes).map_err(|_| TopError::NotUtf8 {
                name: NAMES[i],
                raw: shown(pair.raw).into_owned(),
            })?;
            match NAMES[i] {
                "by" => q.by = v.parse()?,
                "n" => {
                    q.n = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=Self::MAX_N).contains(n))
                        .ok_or_else(|| TopError::BadN(shown(&v).into_owned()))?
                }
                "type" => q.actor_type = Some(v).filter(|t| !t.is_empty()),
                _ => q.window = Some(v),
            }
        }
        Ok(q)
    }
}

/// One actor in an answer of [`Metrics::top`](crate::Metrics::top).
#[derive(Debug, Clone, PartialEq)]
pub struct TopRow {
    /// Its type.
    pub actor_name: String,
    /// Its `actor_key` label value (a key cut for length as exported).
    pub actor_key: String,
    /// Its `actor_id_gen` label value.
    pub actor_id_gen: String,
    /// Its `envoy_key` label value.
    pub envoy_key: String,
    /// The figure ranked by, in [`TopBy::unit`].
    pub figure: f64,
    /// Calls in the window (a windowed rate × the window).
    pub calls: f64,
    /// Why it is promoted to `full` detail, if it is.
    pub promoted: Option<Reason>,
    /// Whether it runs (not only retained).
    pub live: bool,
}

/// The rows of `query`, worst first; an actor with a zero figure is no row.
pub(crate) fn top(store: &Store, query: &TopQuery) -> Result<Vec<TopRow>, TopError> {
    let cfg = &store.config.promotion;
    let windows = cfg.windows();
    let w = match &query.window {
        None => 0,
        Some(name) => windows
            .iter()
            .position(|w| Promotion::window_name(*w) == *name)
            .ok_or_else(|| TopError::UnknownWindow {
                given: shown(name).into_owned(),
                valid: windows
                    .iter()
                    .map(|w| Promotion::window_name(*w))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
    };
    let window = windows[w];
    let snapshot = store.snapshot(|e| {
        !e.overflow() && query.actor_type.as_deref().is_none_or(|t| *e.ty.name == *t)
    });
    let floor = cfg.min_calls as f64;
    let mut rows: Vec<(f64, f64, &EntryRef)> = Vec::new();
    for e in &snapshot.entries {
        let f = e.window.read();
        let calls = f.calls(w, window);
        let per_window = |k: usize| f64::from(f.rates[w][k]) * window.as_secs_f64();
        let figure = match query.by {
            TopBy::ErrorRatio => (calls >= floor).then(|| f.ratio(w, ERRORS)).flatten(),
            TopBy::Errors => Some(per_window(ERRORS)),
            TopBy::Calls => Some(calls),
            TopBy::MeanLatency => (calls >= floor).then(|| f.ratio(w, SECONDS)).flatten(),
            TopBy::P99Latency => (calls >= floor)
                .then(|| {
                    let mut t = HistogramTotal::default();
                    e.series.action_duration_seconds.add_to(&mut t);
                    let counts = t.classic_counts(&ACTION_BUCKETS).map(|c| c as f64);
                    quantile(0.99, &counts, ACTION_BUCKETS.bounds())
                })
                .flatten(),
            TopBy::QueueDepth => Some(Reading::queue(e) as f64),
            TopBy::InboxDepth => Some(Reading::inbox(e) as f64),
            TopBy::SqliteBusy => Some(per_window(BUSY)),
        };
        if let Some(figure) = figure.filter(|v| *v > 0.0 && v.is_finite()) {
            rows.push((figure, calls, e));
        }
    }
    let n = query.n.clamp(1, TopQuery::MAX_N);
    if rows.len() > n {
        rows.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        rows.truncate(n);
    }
    rows.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.2.labels.actor_key().cmp(b.2.labels.actor_key()))
    });
    Ok(rows
        .into_iter()
        .map(|(figure, calls, e)| TopRow {
            actor_name: e.ty.name.to_string(),
            actor_key: e.labels.actor_key().to_owned(),
            actor_id_gen: e.labels.actor_id_gen().to_owned(),
            envoy_key: e.labels.envoy_key().to_owned(),
            figure,
            calls,
            promoted: e.window.promoted(),
            live: e.live() > 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_refuse_with_the_valid_values() {
        let q = TopQuery::parse("by=p99_latency&n=5&type=counter&window=5m&x=1").unwrap();
        assert_eq!(q.by, TopBy::P99Latency);
        assert_eq!(q.n, 5);
        assert_eq!(q.actor_type.as_deref(), Some("counter"));
        assert_eq!(q.window.as_deref(), Some("5m"));
        let e = TopQuery::parse("by=nope").unwrap_err();
        assert!(e.to_string().contains("error_ratio, errors, calls"), "{e}");
        assert!(matches!(TopQuery::parse("n=0"), Err(TopError::BadN(_))));
        assert!(matches!(TopQuery::parse("n=1001"), Err(TopError::BadN(_))));
        assert_eq!(
            TopQuery::parse("type=a%20b").unwrap().actor_type.as_deref(),
            Some("a b")
        );
        assert_eq!(
            TopQuery::parse("type=a+b%2Bc&page=1&page=2")
                .unwrap()
                .actor_type
                .as_deref(),
            Some("a b+c"),
            "other keys may repeat"
        );
    }

    #[test]
    fn repeats_and_non_utf8_are_refused_and_long_values_shown_cut() {
        for (q, name) in [
            ("by=calls&by=errors", "by"),
            ("n=1&n=2", "n"),
            ("type=a&type=b", "type"),
            ("window=1m&window=5m", "window"),
        ] {
            assert_eq!(TopQuery::parse(q), Err(TopError::Repeated(name)), "{q}");
        }
        let e = TopQuery::parse("type=%FF").unwrap_err();
        assert_eq!(e.to_string(), "type=%FF is not UTF-8 once percent-decoded");
        let long = "x".repeat(60_000);
        for q in [
            format!("by={long}"),
            format!("n={long}"),
            format!("type=%FF{long}"),
        ] {
            let e = TopQuery::parse(&q).unwrap_err().to_string();
            assert!(
                e.len() < 250 && (e.contains("(60000 bytes)") || e.contains("(60003 bytes)")),
                "{e}"
            );
        }
    }
}
