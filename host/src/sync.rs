//! Locking without poisoning. A host thread that panics while it holds one of weft's
//! locks is a bug in weft, already reported by the panic itself; the state behind the
//! lock is kept consistent by each critical section, so every other thread goes on
//! with it rather than panicking in turn. [`Unpoisoned`] says so once instead of at
//! each `lock()`.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The value behind a [`Mutex`], whether or not a thread panicked holding it.
pub(crate) trait Unpoisoned<T> {
    /// Lock it.
    fn locked(&self) -> MutexGuard<'_, T>;
    /// The value, through an exclusive borrow (no locking).
    fn value_mut(&mut self) -> &mut T;
}

impl<T> Unpoisoned<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn value_mut(&mut self) -> &mut T {
        self.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}
