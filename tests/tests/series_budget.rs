//! The series budget, on the real binary: a `counter` actor after create + one
//! `increment` costs at most 16 series at the default level (`core`), and
//! exactly what METRICS.md states at each level (today 0 / 14 / 152 at off /
//! core / full, the same over OpenMetrics; 12 at core over protobuf with
//! native histograms).

use actor_e2e_tests::Host;
use actor_metrics::scrape::Scrape;

/// Series of one actor in a scrape (those carrying its `actor_id_gen`).
fn series_of(text: &str, id_gen: &str) -> usize {
    Scrape::parse(text)
        .expect("scrape parses")
        .samples()
        .iter()
        .filter(|s| s.labels.get("actor_id_gen").map(String::as_str) == Some(id_gen))
        .count()
}

/// The budget METRICS.md promises for this actor at `core`.
const CORE_BUDGET: usize = 16;

#[test]
fn a_counter_actor_fits_the_series_budget_at_each_level() {
    let host = Host::start(&["--workload", "none"]);
    let (status, created) = host.post("/actors/counter/budget", "");
    assert_eq!(status, 200, "{created}");
    let (status, body) = host.post("/actors/counter/budget/actions/increment", "{}");
    assert_eq!(status, 200, "{body}");
    let id_gen = format!(
        "{}:{}",
        created["actor_id"].as_str().expect("actor_id"),
        created["generation"]
    );

    let default = series_of(&host.scrape_text(), &id_gen);
    let core = series_of(&host.scrape_text_with("detail=core"), &id_gen);
    let full = series_of(&host.scrape_text_with("detail=full"), &id_gen);
    let off = series_of(&host.scrape_text_with("detail=off"), &id_gen);
    let one = series_of(&host.scrape_text_with("actor_key=budget"), &id_gen);
    // OpenMetrics (what Prometheus asks for first) writes no `_created`
    // series: the same series as the text format at each level.
    let om = |query: &str| {
        Scrape::parse_openmetrics(&host.scrape_openmetrics_with(query))
            .expect("OpenMetrics parses")
            .samples()
            .iter()
            .filter(|s| s.labels.get("actor_id_gen").map(String::as_str) == Some(id_gen.as_str()))
            .count()
    };
    assert_eq!(om(""), core, "OpenMetrics at the default level");
    assert_eq!(om("detail=core"), core, "OpenMetrics at core");
    assert_eq!(om("detail=full"), full, "OpenMetrics at full");
    assert_eq!(om("detail=off"), off, "OpenMetrics at off");
    // In protobuf (Prometheus with native histograms) a histogram is one series.
    let proto = host.scrape_protobuf_with("");
    let mine = |l: &std::collections::BTreeMap<String, String>| {
        l.get("actor_id_gen").map(String::as_str) == Some(id_gen.as_str())
    };
    let native = proto.samples().iter().filter(|s| mine(&s.labels)).count()
        + proto.natives().iter().filter(|n| mine(&n.labels)).count();
    eprintln!(
        "series of one counter actor: off {off}, core {core} (protobuf with native histograms {native}), full {full}"
    );
    assert_eq!(
        native,
        core - 2,
        "two histograms: one native series each, not _sum and _count"
    );

    assert_eq!(default, core, "core is the default");
    assert!(
        core <= CORE_BUDGET,
        "a counter actor costs {core} series at core; the budget is {CORE_BUDGET}"
    );
    // The figures METRICS.md states ("Series per actor").
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../METRICS.md"))
        .expect("METRICS.md");
    let row = format!(
        "| a `counter` actor after create + one `increment` (the budget test) | {off} | {core} | {full} |"
    );
    assert!(doc.contains(&row), "METRICS.md should say: {row}");
    assert_eq!(off, 0);
    assert_eq!(one, full, "?actor_key= renders the actor at full");
}
