//! Which families keep exemplars, and the holders of one actor's and one
//! action's.

use std::sync::LazyLock;

use super::{Exemplar, ExemplarSlot, HistogramExemplars};
use crate::buckets::{ACTION_BUCKETS, SQLITE_BUCKETS};
use crate::families::{FAMILIES, FAMILY_COUNT};
use crate::lazy::LazyBox;

/// A family that carries exemplars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// `…action_duration_seconds`: one per bucket.
    ActionDuration,
    /// `…action_errors_total`: the latest error.
    ActionErrors,
    /// `…sqlite_commit_duration_seconds`: one per bucket.
    CommitDuration,
}

/// The carrier of each family, indexed like [`FAMILIES`].
static CARRIERS: LazyLock<[Option<Carrier>; FAMILY_COUNT]> = LazyLock::new(|| {
    std::array::from_fn(|fi| match FAMILIES[fi].name {
        "actor_action_duration_seconds" => Some(Carrier::ActionDuration),
        "actor_action_errors_total" => Some(Carrier::ActionErrors),
        "actor_sqlite_commit_duration_seconds" => Some(Carrier::CommitDuration),
        _ => None,
    })
});

impl Carrier {
    /// The carrier family `fi` is, if it carries exemplars.
    pub(crate) fn of(fi: usize) -> Option<Carrier> {
        CARRIERS.get(fi).copied().flatten()
    }
}

/// The exemplars a writer puts on one series' lines.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Kept<'a> {
    /// None (a format without exemplars, a family without, a series without).
    #[default]
    None,
    /// One per classic bucket, `+Inf` last.
    Buckets(&'a HistogramExemplars),
    /// One on the counter's sample.
    Counter(&'a ExemplarSlot),
}

impl<'a> Kept<'a> {
    /// The exemplar of bucket `i`, marked exported.
    pub(crate) fn bucket(self, i: usize) -> Option<Exemplar> {
        match self {
            Kept::Buckets(h) => h.slot(i).and_then(ExemplarSlot::export),
            _ => None,
        }
    }

    /// The counter's exemplar, marked exported.
    pub(crate) fn counter(self) -> Option<Exemplar> {
        match self {
            Kept::Counter(s) => s.export(),
            _ => None,
        }
    }
}

/// One actor's exemplars: allocated by its first traced call made while it
/// keeps them (store at `full`, or promoted), 64 bytes, then one bucket array
/// per histogram on its first offer.
#[derive(Debug, Default)]
pub(crate) struct ActorExemplars {
    action_duration: LazyBox<HistogramExemplars>,
    action_errors: ExemplarSlot,
    commit_duration: LazyBox<HistogramExemplars>,
}

/// The slots behind `lazy`, allocated on first use.
#[inline]
fn slots(lazy: &LazyBox<HistogramExemplars>) -> &HistogramExemplars {
    lazy.get_or_init(Box::default)
}

/// What the lines of the histogram behind `lazy` carry: nothing until it
/// was offered an exemplar.
fn kept_buckets(lazy: &LazyBox<HistogramExemplars>) -> Kept<'_> {
    lazy.get().map_or(Kept::None, Kept::Buckets)
}

impl ActorExemplars {
    /// Offers one action call's exemplar: its duration, and its error.
    #[inline]
    pub(crate) fn offer_action(&self, e: &Exemplar, ok: bool) {
        slots(&self.action_duration).offer(&ACTION_BUCKETS, e);
        if !ok {
            self.action_errors.store(&Exemplar { value: 1.0, ..*e });
        }
    }

    /// Offers one commit of `secs`, whose exemplar `make` builds if kept.
    #[inline]
    pub(crate) fn offer_commit(&self, secs: f64, make: impl FnOnce() -> Exemplar) {
        slots(&self.commit_duration).offer_with(&SQLITE_BUCKETS, secs, make);
    }

    /// What `c`'s lines carry.
    pub(crate) fn kept(&self, c: Carrier) -> Kept<'_> {
        match c {
            Carrier::ActionDuration => kept_buckets(&self.action_duration),
            Carrier::ActionErrors => Kept::Counter(&self.action_errors),
            Carrier::CommitDuration => kept_buckets(&self.commit_duration),
        }
    }
}

/// One (`actor_name`, `action`)'s exemplars: duration buckets and the
/// latest error, inline (672 bytes per action of a type).
#[derive(Debug, Default)]
pub(crate) struct ActionExemplars {
    duration: HistogramExemplars,
    errors: ExemplarSlot,
}

impl ActionExemplars {
    /// Offers one call's exemplar: its duration, and its error.
    #[inline]
    pub(crate) fn offer(&self, e: &Exemplar, ok: bool) {
        self.duration.offer(&ACTION_BUCKETS, e);
        if !ok {
            self.errors.store(&Exemplar { value: 1.0, ..*e });
        }
    }

    /// What `c`'s lines carry (nothing for the commit family).
    pub(crate) fn kept(&self, c: Carrier) -> Kept<'_> {
        match c {
            Carrier::ActionDuration => Kept::Buckets(&self.duration),
            Carrier::ActionErrors => Kept::Counter(&self.errors),
            Carrier::CommitDuration => Kept::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_carriers_are_the_catalogue_families_of_the_issue() {
        let carriers: Vec<_> = (0..FAMILY_COUNT)
            .filter_map(|fi| Carrier::of(fi).map(|c| (FAMILIES[fi].name, c)))
            .collect();
        assert_eq!(carriers.len(), 3, "{carriers:?}");
        assert_eq!(Carrier::of(FAMILY_COUNT), None);
    }
}
