//! Trace context on the app API, end to end through the real `actor-host`
//! binary over HTTP: the caller's `traceparent` is continued (or a trace
//! started), the answer names the trace, and the host's own log lines written
//! inside the action, JSON and text, carry its `trace_id` and `span_id`.

use actor_e2e_tests::Host;
use actor_e2e_tests::traced::{self, Answer, json_lines};
use serde_json::Value;

/// The specification's example.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}

/// `POST`s an action call on the counter `key` with `traceparent` headers
/// (none, one or several).
fn call(host: &Host, key: &str, action: &str, body: &str, traceparents: &[&str]) -> Answer {
    traced::call(host, "counter", key, action, body, traceparents)
}

/// A `get` call on `k1` sent over a raw connection with every value in
/// `traceparents` as its own header line; returns the `trace-id` answered.
fn raw_call_trace_id(host: &Host, traceparents: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(host.app).expect("connect");
    let mut request = "POST /actors/counter/k1/actions/get HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: 0\r\n".to_owned();
    for t in traceparents {
        request.push_str(&format!("traceparent: {t}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("read to close");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let ids: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("trace-id: "))
        .collect();
    assert_eq!(ids.len(), 1, "{answer}");
    ids[0].trim().to_owned()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A valid answer in some trace: the headers agree, the span is new.
fn check_headers(a: &Answer) {
    assert!(is_hex(&a.trace_id, 32), "{}", a.trace_id);
    assert!(is_hex(a.span_id(), 16), "{}", a.traceparent);
    assert_ne!(a.trace_id, "0".repeat(32));
    assert_ne!(a.span_id(), "0".repeat(16));
    assert!(a.traceparent.starts_with(&format!("00-{}-", a.trace_id)));
}

#[test]
fn a_caller_trace_is_continued_answered_and_on_every_json_log_line_of_the_action() {
    let data = tempfile::tempdir().expect("temp dir");
    let host = Host::start_logged_env(
        data.path(),
        &["--workload", "none", "--log-format", "json"],
        &[("RUST_LOG", "info,actor_host=debug")],
    );
    let (status, created) = host.post("/actors/counter/k1", "");
    assert_eq!(status, 200, "{created}");
    let id_gen = format!(
        "{}:{}",
        created["actor_id"].as_str().expect("id"),
        created["generation"]
    );

    // Continued: same trace, the caller's flags, a new span of the host's.
    let failed = call(&host, "k1", "fail", "{}", &[&traceparent("01")]);
    assert_eq!(
        failed.status, 422,
        "the action's own error, traced: {}",
        failed.body
    );
    check_headers(&failed);
    assert_eq!(failed.trace_id, TRACE);
    assert!(
        failed.traceparent.ends_with("-01"),
        "{}",
        failed.traceparent
    );
    assert_ne!(failed.span_id(), PARENT, "the host's span is its own");
    let slow = call(&host, "k1", "slow", r#"{"ms": 1}"#, &[&traceparent("00")]);
    assert_eq!(slow.status, 200, "{}", slow.body);
    assert_eq!(slow.trace_id, TRACE);
    assert!(
        slow.traceparent.ends_with("-00"),
        "unsampled stays unsampled"
    );
    assert_ne!(slow.span_id(), failed.span_id(), "one span per call");
    // A panic: the host's own line about it is inside the span too.
    let panicked = call(&host, "k1", "panic", "{}", &[&traceparent("01")]);
    assert_eq!(panicked.status, 500);
    assert_eq!(panicked.trace_id, TRACE);

    // Started: no header, an invalid one, two of them; never an error.
    let started = call(&host, "k2", "get", "{}", &[]);
    assert_eq!(
        started.status, 404,
        "no such actor: the answer still names its trace"
    );
    check_headers(&started);
    assert_ne!(started.trace_id, TRACE);
    let upper = traceparent("01").to_uppercase();
    for bad in [vec![upper.as_str()], vec!["00-zz"]] {
        let a = call(&host, "k1", "get", "{}", &bad);
        assert_eq!(a.status, 200, "{bad:?}: {}", a.body);
        check_headers(&a);
        assert_ne!(a.trace_id, TRACE, "{bad:?} is not honoured");
        assert!(a.traceparent.ends_with("-01"), "a started trace is sampled");
    }
    // Sent twice (ureq sets one header per name, so by hand): not honoured.
    let twice = raw_call_trace_id(&host, &[&traceparent("01"), &traceparent("01")]);
    assert!(is_hex(&twice, 32), "{twice}");
    assert_ne!(twice, TRACE, "a repeated traceparent is not honoured");
    assert_eq!(
        raw_call_trace_id(&host, &[&traceparent("01")]),
        TRACE,
        "the raw request itself is read"
    );
    let bad_body = call(&host, "k1", "get", "[1]", &[&traceparent("01")]);
    assert_eq!(bad_body.status, 400);
    assert_eq!(
        bad_body.trace_id, TRACE,
        "a refused call still answers with its trace"
    );

    // Every line written inside the traced actions carries their span's fields.
    // Written before the answer was sent, so already in the log.
    let log = host.log();
    for (message, answer, action) in [
        ("failing as asked", &failed, "fail"),
        ("sleeping as asked", &slow, "slow"),
        ("action panicked; stopping the actor", &panicked, "panic"),
    ] {
        let lines = json_lines(&log, message);
        assert_eq!(lines.len(), 1, "{message:?} once in:\n{log}");
        let span = &lines[0]["span"];
        assert_eq!(span["name"], "action", "{span}");
        assert_eq!(span["trace_id"], TRACE, "{message}: {span}");
        assert_eq!(span["span_id"], answer.span_id(), "{message}: {span}");
        assert_eq!(span["actor_name"], "counter");
        assert_eq!(span["actor_key"], "k1");
        assert_eq!(span["actor_id_gen"], id_gen.as_str());
        assert_eq!(span["action"], action);
    }
    // And lines outside any action carry none.
    let outside: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening") || m.contains("catalogue"))
        })
        .collect();
    assert!(
        outside.iter().all(|l| l.get("span").is_none()),
        "{outside:?}"
    );
}

#[test]
fn the_text_log_format_carries_the_trace_on_the_action_s_lines() {
    let data = tempfile::tempdir().expect("temp dir");
    let host = Host::start_logged_env(
        data.path(),
        &["--workload", "none", "--log-format", "text"],
        &[("RUST_LOG", "info,actor_host=debug")],
    );
    assert_eq!(host.post("/actors/counter/k%0Ab", "").0, 200);
    let failed = call(&host, "k%0Ab", "fail", "{}", &[&traceparent("01")]);
    assert_eq!(failed.status, 422);
    let log = host.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failing as asked"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, the key's newline escaped:\n{log}"
    );
    let line = lines[0];
    for field in [
        format!("trace_id={TRACE}"),
        format!("span_id={}", failed.span_id()),
        "action=\"fail\"".to_owned(),
        "actor_key=k\\nb".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
}
