//! `/actors/top` (JSON) and `/actors` (an HTML page): which actors stand out
//! from their type, from the figures the metrics instance keeps, for a source
//! that has them ([`MetricsSource::metrics`]). Both take the `/metrics` token
//! and a scrape slot, and are answered on the blocking pool.
//!
//! The page is server-rendered: no script, no external asset, every value
//! escaped. Each row links to that actor's full scrape by its
//! `actor_id_gen` (`/metrics?actor_id_gen=…`), which is never cut and
//! unique to one actor and generation: an `actor_key` label value is the
//! key as exported (`~` doubled, a long key cut and hashed), which
//! `?actor_key=` would escape again and so miss.

use std::fmt::Write as _;
use std::sync::Arc;

use actor_metrics::{Metrics, Promotion, TopBy, TopError, TopQuery, TopRow};
use hyper::StatusCode;
use serde_json::json;

use crate::source::MetricsSource;

/// What a route answers: status, content type, body.
pub(crate) type Answer = (StatusCode, &'static str, String);

/// One of the two routes: the answer from the source and the query string.
pub(crate) type Route = fn(&dyn MetricsSource, Option<&str>) -> Answer;

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The source's metrics instance, or the 404 answer.
fn instance(source: &dyn MetricsSource) -> Result<Metrics, Answer> {
    source.metrics().ok_or((
        StatusCode::NOT_FOUND,
        TEXT,
        "this metrics source keeps no per-actor figures\n".into(),
    ))
}

/// The windows an instance keeps, by name: the rules' window first.
fn window_names(m: &Metrics) -> [String; 2] {
    m.config().promotion.windows().map(Promotion::window_name)
}

/// `GET /actors/top?by=…&n=…&type=…&window=…`.
pub(crate) fn top(source: &dyn MetricsSource, query: Option<&str>) -> Answer {
    let m = match instance(source) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let bad = |e: TopError| (StatusCode::BAD_REQUEST, TEXT, format!("{e}\n"));
    let q = match TopQuery::parse(query.unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let rows = match m.top(&q) {
        Ok(rows) => rows,
        Err(e) => return bad(e),
    };
    let window = q
        .window
        .clone()
        .unwrap_or_else(|| window_names(&m)[0].clone());
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "actor_name": r.actor_name,
                "actor_key": r.actor_key,
                "actor_id_gen": r.actor_id_gen,
                "envoy_key": r.envoy_key,
                "figure": r.figure,
                "calls": r.calls.round(),
                "promoted": r.promoted.is_some(),
                "reason": r.promoted.map(|p| p.as_str()),
                "live": r.live,
                "scrape": scrape_link(&r.actor_id_gen),
            })
        })
        .collect();
    let body = json!({
        "by": q.by.as_str(),
        "unit": q.by.unit(),
        "window": window,
        "type": q.actor_type,
        // The figures are the last tick's: an empty answer right after a
        // burst says how long until the next.
        "figures_age_seconds": m.figures_age().map(|d| d.as_secs_f64()),
        "tick_seconds": m.config().promotion.tick.as_secs_f64(),
        "rows": rows,
    });
    (StatusCode::OK, JSON, format!("{body}\n"))
}

/// The tables of the page: ranking, title.
const TABLES: [(TopBy, &str); 3] = [
    (TopBy::ErrorRatio, "Error ratio"),
    (TopBy::MeanLatency, "Mean latency"),
    (TopBy::QueueDepth, "Queue depth"),
];

/// `GET /actors?n=…&type=…&window=…`: the top tables as one HTML page.
pub(crate) fn page(source: &dyn MetricsSource, query: Option<&str>) -> Answer {
    let m = match instance(source) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let base = match TopQuery::parse(query.unwrap_or("")) {
        Ok(q) => TopQuery {
            n: if actor_metrics::query::pairs(query.unwrap_or("")).any(|p| p.name == "n") {
                q.n
            } else {
                10
            },
            ..q
        },
        Err(e) => return (StatusCode::BAD_REQUEST, TEXT, format!("{e}\n")),
    };
    let names = window_names(&m);
    let window = base.window.clone().unwrap_or_else(|| names[0].clone());
    let mut tables = Vec::new();
    for (by, title) in TABLES {
        match m.top(&TopQuery { by, ..base.clone() }) {
            Ok(rows) => tables.push((by, title, rows)),
            Err(e) => return (StatusCode::BAD_REQUEST, TEXT, format!("{e}\n")),
        }
    }
    let tick = m.config().promotion.tick.as_secs_f64();
    let freshness = match m.figures_age() {
        Some(age) => format!(
            "Figures from {:.0} s ago, taken every {tick:.0} s.",
            age.as_secs_f64()
        ),
        None => format!("No figures yet: the first come {tick:.0} s after the host starts."),
    };
    (
        StatusCode::OK,
        HTML,
        render_page(&names, &window, &freshness, &base, &tables),
    )
}

