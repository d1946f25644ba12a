//! The one declaration of every per-actor family.
//!
//! Each line below names a family once; the per-actor storage, the recording
//! accessor on [`ActorMetrics`](crate::ActorMetrics), the `actor_type_*`
//! aggregate, the rendering and the removal all follow from it. Adding a family is
//! one line here (and, for a new label, one enum in `labels.rs`).

use crate::cells::*;
use crate::labels::*;

/// What the catalogue says about one family.
#[derive(Debug, Clone, Copy)]
pub struct FamilyInfo {
    /// Per-actor name (`actor_…`), labelled `actor_id_gen`, `actor_key`, `envoy_key`.
    pub name: &'static str,
    /// Aggregate name (`actor_type_…`), labelled `actor_name`.
    pub aggregate_name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// The extra enum label, if any.
    pub extra_label: Option<&'static str>,
    /// Whether the aggregate also carries the `action` label.
    pub by_action: bool,
    /// Histogram buckets (`None` for other kinds).
    pub buckets: Option<&'static Buckets>,
}

macro_rules! opt_buckets {
    () => {
        None
    };
    ($b:expr) => {
        Some(&$b)
    };
}

/// The public recorder type of each cell kind.
macro_rules! ref_of {
    (CounterCell) => { crate::actor::CounterRef<'_> };
    (GaugeCell) => { crate::actor::GaugeRef<'_> };
    (HistogramCell) => { crate::actor::HistogramRef<'_> };
    (ActiveCell) => { crate::actor::ActiveRef<'_> };
}

macro_rules! families {
    (
        scalar { $( $sf:ident : $scell:ident $([$sb:expr])? => $sname:literal, $shelp:literal; )* }
        labelled { $( $lf:ident : $lcell:ident $([$lb:expr])? by $le:ty => $lname:literal, $lhelp:literal; )* }
        action { $( $af:ident : $acell:ident $([$ab:expr])? => $aname:literal, $ahelp:literal; )* }
    ) => {
        /// Every series of one actor, in one allocation.
        #[derive(Debug, Default)]
        pub(crate) struct ActorSeries {
            $(pub(crate) $sf: $scell,)*
            $(pub(crate) $lf: Labelled<$lcell, { <$le as LabelEnum>::COUNT }>,)*
            $(pub(crate) $af: $acell,)*
        }

        /// Plain totals of the type-level (non-action) families, summed at scrape time.
        #[derive(Debug, Default, Clone)]
        pub(crate) struct SeriesTotals {
            $($sf: <$scell as Cell>::Total,)*
            $($lf: [Option<<$lcell as Cell>::Total>; <$le as LabelEnum>::COUNT],)*
        }

        /// Per (`actor_name`, `action`) cells of the action families.
        #[derive(Debug, Default)]
        pub(crate) struct ActionCells {
            $(pub(crate) $af: $acell,)*
        }

        /// Every family of the catalogue, in rendering order.
        pub static FAMILIES: &[FamilyInfo] = &[
            $(FamilyInfo {
                name: concat!("actor_", $sname),
                aggregate_name: concat!("actor_type_", $sname),
                help: $shelp,
                kind: <$scell as Cell>::TYPE,
                extra_label: None,
                by_action: false,
                buckets: opt_buckets!($($sb)?),
            },)*
            $(FamilyInfo {
                name: concat!("actor_", $lname),
                aggregate_name: concat!("actor_type_", $lname),
                help: $lhelp,
                kind: <$lcell as Cell>::TYPE,
                extra_label: Some(<$le as LabelEnum>::LABEL),
                by_action: false,
                buckets: opt_buckets!($($lb)?),
            },)*
            $(FamilyInfo {
                name: concat!("actor_", $aname),
                aggregate_name: concat!("actor_type_", $aname),
                help: $ahelp,
                kind: <$acell as Cell>::TYPE,
                extra_label: None,
                by_action: true,
                buckets: opt_buckets!($($ab)?),
            },)*
        ];

        impl ActorSeries {
            /// Zeroes every gauge (the actor stopped); counters and histograms keep totals.
            pub(crate) fn zero_gauges(&self) {
                $(self.$sf.zero();)*
                $(self.$lf.zero();)*
            }

            /// Adds this actor's values to its type's totals.
            pub(crate) fn add_to(&self, t: &mut SeriesTotals) {
                $(self.$sf.add_to(&mut t.$sf);)*
                $(self.$lf.add_to(&mut t.$lf);)*
            }

            /// Folds this actor's final values into its type's retired totals.
            pub(crate) fn fold_into(&self, retired: &ActorSeries) {
                $(self.$sf.fold_into(&retired.$sf);)*
                $(self.$lf.fold_into(&retired.$lf);)*
            }
        }

        /// Writes every per-actor family for the given actors.
        pub(crate) fn render_per_actor(actors: &[&crate::actor::ActorEntry], out: &mut String) {
            let mut labels = String::new();
            $(
                header(out, concat!("actor_", $sname), $shelp, <$scell as Cell>::TYPE);
                for a in actors {
                    let mut t = Default::default();
                    a.series.$sf.add_to(&mut t);
                    <$scell as Cell>::render(&t, concat!("actor_", $sname), &a.label_block, opt_buckets!($($sb)?), out);
                }
            )*
            $(
                header(out, concat!("actor_", $lname), $lhelp, <$lcell as Cell>::TYPE);
                for a in actors {
                    for (i, c) in a.series.$lf.used() {
                        let mut t = Default::default();
                        c.add_to(&mut t);
                        labels.clear();
                        labels.push_str(&a.label_block);
                        labels.push(',');
                        push_label(&mut labels, <$le as LabelEnum>::LABEL, <$le as LabelEnum>::ALL[i].as_str());
                        <$lcell as Cell>::render(&t, concat!("actor_", $lname), &labels, opt_buckets!($($lb)?), out);
                    }
                }
            )*
            $(
                header(out, concat!("actor_", $aname), $ahelp, <$acell as Cell>::TYPE);
                for a in actors {
                    let mut t = Default::default();
                    a.series.$af.add_to(&mut t);
                    <$acell as Cell>::render(&t, concat!("actor_", $aname), &a.label_block, opt_buckets!($($ab)?), out);
                }
            )*
        }

        /// Writes every `actor_type_*` family: `types` holds each type's label
        /// block (`actor_name="…"`) and totals; `actions` each (type, action)
        /// label block and cells.
        pub(crate) fn render_aggregates(
            types: &[(&str, SeriesTotals)],
            actions: &[(String, std::sync::Arc<ActionCells>)],
            out: &mut String,
        ) {
            let mut labels = String::new();
            $(
                header(out, concat!("actor_type_", $sname), $shelp, <$scell as Cell>::TYPE);
                for (block, t) in types {
                    <$scell as Cell>::render(&t.$sf, concat!("actor_type_", $sname), block, opt_buckets!($($sb)?), out);
                }
            )*
            $(
                header(out, concat!("actor_type_", $lname), $lhelp, <$lcell as Cell>::TYPE);
                for (block, t) in types {
                    for (i, v) in t.$lf.iter().enumerate() {
                        let Some(v) = v else { continue };
                        labels.clear();
                        labels.push_str(block);
                        labels.push(',');
                        push_label(&mut labels, <$le as LabelEnum>::LABEL, <$le as LabelEnum>::ALL[i].as_str());
                        <$lcell as Cell>::render(v, concat!("actor_type_", $lname), &labels, opt_buckets!($($lb)?), out);
                    }
                }
            )*
            $(
                header(out, concat!("actor_type_", $aname), $ahelp, <$acell as Cell>::TYPE);
                for (block, cells) in actions {
                    let mut t = Default::default();
                    cells.$af.add_to(&mut t);
                    <$acell as Cell>::render(&t, concat!("actor_type_", $aname), block, opt_buckets!($($ab)?), out);
                }
            )*
        }

        impl crate::actor::ActorMetrics {
            $(
                #[doc = $shelp]
                #[inline]
                pub fn $sf(&self) -> ref_of!($scell) {
                    self.0.entry.series.$sf.recorder(&self.0, opt_buckets!($($sb)?))
                }
            )*
            $(
                #[doc = $lhelp]
                #[inline]
                pub fn $lf(&self, label: $le) -> ref_of!($lcell) {
                    self.0.entry.series.$lf.get(label.index()).recorder(&self.0, opt_buckets!($($lb)?))
                }
            )*
        }
    };
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    // HELP escapes backslash and newline, as TextEncoder does.
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

pub(crate) use crate::actor::Record;

families! {
    scalar {
        active: ActiveCell => "active", "Live registrations of the actor's label set: 1 while the actor runs, 0 after it stops.";
        queue_depth: GaugeCell => "queue_depth", "Messages waiting in the actor's queue.";
        queue_messages_sent_total: CounterCell => "queue_messages_sent_total", "Messages sent to the actor's queue.";
        queue_messages_received_total: CounterCell => "queue_messages_received_total", "Messages the actor received from its queue.";
        connections_active: GaugeCell => "connections_active", "Open connections to the actor.";
        connections_total: CounterCell => "connections_total", "Connections the actor accepted.";
        sqlite_commits_total: CounterCell => "sqlite_commits_total", "SQLite transactions committed by the actor's database.";
        sqlite_rollbacks_total: CounterCell => "sqlite_rollbacks_total", "SQLite transactions rolled back by the actor's database.";
        sqlite_commit_duration_seconds: HistogramCell[SQLITE_BUCKETS] => "sqlite_commit_duration_seconds", "Time from SQLite commit start until the commit is durable.";
        sqlite_busy_total: CounterCell => "sqlite_busy_total", "Times the actor's database waited on a lock (SQLITE_BUSY retries).";
        sqlite_wal_pages_total: CounterCell => "sqlite_wal_pages_total", "Pages appended to the actor's SQLite write-ahead log.";
    }
    labelled {
        inbox_depth: GaugeCell by Inbox => "inbox_depth", "Items waiting in one of the actor's inboxes.";
        user_tasks_active: GaugeCell by TaskKind => "user_tasks_active", "User tasks of the actor still running.";
        user_task_duration_seconds: HistogramCell[TASK_BUCKETS] by TaskKind => "user_task_duration_seconds", "Run time of the actor's finished user tasks.";
        state_mutations_total: CounterCell by MutationReason => "state_mutations_total", "Mutations of the actor's state.";
        shutdown_wait_seconds: HistogramCell[SHUTDOWN_BUCKETS] by ShutdownReason => "shutdown_wait_seconds", "Time the actor's shutdown waited for its user tasks.";
        shutdown_timeouts_total: CounterCell by ShutdownReason => "shutdown_timeouts_total", "Shutdowns that gave up waiting for user tasks.";
        startup_duration_seconds: HistogramCell[STARTUP_BUCKETS] by StartupPhase => "startup_duration_seconds", "Duration of each phase of the actor's startup.";
        sqlite_rows_changed_total: CounterCell by SqliteOp => "sqlite_rows_changed_total", "Rows changed in the actor's database, by operation.";
        sqlite_statement_duration_seconds: HistogramCell[SQLITE_BUCKETS] by StatementKind => "sqlite_statement_duration_seconds", "Run time of SQL statements on the actor's database.";
    }
    action {
        action_calls_total: CounterCell => "action_calls_total", "Action calls handled by the actor.";
        action_errors_total: CounterCell => "action_errors_total", "Action calls that returned an error.";
        action_duration_seconds: HistogramCell[ACTION_BUCKETS] => "action_duration_seconds", "Run time of the actor's action calls.";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naming rules `promtool check metrics` applies, for every family.
    #[test]
    fn family_names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for f in FAMILIES {
            for name in [f.name, f.aggregate_name] {
                assert!(seen.insert(name), "{name} declared twice");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{name}: snake_case ASCII"
                );
                assert!(
                    !name.contains("_ms") && !name.contains("millis"),
                    "{name}: base units"
                );
                match f.kind {
                    "counter" => assert!(name.ends_with("_total"), "{name}: counters end _total"),
                    _ => assert!(
                        !name.ends_with("_total"),
                        "{name}: only counters end _total"
                    ),
                }
                if f.kind == "histogram" {
                    assert!(name.ends_with("_seconds"), "{name}: durations in seconds");
                    let b = f.buckets.expect("histograms declare buckets").bounds();
                    assert!(!b.is_empty());
                    assert!(
                        b.windows(2).all(|w| w[0] < w[1]),
                        "{name}: buckets increase"
                    );
                }
                assert!(!f.help.is_empty(), "{name}: HELP");
            }
            assert!(f.aggregate_name.starts_with("actor_type_"));
        }
        assert_eq!(FAMILIES.len(), 23, "the DESIGN.md catalogue");
    }
}
