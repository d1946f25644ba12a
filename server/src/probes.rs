//! What `/readyz` and `/healthz` report: [`Readiness`] (named conditions that
//! keep the process out of rotation) and [`Health`] (named checks that say the
//! process is broken and should be restarted).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Named conditions that keep `/readyz` at 503 until each is marked ready.
/// Cheap to clone; clones share the same state.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Mutex<Vec<String>>>);

impl Readiness {
    /// Not ready until every one of `conditions` is marked ready. With no
    /// conditions it starts ready.
    pub fn new<I, S>(conditions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut open: Vec<String> = Vec::new();
        for c in conditions {
            let c = c.into();
            if !open.contains(&c) {
                open.push(c);
            }
        }
        Readiness(Arc::new(Mutex::new(open)))
    }

    /// Marks `condition` as satisfied (no effect if it is not open).
    pub fn mark_ready(&self, condition: &str) {
        lock(&self.0).retain(|c| c != condition);
    }

    /// Opens `reason` (for example `shutting down`): `/readyz` answers 503 again.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut open = lock(&self.0);
        if !open.contains(&reason) {
            open.push(reason);
        }
    }

    /// Whether every condition is satisfied.
    pub fn is_ready(&self) -> bool {
        lock(&self.0).is_empty()
    }

    /// The open conditions, in the order they were opened.
    pub fn not_ready(&self) -> Vec<String> {
        lock(&self.0).clone()
    }
}

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Named checks `/healthz` runs on every request: 200 while all pass, else 503
/// with one `unhealthy: {name}: {why}` line per failing check. A check must be
/// cheap and must not block (it runs on the server's runtime). Cheap to clone;
/// clones share the same checks.
#[derive(Clone, Default)]
pub struct Health(Arc<Mutex<Vec<(String, Check)>>>);

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = lock(&self.0).iter().map(|(n, _)| n.clone()).collect();
        f.debug_tuple("Health").field(&names).finish()
    }
}

impl Health {
    /// Adds (or replaces) the check `name`.
    pub fn check(
        &self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        let name = name.into();
        let mut checks = lock(&self.0);
        checks.retain(|(n, _)| *n != name);
        checks.push((name, Arc::new(check)));
    }

    /// The failing checks, as `(name, why)`, in the order they were added.
    pub fn failing(&self) -> Vec<(String, String)> {
        // Run outside the lock: a check may be slow to return, or add a check.
        let checks: Vec<(String, Check)> = lock(&self.0).clone();
        checks
            .into_iter()
            .filter_map(|(name, check)| check().err().map(|why| (name, why)))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the list half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn readiness_conditions() {
        let r = Readiness::new(["a", "b", "a"]);
        assert_eq!(r.not_ready(), ["a", "b"]);
        r.mark_ready("a");
        r.mark_ready("unknown");
        assert_eq!(r.not_ready(), ["b"]);
        r.clone().mark_ready("b");
        assert!(r.is_ready());
        r.set_not_ready("shutting down");
        r.set_not_ready("shutting down");
        assert_eq!(r.not_ready(), ["shutting down"]);
        assert!(Readiness::new(Vec::<String>::new()).is_ready());
    }

    #[test]
    fn health_checks_report_by_name() {
        let h = Health::default();
        assert!(h.failing().is_empty());
        let dead = Arc::new(AtomicBool::new(false));
        let flag = dead.clone();
        h.check("sweeper", move || {
            if flag.load(Ordering::SeqCst) {
                Err("the sweeper task ended".into())
            } else {
                Ok(())
            }
        });
        h.clone().check("always", || Ok(()));
        assert!(h.failing().is_empty());
        dead.store(true, Ordering::SeqCst);
        assert_eq!(
            h.failing(),
            [("sweeper".to_owned(), "the sweeper task ended".to_owned())]
        );
        h.check("sweeper", || Ok(()));
        assert!(h.failing().is_empty(), "a check is replaced by name");
    }
}
