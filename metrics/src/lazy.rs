//! [`LazyBox`]: a box allocated on first use, published with one atomic
//! pointer. The native histogram spans are built on it.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A box allocated on first use and published with one atomic pointer: the
/// fast path is one load and a null check (a `OnceLock` would add a state
/// word and a second dependent load to every observation).
pub(crate) struct LazyBox<T> {
    ptr: AtomicPtr<T>,
    /// The auto traits come from the `unsafe impl`s below, bounded on `T`.
    _owns: PhantomData<*const T>,
}

// SAFETY: a `LazyBox` owns at most one `T`, created by whichever thread
// initialises it and dropped by whichever thread drops the box: sending it
// sends the `T`, and sharing it shares `&T` and lets any thread create the `T`.
unsafe impl<T: Send> Send for LazyBox<T> {}
// SAFETY: as above; `T: Send` because another thread may end up dropping it.
unsafe impl<T: Send + Sync> Sync for LazyBox<T> {}

impl<T> Default for LazyBox<T> {
    fn default() -> Self {
        LazyBox {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _owns: PhantomData,
        }
    }
}

impl<T> LazyBox<T> {
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: a non-null pointer was published by `init` from a live `Box`
        // (the Acquire load pairs with its Release) and is freed only in `drop`,
        // which `&self` rules out while this borrow lives.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    #[inline]
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> Box<T>) -> &T {
        match self.get() {
            Some(v) => v,
            None => self.init(make()),
        }
    }

    #[cold]
    fn init(&self, new: Box<T>) -> &T {
        let new = Box::into_raw(new);
        match self.ptr.compare_exchange(
            std::ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published from a live `Box`; freed only in `drop`.
            Ok(_) => unsafe { &*new },
            Err(theirs) => {
                // SAFETY: `new` came from `Box::into_raw` above and was never
                // published, so this is its only owner.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: another thread's published box, as in `get`.
                unsafe { &*theirs }
            }
        }
    }
}

impl<T> Drop for LazyBox<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: published from `Box::into_raw` and owned by this box
            // alone; `&mut self` means no borrow of it remains.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for LazyBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LazyBox").field(&self.get()).finish()
    }
}
