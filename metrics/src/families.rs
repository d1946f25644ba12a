//! The one declaration of every per-actor family.
//!
//! Each line of `for_families!` names a family once: its field, cell kind,
//! bucket set, enum label, detail level, name and help. Everything else is
//! generated from it where it is used, by one `for_families!` block per site
//! that names the parts of a line and writes what each group generates:
//!
//! | generated | where |
//! |---|---|
//! | the actor's storage (`ActorSeries`), each registration's gauge contributions (`OwnGauges`), the per-action cells (`ActionCells`), the public [`Totals`], [`FAMILIES`] and [`FAMILY_COUNT`] | here |
//! | the recording accessors on [`ActorMetrics`](crate::ActorMetrics) | `actor.rs` |
//! | per-actor and aggregate writers, in text and protobuf | `render/` |
//! | the by-name dispatch the benches use (`testing::apply`) | `testing.rs` |
//!
//! Adding a family is one line here plus its row in METRICS.md (a test checks the
//! row); a new enum label is one `label_enum!` in `labels.rs`.
//!
//! The generated accessors on [`ActorMetrics`](crate::ActorMetrics), one per
//! family (the three action families are recorded together by `record_action`):
//!
//! | accessor | family | level |
//! |---|---|---|
//! | `active()` | `actor_active` | core |
//! | `queue_depth()` | `actor_queue_depth` | core |
//! | `queue_messages_sent_total()` | `actor_queue_messages_sent_total` | full |
//! | `queue_messages_received_total()` | `actor_queue_messages_received_total` | full |
//! | `connections_active()` | `actor_connections_active` | core |
//! | `connections_total()` | `actor_connections_total` | full |
//! | `sqlite_commits_total()` | `actor_sqlite_commits_total` | core |
//! | `sqlite_rollbacks_total()` | `actor_sqlite_rollbacks_total` | full |
//! | `sqlite_commit_duration_seconds()` | `actor_sqlite_commit_duration_seconds` | core |
//! | `sqlite_busy_total()` | `actor_sqlite_busy_total` | core |
//! | `sqlite_wal_pages_total()` | `actor_sqlite_wal_pages_total` | full |
//! | `inbox_depth(Inbox)` | `actor_inbox_depth` | core |
//! | `user_tasks_active(TaskKind)` | `actor_user_tasks_active` | full |
//! | `user_task_duration_seconds(TaskKind)` | `actor_user_task_duration_seconds` | full |
//! | `state_mutations_total(MutationReason)` | `actor_state_mutations_total` | core |
//! | `shutdown_wait_seconds(ShutdownReason)` | `actor_shutdown_wait_seconds` | full |
//! | `shutdown_timeouts_total(ShutdownReason)` | `actor_shutdown_timeouts_total` | core |
//! | `startup_duration_seconds(StartupPhase)` | `actor_startup_duration_seconds` | full |
//! | `sqlite_rows_changed_total(SqliteOp)` | `actor_sqlite_rows_changed_total` | full |
//! | `sqlite_statement_duration_seconds(StatementKind)` | `actor_sqlite_statement_duration_seconds` | full |
//! | `record_action(..)` | `actor_action_calls_total` | core |
//! | `record_action(..)` | `actor_action_errors_total` | core |
//! | `record_action(..)` | `actor_action_duration_seconds` | core |
//!
//! Why these are `core`: an operator reading one actor asks whether it runs, how
//! far behind it is (queue and inbox depth), who is connected, how its actions
//! and commits go (calls, errors, mean latency from `_sum`/`_count`), whether its
//! database waits on locks, how often its state changes, and whether its stops
//! time out. Everything else (per-kind task and statement timings, start phases,
//! row counts, WAL pages) stays exact on the `actor_type_*` aggregates and is
//! one `?actor_key=` scrape away for a single actor.

pub use crate::cells::{HistogramTotal, Kind};
pub use crate::native::NativeTotal;

use crate::buckets::*;
use crate::cells::*;
use crate::config::DetailLevel;
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
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The lowest detail level that exports this family per actor.
    pub level: DetailLevel,
    /// The extra enum label, if any.
    pub extra_label: Option<&'static str>,
    /// The extra label's values, in enum order (empty without an extra label).
    pub label_values: &'static [&'static str],
    /// Whether the aggregate also carries the `action` label.
    pub by_action: bool,
    /// Histogram buckets (`None` for other kinds).
    pub buckets: Option<&'static Buckets>,
    /// The recording accessor on `ActorMetrics` (`record_action` for action families).
    pub accessor: &'static str,
}