fn render_page(
    windows: &[String; 2],
    window: &str,
    freshness: &str,
    q: &TopQuery,
    tables: &[(TopBy, &str, Vec<TopRow>)],
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>Actors that stand out</title><style>",
        "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}",
        "table{border-collapse:collapse;margin-bottom:2em;min-width:60em}",
        "th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd}",
        "td.num{text-align:right;font-variant-numeric:tabular-nums}",
        ".bar{background:#c33;height:.8em;display:inline-block}",
        "tr.promoted td:first-child{font-weight:bold}",
        ".tag{background:#fde;border:1px solid #c33;border-radius:3px;padding:0 .3em;font-size:12px}",
        "</style></head><body>\n<h1>Actors that stand out</h1>\n"
    ));
    let _ = writeln!(
        out,
        "<p>Window <b>{}</b> (other: {}). Worst first; <span class=\"tag\">promoted</span> actors are in full detail in the <a href=\"/metrics?promoted=1\">promoted scrape</a>. Each key links to that actor's full scrape. {}</p>",
        esc(window),
        windows
            .iter()
            .filter(|w| w.as_str() != window)
            .map(|w| {
                let mut href = String::from("?window=");
                href.push_str(&url(w));
                if let Some(t) = &q.actor_type {
                    href.push_str("&amp;type=");
                    href.push_str(&url(t));
                }
                format!("<a href=\"{href}\">{}</a>", esc(w))
            })
            .collect::<Vec<_>>()
            .join(", "),
        esc(freshness)
    );
    for (by, title, rows) in tables {
        let _ = write!(
            out,
            "<h2>{title}</h2>\n<table id=\"{}\"><thead><tr><th>actor_key</th><th>type</th><th>actor_id_gen</th><th>envoy_key</th><th>{}</th><th></th><th>calls</th><th>promoted</th></tr></thead><tbody>\n",
            by.as_str(),
            by.unit()
        );
        if rows.is_empty() {
            out.push_str("<tr><td colspan=\"8\">none stands out</td></tr>\n");
        }
        let max = rows
            .first()
            .map_or(1.0, |r| r.figure)
            .max(f64::MIN_POSITIVE);
        for r in rows {
            let width = (r.figure / max * 100.0).clamp(1.0, 100.0);
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><span class=\"bar\" style=\"width:{width:.0}px\"></span></td><td class=\"num\">{}</td><td>{}</td></tr>",
                if r.promoted.is_some() { "promoted" } else { "" },
                scrape_link(&r.actor_id_gen),
                esc(&r.actor_key),
                esc(&r.actor_name),
                esc(&r.actor_id_gen),
                esc(&r.envoy_key),
                figure(*by, r.figure),
                r.calls.round(),
                r.promoted
                    .map(|p| format!("<span class=\"tag\">{}</span>", p.as_str()))
                    .unwrap_or_default(),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// A figure as a reader wants it: a percentage, milliseconds, or a count.
fn figure(by: TopBy, v: f64) -> String {
    match by {
        TopBy::ErrorRatio => format!("{:.1} %", v * 100.0),
        TopBy::MeanLatency | TopBy::P99Latency => format!("{:.1} ms", v * 1000.0),
        _ => format!("{v:.0}"),
    }
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value, percent-encoded (and so safe in an attribute).
fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The path of one actor's full scrape: by `actor_id_gen`, the one label
/// value that is the actor's own text, uncut (see the module docs).
fn scrape_link(actor_id_gen: &str) -> String {
    format!("/metrics?actor_id_gen={}", url(actor_id_gen))
}

/// Whether the route is one of these, and which.
pub(crate) fn route(path: &str) -> Option<Route> {
    match path {
        "/actors/top" => Some(top),
        "/actors" | "/actors/" => Some(page),
        _ => None,
    }
}

/// Runs `answer` on the blocking pool (it reads every retained actor).
pub(crate) async fn answer(
    source: Arc<dyn MetricsSource>,
    f: Route,
    query: Option<String>,
) -> Answer {
    tokio::task::spawn_blocking(move || f(&*source, query.as_deref()))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "an /actors answer failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "internal error\n".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_text_and_in_links() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(url("a b&c\"<"), "a+b%26c%22%3C");
    }
}
