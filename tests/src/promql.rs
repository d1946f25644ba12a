//! The Prometheus HTTP query API (`/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`), which Prometheus and VictoriaMetrics both serve, and
//! what only Prometheus answers (`/api/v1/metadata`, `/api/v1/query_exemplars`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::daemon::http;

/// A server that answers PromQL (or MetricsQL) over HTTP.
#[derive(Debug, Clone, Copy)]
pub struct PromApi {
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// A path to `GET` before each query, which makes everything ingested so
    /// far searchable: VictoriaMetrics buffers new samples and series for a
    /// few seconds (up to ~6 s for a new series, measured with 1.79) unless
    /// asked with `/internal/force_flush`, its documented hook for tests.
    pub flush: Option<&'static str>,
}

/// Seconds since the Unix epoch, the unit of the query API's timestamps.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

impl PromApi {
    /// Prometheus' API at `addr`.
    pub fn prometheus(addr: SocketAddr) -> PromApi {
        PromApi { addr, flush: None }
    }

    /// VictoriaMetrics' API at `addr`, flushed before each query.
    pub fn victoria_metrics(addr: SocketAddr) -> PromApi {
        PromApi {
            addr,
            flush: Some("/internal/force_flush"),
        }
    }

    /// `GET {path}` with `params`; returns `data`, failing on an error answer.
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        if let Some(flush) = self.flush {
            http()
                .get(&format!("http://{}{flush}", self.addr))
                .call()
                .unwrap_or_else(|e| panic!("{flush}: {e}"));
        }
        let mut request = http().get(&format!("http://{}{path}", self.addr));
        for (name, value) in params {
            request = request.query(name, value);
        }
        let body = match request.call() {
            Ok(r) => r.into_string().expect("query body"),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "{path} {params:?}: HTTP {code}: {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("{path} {params:?}: {e}"),
        };
        let resp: Value = serde_json::from_str(&body).expect("query API answers JSON");
        assert_eq!(resp["status"], "success", "{path} {params:?}: {resp}");
        resp["data"].clone()
    }

    /// An instant query now; the result vector (`[{metric, value}]`).
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.get("/api/v1/query", &[("query", promql)]);
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// A range query; the result matrix (`[{metric, values: [[t, "v"], ...]}]`).
    pub fn query_range(&self, promql: &str, start: f64, end: f64, step_seconds: f64) -> Vec<Value> {
        let (start, end, step) = (start.to_string(), end.to_string(), step_seconds.to_string());
        let data = self.get(
            "/api/v1/query_range",
            &[
                ("query", promql),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ],
        );
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// The label sets of every series matching `matcher` between `start` and `end`.
    pub fn series(&self, matcher: &str, start: f64, end: f64) -> Vec<Value> {
        let (start, end) = (start.to_string(), end.to_string());
        let data = self.get(
            "/api/v1/series",
            &[("match[]", matcher), ("start", &start), ("end", &end)],
        );
        data.as_array().cloned().unwrap_or_default()
    }

    /// Prometheus' metadata for the family `metric`: `[{type, help, unit}]`,
    /// empty when it has none under that name.
    pub fn metadata(&self, metric: &str) -> Vec<Value> {
        let data = self.get("/api/v1/metadata", &[("metric", metric)]);
        data[metric].as_array().cloned().unwrap_or_default()
    }

    /// Every exemplar stored between `start` and `end` on the series that
    /// `promql`'s selectors match, one per exemplar with its series' labels
    /// (Prometheus with `--enable-feature=exemplar-storage`).
    pub fn query_exemplars(&self, promql: &str, start: f64, end: f64) -> Vec<StoredExemplar> {
        let (start, end) = (start.to_string(), end.to_string());
        let data = self.get(
            "/api/v1/query_exemplars",
            &[("query", promql), ("start", &start), ("end", &end)],
        );
        let labels = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        };
        let mut out = Vec::new();
        for series in data.as_array().into_iter().flatten() {
            for e in series["exemplars"].as_array().into_iter().flatten() {
                out.push(StoredExemplar {
                    series: labels(&series["seriesLabels"]),
                    labels: labels(&e["labels"]),
                    value: e["value"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("{promql}: exemplar value in {e}")),
                    timestamp: e["timestamp"]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{promql}: exemplar timestamp in {e}")),
                });
            }
        }
        out
    }

    /// The single value of an instant query, if it returned exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        if r.len() != 1 {
            return None;
        }
        sample_value(&r[0]["value"])
    }

    /// An instant query's values keyed by the value of `label` (a missing label
    /// is the empty string). Two series with the same key fail the call: the
    /// query was meant to give one per key.
    pub fn values_by(&self, promql: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for series in self.query(promql) {
            let key = series["metric"][label].as_str().unwrap_or("").to_owned();
            let value = sample_value(&series["value"]).expect("numeric sample");
            assert!(
                out.insert(key.clone(), value).is_none(),
                "{promql}: two series with {label}={key:?}"
            );
        }
        out
    }
}

/// One exemplar as `/api/v1/query_exemplars` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExemplar {
    /// The labels of the series it is on (`__name__`, `le`, `job`...).
    pub series: BTreeMap<String, String>,
    /// Its own labels (`trace_id`, `span_id`).
    pub labels: BTreeMap<String, String>,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in seconds since the Unix epoch.
    pub timestamp: f64,
}

impl StoredExemplar {
    /// Its `trace_id` label, or `""`.
    pub fn trace_id(&self) -> &str {
        self.labels.get("trace_id").map_or("", String::as_str)
    }

    /// Its `span_id` label, or `""`.
    pub fn span_id(&self) -> &str {
        self.labels.get("span_id").map_or("", String::as_str)
    }
}

/// The number in a `[timestamp, "value"]` pair.
pub fn sample_value(pair: &Value) -> Option<f64> {
    pair[1].as_str()?.parse().ok()
}

/// The timestamp in a `[timestamp, "value"]` pair.
pub fn sample_time(pair: &Value) -> f64 {
    pair[0].as_f64().expect("numeric timestamp")
}
