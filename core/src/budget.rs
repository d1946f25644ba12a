//! Bounds on what clients can make the host hold in memory, in bytes and in
//! tasks, per actor and per host.
//!
//! Everything a client puts in memory is charged to an [`Account`] before it
//! is accepted and released when it is gone: a request body while it is read,
//! a call's payload from the moment it waits in an inbox until its action
//! returns, a queued message until it is received, a user task until it ends.
//! A [`Charge`] is the receipt: dropping it releases the bytes, so nothing is
//! released twice or forgotten on an error path.
//!
//! Past a bound, nothing already accepted is touched: the new item is refused
//! with a [`LimitError`] naming the limit, its flag and its value.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a bound counts, for the error that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Bytes held for clients in the whole host
    /// ([`HostConfig::max_client_bytes`](crate::HostConfig::max_client_bytes)).
    HostBytes,
    /// Bytes of the calls waiting in one actor's inbox
    /// ([`HostConfig::inbox_max_bytes`](crate::HostConfig::inbox_max_bytes)).
    InboxBytes,
    /// User tasks of one actor
    /// ([`HostConfig::max_tasks_per_actor`](crate::HostConfig::max_tasks_per_actor)).
    ActorTasks,
    /// User tasks of the whole host
    /// ([`HostConfig::max_tasks`](crate::HostConfig::max_tasks)).
    HostTasks,
}

impl Bound {
    /// The `actor-host` flag that sets this bound.
    pub fn flag(self) -> &'static str {
        match self {
            Bound::HostBytes => "--max-client-bytes",
            Bound::InboxBytes => "--inbox-max-bytes",
            Bound::ActorTasks => "--max-tasks-per-actor",
            Bound::HostTasks => "--max-tasks",
        }
    }

    /// What it counts, in words.
    fn what(self) -> &'static str {
        match self {
            Bound::HostBytes => "bytes held for clients by the host",
            Bound::InboxBytes => "bytes of calls waiting in the actor's inbox",
            Bound::ActorTasks => "user tasks of the actor",
            Bound::HostTasks => "user tasks of the host",
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// A bound refused an item; nothing already accepted was touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The bound is reached for now: try again once something is released.
    #[error(
        "limit reached: {held} {bound} + {wanted} more would pass the limit of {limit} ({flag}); nothing was accepted, try again later",
        flag = bound.flag()
    )]
    Full {
        /// Which bound.
        bound: Bound,
        /// What it holds now.
        held: usize,
        /// What the refused item needs.
        wanted: usize,
        /// The bound's value.
        limit: usize,
    },
    /// The item alone is larger than the bound: it can never be accepted.
    #[error(
        "too large: the item needs {wanted} {bound}, more than the whole limit of {limit} ({flag})",
        flag = bound.flag()
    )]
    TooLarge {
        /// Which bound.
        bound: Bound,
        /// What the item needs.
        wanted: usize,
        /// The bound's value.
        limit: usize,
    },
}

impl LimitError {
    /// The bound that refused.
    pub fn bound(&self) -> Bound {
        match self {
            LimitError::Full { bound, .. } | LimitError::TooLarge { bound, .. } => *bound,
        }
    }

    /// The HTTP status the app API answers with: 413 for an item that can
    /// never fit, 429 for a task bound (the client asks for too many at once),
    /// 503 for memory that is full for now.
    pub fn http_status(&self) -> u16 {
        match self {
            LimitError::TooLarge { .. } => 413,
            LimitError::Full {
                bound: Bound::ActorTasks | Bound::HostTasks,
                ..
            } => 429,
            LimitError::Full { .. } => 503,
        }
    }
}

/// One bound and what is held against it: lock-free, shared by whoever charges it.
#[derive(Debug)]
pub struct Account {
    bound: Bound,
    limit: usize,
    held: AtomicUsize,
}