/// The catalogue, expanded once into `body`. See the module docs.
///
/// Form of a line: `field: Cell[BUCKETS] by LabelEnum, level => "name", "help";`
/// (`[BUCKETS]` for histograms only, `by` for the `labelled` group only).
///
/// A site writes `$`, then the names it binds to the parts of each group's
/// lines, then its body, which repeats over the lines with those names:
///
/// ```text
/// for_families! {
///     $ scalar(sf, scell, sb, slevel, sname, shelp)
///     labelled(lf, lcell, lb, le, llevel, lname, lhelp)
///     action(af, acell, ab, alevel, aname, ahelp) => {
///         $(/* one scalar family: $sf, $scell, opt_buckets!($($sb)?), … */)*
///     }
/// }
/// ```
///
/// The line grammar is written here once. The site gives the names because
/// `macro_rules!` metavariables are hygienic: a name this macro wrote into the
/// generated matcher would not bind the same name written in the site's body.
/// The `$` comes from the site because a transcriber cannot write a bare `$`.
macro_rules! for_families {
    (
        $d:tt
        scalar($sf:ident, $scell:ident, $sb:ident, $slevel:ident, $sname:ident, $shelp:ident)
        labelled($lf:ident, $lcell:ident, $lb:ident, $le:ident, $llevel:ident, $lname:ident, $lhelp:ident)
        action($af:ident, $acell:ident, $ab:ident, $alevel:ident, $aname:ident, $ahelp:ident)
        => { $($body:tt)* }
    ) => {
        macro_rules! generate {
            (
                scalar { $d( $d $sf:ident : $d $scell:ident $d([$d $sb:expr])?, $d $slevel:ident => $d $sname:literal, $d $shelp:literal; )* }
                labelled { $d( $d $lf:ident : $d $lcell:ident $d([$d $lb:expr])? by $d $le:ty, $d $llevel:ident => $d $lname:literal, $d $lhelp:literal; )* }
                action { $d( $d $af:ident : $d $acell:ident $d([$d $ab:expr])?, $d $alevel:ident => $d $aname:literal, $d $ahelp:literal; )* }
            ) => { $($body)* };
        }
        generate! {
            scalar {
                active: ActiveCell, core => "active", "Live registrations of the actor's label set: 1 while the actor runs, 0 after it stops.";
                queue_depth: GaugeCell, core => "queue_depth", "Messages waiting in the actor's queue.";
                queue_messages_sent_total: CounterCell, full => "queue_messages_sent_total", "Messages sent to the actor's queue.";
                queue_messages_received_total: CounterCell, full => "queue_messages_received_total", "Messages the actor received from its queue.";
                connections_active: GaugeCell, core => "connections_active", "Open connections to the actor.";
                connections_total: CounterCell, full => "connections_total", "Connections the actor accepted.";
                sqlite_commits_total: CounterCell, core => "sqlite_commits_total", "SQLite transactions committed by the actor's database.";
                sqlite_rollbacks_total: CounterCell, full => "sqlite_rollbacks_total", "SQLite transactions rolled back by the actor's database.";
                sqlite_commit_duration_seconds: HistogramCell[$crate::buckets::SQLITE_BUCKETS], core => "sqlite_commit_duration_seconds", "Time from SQLite commit start until the commit is durable.";
                sqlite_busy_total: CounterCell, core => "sqlite_busy_total", "Times the actor's database waited on a lock (SQLITE_BUSY retries).";
                sqlite_wal_pages_total: CounterCell, full => "sqlite_wal_pages_total", "Pages appended to the actor's SQLite write-ahead log.";
            }
            labelled {
                inbox_depth: GaugeCell by $crate::labels::Inbox, core => "inbox_depth", "Items waiting in one of the actor's inboxes.";
                user_tasks_active: GaugeCell by $crate::labels::TaskKind, full => "user_tasks_active", "User tasks of the actor still running.";
                user_task_duration_seconds: HistogramCell[$crate::buckets::TASK_BUCKETS] by $crate::labels::TaskKind, full => "user_task_duration_seconds", "Run time of the actor's finished user tasks.";
                state_mutations_total: CounterCell by $crate::labels::MutationReason, core => "state_mutations_total", "Mutations of the actor's state.";
                shutdown_wait_seconds: HistogramCell[$crate::buckets::SHUTDOWN_BUCKETS] by $crate::labels::ShutdownReason, full => "shutdown_wait_seconds", "Time the actor's shutdown waited for its user tasks.";
                shutdown_timeouts_total: CounterCell by $crate::labels::ShutdownReason, core => "shutdown_timeouts_total", "Shutdowns that gave up waiting for user tasks.";
                startup_duration_seconds: HistogramCell[$crate::buckets::STARTUP_BUCKETS] by $crate::labels::StartupPhase, full => "startup_duration_seconds", "Duration of each phase of the actor's startup.";
                sqlite_rows_changed_total: CounterCell by $crate::labels::SqliteOp, full => "sqlite_rows_changed_total", "Rows changed in the actor's database, by operation.";
                sqlite_statement_duration_seconds: HistogramCell[$crate::buckets::SQLITE_BUCKETS] by $crate::labels::StatementKind, full => "sqlite_statement_duration_seconds", "Run time of SQL statements on the actor's database.";
            }
            action {
                action_calls_total: CounterCell, core => "action_calls_total", "Action calls handled by the actor.";
                action_errors_total: CounterCell, core => "action_errors_total", "Action calls that returned an error.";
                action_duration_seconds: HistogramCell[$crate::buckets::ACTION_BUCKETS], core => "action_duration_seconds", "Run time of the actor's action calls.";
            }
        }
    };
}
pub(crate) use for_families;

