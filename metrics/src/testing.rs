//! Test and bench helpers (feature `test-util`): record into any family by its
//! [`FamilyInfo`], generated from the families declaration so it cannot fall
//! behind the catalogue.

use crate::actor::ActorMetrics;
use crate::cells::Kind;
use crate::families::{FamilyInfo, for_families};
use crate::labels::*;
use crate::record::{ActiveRef, CounterRef, GaugeRef, HistogramRef};

/// One recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Counter `inc_by`.
    Inc(u64),
    /// Gauge `set`.
    Set(i64),
    /// Histogram `observe` (seconds).
    Observe(f64),
}

/// Why [`apply`] recorded nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The family is recorded only through `record_action`.
    #[error("{0} is recorded by record_action")]
    ActionFamily(&'static str),
    /// The operation does not fit the family's kind.
    #[error("{family}: {op:?} does not fit a {kind:?}")]
    WrongKind {
        /// The family.
        family: &'static str,
        /// Its kind.
        kind: Kind,
        /// The operation.
        op: Op,
    },
    /// A labelled family needs a label index below its value count.
    #[error("{family}: label index {index:?} out of range")]
    BadLabel {
        /// The family.
        family: &'static str,
        /// The index given.
        index: Option<usize>,
    },
}

trait ApplyOp {
    fn apply(self, op: Op) -> Result<(), Op>;
}

impl ApplyOp for CounterRef<'_> {
    fn apply(self, op: Op) -> Result<(), Op> {
        match op {
            Op::Inc(n) => {
                self.inc_by(n);
                Ok(())
            }
            op => Err(op),
        }
    }
}

impl ApplyOp for GaugeRef<'_> {
    fn apply(self, op: Op) -> Result<(), Op> {
        match op {
            Op::Set(v) => {
                self.set(v);
                Ok(())
            }
            op => Err(op),
        }
    }
}

impl ApplyOp for HistogramRef<'_> {
    fn apply(self, op: Op) -> Result<(), Op> {
        match op {
            Op::Observe(v) => {
                self.observe(v);
                Ok(())
            }
            op => Err(op),
        }
    }
}

impl ApplyOp for ActiveRef<'_> {
    fn apply(self, op: Op) -> Result<(), Op> {
        Err(op)
    }
}

for_families! {
    $ scalar(sf, scell, sb, slevel, sname, shelp)
    labelled(lf, lcell, lb, le, llevel, lname, lhelp)
    action(af, acell, ab, alevel, aname, ahelp) => {
        /// Records `op` into `family` of `actor`; `label` is the index of the
        /// extra label's value (in [`FamilyInfo::label_values`]) for labelled families.
        pub fn apply(
            actor: &ActorMetrics,
            family: &FamilyInfo,
            label: Option<usize>,
            op: Op,
        ) -> Result<(), ApplyError> {
            let wrong = |op| ApplyError::WrongKind { family: family.name, kind: family.kind, op };
            $(
                if family.name == concat!("actor_", $sname) {
                    return actor.$sf().apply(op).map_err(wrong);
                }
            )*
            $(
                if family.name == concat!("actor_", $lname) {
                    let value = label
                        .and_then(|i| <$le as LabelEnum>::ALL.get(i))
                        .ok_or(ApplyError::BadLabel { family: family.name, index: label })?;
                    return actor.$lf(*value).apply(op).map_err(wrong);
                }
            )*
            Err(ApplyError::ActionFamily(family.name))
        }
    }
}
