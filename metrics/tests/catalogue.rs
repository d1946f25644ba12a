//! The documented catalogue (METRICS.md) and the declared families agree.

use actor_metrics::{Config, FAMILIES, Metrics};

#[test]
fn metrics_md_lists_every_declared_family() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../METRICS.md")).unwrap();
    for f in FAMILIES {
        assert!(
            doc.contains(&format!("`{}`", f.name)),
            "{} missing from METRICS.md",
            f.name
        );
        if let Some(label) = f.extra_label {
            assert!(
                doc.contains(&format!("`{label}`")),
                "label {label} undocumented"
            );
        }
    }
    let m = Metrics::new(Config::default()).unwrap();
    for family in m.registry().gather() {
        assert!(
            doc.contains(&format!("`{}", family.name())),
            "{} missing from METRICS.md",
            family.name()
        );
    }
}

#[test]
fn every_declared_family_is_rendered_with_help_and_type() {
    let m = Metrics::new(Config::default()).unwrap();
    let text = m.render();
    for f in FAMILIES {
        for name in [f.name, f.aggregate_name] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} HELP");
            assert!(
                text.contains(&format!("# TYPE {name} {}\n", f.kind)),
                "{name} TYPE"
            );
        }
    }
}