impl Account {
    /// An empty account of `bound` with `limit`.
    pub fn new(bound: Bound, limit: usize) -> Arc<Self> {
        Arc::new(Account {
            bound,
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// What is held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The bound's value.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `amount`, or refuses it if the account would pass its limit.
    pub fn charge(self: &Arc<Self>, amount: usize) -> Result<Charge, LimitError> {
        self.reserve(0, amount)?;
        Ok(Charge {
            account: self.clone(),
            amount,
        })
    }

    /// Adds `amount` to what is held, for an item that holds `already`.
    fn reserve(&self, already: usize, amount: usize) -> Result<(), LimitError> {
        let wanted = already.saturating_add(amount);
        if wanted > self.limit {
            return Err(LimitError::TooLarge {
                bound: self.bound,
                wanted,
                limit: self.limit,
            });
        }
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(amount).filter(|&sum| sum <= self.limit)
            })
            .map(drop)
            .map_err(|held| LimitError::Full {
                bound: self.bound,
                held,
                wanted: amount,
                limit: self.limit,
            })
    }
}

/// A receipt for bytes (or tasks) held against an [`Account`]; dropping it
/// releases them.
#[derive(Debug)]
#[must_use = "dropping a charge releases it at once"]
pub struct Charge {
    account: Arc<Account>,
    amount: usize,
}

impl Charge {
    /// What this charge holds.
    pub fn amount(&self) -> usize {
        self.amount
    }

    /// Holds `more` on the same account, or refuses it and holds what it held.
    pub fn grow(&mut self, more: usize) -> Result<(), LimitError> {
        self.account.reserve(self.amount, more)?;
        self.amount += more;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.account.held.fetch_sub(self.amount, Ordering::AcqRel);
    }
}

/// The host-wide accounts every actor shares.
#[derive(Debug, Clone)]
pub struct HostBudget {
    /// Bytes held for clients in the whole host.
    pub bytes: Arc<Account>,
    /// User tasks running in the whole host.
    pub tasks: Arc<Account>,
}

impl HostBudget {
    /// Empty accounts with these limits.
    pub fn new(max_bytes: usize, max_tasks: usize) -> Self {
        HostBudget {
            bytes: Account::new(Bound::HostBytes, max_bytes),
            tasks: Account::new(Bound::HostTasks, max_tasks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_released_once_when_dropped() {
        let account = Account::new(Bound::HostBytes, 10);
        let a = account.charge(6).unwrap();
        assert_eq!(account.held(), 6);
        let refused = account.charge(5).unwrap_err();
        assert_eq!(
            refused,
            LimitError::Full {
                bound: Bound::HostBytes,
                held: 6,
                wanted: 5,
                limit: 10
            }
        );
        assert_eq!(refused.http_status(), 503);
        assert!(refused.to_string().contains("--max-client-bytes"));
        let b = account.charge(4).unwrap();
        assert_eq!(account.held(), 10);
        drop(a);
        assert_eq!(account.held(), 4);
        drop(b);
        assert_eq!(account.held(), 0);
    }

    #[test]
    fn an_item_larger_than_the_limit_is_too_large_not_full() {
        let account = Account::new(Bound::InboxBytes, 10);
        let e = account.charge(11).unwrap_err();
        assert_eq!(e.http_status(), 413);
        assert!(e.to_string().contains("--inbox-max-bytes"), "{e}");
        assert_eq!(account.held(), 0);
        // usize overflow is a refusal, not a wrap.
        let _held = account.charge(10).unwrap();
        assert!(matches!(
            account.charge(usize::MAX),
            Err(LimitError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_grown_charge_releases_all_it_holds() {
        let account = Account::new(Bound::HostBytes, 10);
        let mut c = account.charge(3).unwrap();
        c.grow(4).unwrap();
        assert_eq!((c.amount(), account.held()), (7, 7));
        // 11 bytes could never fit: too large, not full.
        assert!(matches!(
            c.grow(4),
            Err(LimitError::TooLarge { wanted: 11, .. })
        ));
        let other = account.charge(2).unwrap();
        // 9 bytes would fit an empty account, but 7 + 2 + 2 do not fit now.
        assert!(matches!(c.grow(2), Err(LimitError::Full { held: 9, .. })));
        assert_eq!((c.amount(), account.held()), (7, 9));
        drop((c, other));
        assert_eq!(account.held(), 0);
    }

    #[test]
    fn task_bounds_answer_429() {
        let account = Account::new(Bound::ActorTasks, 1);
        let _one = account.charge(1).unwrap();
        assert_eq!(account.charge(1).unwrap_err().http_status(), 429);
    }

    /// Eight threads charge and release at once; the account never passes
    /// its limit and ends at exactly zero.
    #[test]
    fn concurrent_charges_never_pass_the_limit() {
        let account = Account::new(Bound::HostBytes, 1000);
        let granted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for i in 0..20_000 {
                        if let Ok(c) = account.charge(7 + i % 13) {
                            assert!(account.held() <= 1000);
                            granted.fetch_add(1, Ordering::Relaxed);
                            drop(c);
                        }
                    }
                });
            }
        });
        assert_eq!(account.held(), 0);
        assert!(granted.load(Ordering::Relaxed) > 0);
    }
}