/// `Some(&BUCKETS)` for a histogram line, `None` otherwise.
macro_rules! opt_buckets {
    () => {
        None
    };
    ($b:expr) => {
        Some(&$b)
    };
}
pub(crate) use opt_buckets;

/// The [`DetailLevel`] of a declaration's `core` / `full`.
macro_rules! level {
    (core) => {
        $crate::config::DetailLevel::Core
    };
    (full) => {
        $crate::config::DetailLevel::Full
    };
}

/// The public total type of each cell kind.
macro_rules! total_of {
    (ActiveCell) => {
        u64
    };
    (CounterCell) => {
        u64
    };
    (GaugeCell) => {
        i64
    };
    (HistogramCell) => {
        HistogramTotal
    };
}

for_families! {
    $ scalar(sf, scell, sb, slevel, sname, shelp)
    labelled(lf, lcell, lb, le, llevel, lname, lhelp)
    action(af, acell, ab, alevel, aname, ahelp) => {
        /// Every series of one actor, in one allocation.
        #[derive(Debug, Default)]
        pub(crate) struct ActorSeries {
            $(pub(crate) $sf: $scell,)*
            $(pub(crate) $lf: Labelled<$lcell, { <$le as LabelEnum>::COUNT }>,)*
            $(pub(crate) $af: $acell,)*
        }

        /// Where each family's cells start in [`ActorSeries`], indexed like
        /// [`FAMILIES`]: a scrape walking one family over many actors asks the
        /// CPU for that line of each entry ahead of time, not the whole entry.
        pub(crate) const SERIES_OFFSETS: [usize; FAMILY_COUNT] = [
            $(std::mem::offset_of!(ActorSeries, $sf),)*
            $(std::mem::offset_of!(ActorSeries, $lf),)*
            $(std::mem::offset_of!(ActorSeries, $af),)*
        ];

        /// What one registration keeps of its own: its contribution to each
        /// gauge it shares with other live registrations of its label set.
        #[derive(Debug, Default)]
        pub(crate) struct OwnGauges {
            $(pub(crate) $sf: <$scell as Cell>::Own,)*
            $(pub(crate) $lf: [<$lcell as Cell>::Own; <$le as LabelEnum>::COUNT],)*
        }

        /// Per (`actor_name`, `action`) cells of the action families.
        #[derive(Debug, Default)]
        pub(crate) struct ActionCells {
            $(pub(crate) $af: $acell,)*
            /// Its duration buckets' and errors' exemplars.
            pub(crate) exemplars: crate::exemplar::ActionExemplars,
        }

        /// One actor type's totals over its live, retained and removed actors: what
        /// the `actor_type_*` aggregates export. Gauges count running actors only;
        /// labelled families hold one value per label value, in enum order; the
        /// action families are summed over every action.
        #[derive(Debug, Default, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct Totals {
            $(#[doc = $shelp] pub $sf: total_of!($scell),)*
            $(#[doc = $lhelp] pub $lf: [total_of!($lcell); <$le as LabelEnum>::COUNT],)*
            $(#[doc = $ahelp] pub $af: total_of!($acell),)*
        }

        /// Number of declared families.
        pub const FAMILY_COUNT: usize = [$(stringify!($sf),)* $(stringify!($lf),)* $(stringify!($af),)*].len();

        /// Every family of the catalogue, in rendering order.
        pub static FAMILIES: [FamilyInfo; FAMILY_COUNT] = [
            $(FamilyInfo {
                name: concat!("actor_", $sname),
                aggregate_name: concat!("actor_type_", $sname),
                help: $shelp,
                kind: <$scell as Cell>::KIND,
                level: level!($slevel),
                extra_label: None,
                label_values: &[],
                by_action: false,
                buckets: opt_buckets!($($sb)?),
                accessor: stringify!($sf),
            },)*
            $(FamilyInfo {
                name: concat!("actor_", $lname),
                aggregate_name: concat!("actor_type_", $lname),
                help: $lhelp,
                kind: <$lcell as Cell>::KIND,
                level: level!($llevel),
                extra_label: Some(<$le as LabelEnum>::LABEL),
                label_values: <$le as LabelEnum>::VALUES,
                by_action: false,
                buckets: opt_buckets!($($lb)?),
                accessor: stringify!($lf),
            },)*
            $(FamilyInfo {
                name: concat!("actor_", $aname),
                aggregate_name: concat!("actor_type_", $aname),
                help: $ahelp,
                kind: <$acell as Cell>::KIND,
                level: level!($alevel),
                extra_label: None,
                label_values: &[],
                by_action: true,
                buckets: opt_buckets!($($ab)?),
                accessor: "record_action",
            },)*
        ];

        impl ActorSeries {
            /// Adds this actor's values of the type-level families to `t`.
            pub(crate) fn add_to(&self, t: &mut Totals) {
                $(self.$sf.add_to(&mut t.$sf);)*
                $(self.$lf.add_to(&mut t.$lf);)*
            }

            /// Folds this actor's final values into its type's retired totals.
            pub(crate) fn fold_into(&self, retired: &ActorSeries) {
                $(self.$sf.fold_into(&retired.$sf);)*
                $(self.$lf.fold_into(&retired.$lf);)*
            }

            /// Asks the CPU for the blocks of the enum-labelled families (a
            /// fold reads them), once this series' own lines are in cache.
            pub(crate) fn prefetch_blocks(&self) {
                $(self.$lf.prefetch();)*
            }

            /// Takes one stopping registration's gauge contributions back out.
            pub(crate) fn withdraw(&self, own: &OwnGauges) {
                $(self.$sf.withdraw(&own.$sf);)*
                $(self.$lf.withdraw(&own.$lf);)*
            }
        }

        impl ActionCells {
            /// Adds this action's values to its type's totals.
            pub(crate) fn add_to(&self, t: &mut Totals) {
                $(self.$af.add_to(&mut t.$af);)*
            }
        }
    }
}

impl FamilyInfo {
    /// The family declared under `name` (per-actor or aggregate name).
    pub fn by_name(name: &str) -> Option<&'static FamilyInfo> {
        FAMILIES
            .iter()
            .find(|f| f.name == name || f.aggregate_name == name)
    }

    /// Series one label value of this family costs per actor at `level`:
    /// 0 below the family's level, 1 for a counter or gauge, 2 for a histogram
    /// at `core` (`_sum`, `_count`), buckets + `+Inf` + 2 at `full`.
    pub fn series_per_value(&self, level: DetailLevel) -> usize {
        if level < self.level {
            return 0;
        }
        match (self.kind, level) {
            (Kind::Histogram, DetailLevel::Full) => {
                self.buckets.map_or(0, |b| b.bounds().len()) + 3
            }
            (Kind::Histogram, _) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naming rules `promtool check metrics` applies, for every family.
    #[test]
    fn family_names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for f in &FAMILIES {
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
                    Kind::Counter => {
                        assert!(name.ends_with("_total"), "{name}: counters end _total")
                    }
                    _ => assert!(
                        !name.ends_with("_total"),
                        "{name}: only counters end _total"
                    ),
                }
                if f.kind == Kind::Histogram {
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
            assert_ne!(
                f.level,
                DetailLevel::Off,
                "{}: a family shows at some level",
                f.name
            );
            assert_eq!(f.extra_label.is_some(), !f.label_values.is_empty());
        }
        assert_eq!(FAMILIES.len(), FAMILY_COUNT);
    }

    /// The accessor table in this module's docs lists every family, so a reader
    /// who greps for an accessor finds where it comes from.
    #[test]
    fn module_docs_list_every_generated_accessor() {
        let source = include_str!("families.rs");
        for f in &FAMILIES {
            let level = f.level.as_str();
            let row_start = format!("//! | `{}(", f.accessor);
            let row_end = format!("| `{}` | {level} |", f.name);
            assert!(
                source
                    .lines()
                    .any(|l| l.starts_with(&row_start) && l.ends_with(&row_end)),
                "families.rs docs lack the row for {} ({}, {level})",
                f.name,
                f.accessor
            );
        }
    }
}
