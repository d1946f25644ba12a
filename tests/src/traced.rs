//! Calls on the app API in a W3C trace, and the host's JSON log lines that
//! name a trace: what `host_trace.rs` and `exemplars.rs` both read.

use serde_json::Value;

use crate::Host;

/// What the app API answered to a call: status, body, and its two trace headers.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// The `traceparent` header answered: the call's trace and the host's span.
    pub traceparent: String,
    /// The `trace-id` header answered.
    pub trace_id: String,
}

impl Answer {
    /// The host's span id, from its `traceparent`.
    pub fn span_id(&self) -> &str {
        let parts: Vec<&str> = self.traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{}", self.traceparent);
        parts[2]
    }
}

/// `POST`s the call of `action` on the `name` actor `key` with `body` and one
/// `traceparent` header per item of `traceparents` (none, one or several).
/// Fails unless the answer has exactly one of each trace header.
pub fn call(
    host: &Host,
    name: &str,
    key: &str,
    action: &str,
    body: &str,
    traceparents: &[&str],
) -> Answer {
    let url = format!("http://{}/actors/{name}/{key}/actions/{action}", host.app);
    let mut request = ureq::post(&url).set("content-type", "application/json");
    for t in traceparents {
        request = request.set("traceparent", t);
    }
    let response = match request.send_string(body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let header = |name: &str| {
        let all = response.all(name);
        assert_eq!(all.len(), 1, "one {name} header: {all:?}");
        all[0].to_owned()
    };
    Answer {
        status: response.status(),
        traceparent: header("traceparent"),
        trace_id: header("trace-id"),
        body: serde_json::from_str(&response.into_string().expect("body")).expect("JSON body"),
    }
}

/// The JSON log lines (`--log-format json`) whose message is `message`.
pub fn json_lines(log: &str, message: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}
