//! Small synchronization helpers the host's modules share.
//!
//! - Locking without poisoning. A host thread that panics while it holds one of
//!   weft's locks is a bug in weft, already reported by the panic itself; the state
//!   behind the lock is kept consistent by each critical section, so every other
//!   thread goes on with it rather than panicking in turn. [`Unpoisoned`] says so
//!   once instead of at each `lock()`.
//! - Waiting for a condition a [`Notify`] announces without missing the
//!   announcement: [`until`].
//! - Polling for a value kept under a lock beside the waker of the task that
//!   waits for it: [`poll_locked`].
//! - A list of entries that settle by themselves (a `Weak` whose value is gone, a
//!   completion nobody will join), pruned of them as it grows: [`Pruned`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

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

/// Wait until `check` gives a value, looking again each time `notify` wakes its
/// waiters. `check` runs with the wake-up already armed, so that one that comes
/// between the check and the wait is not lost.
pub(crate) async fn until<T>(notify: &Notify, mut check: impl FnMut() -> Option<T>) -> T {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(value) = check() {
            return value;
        }
        notified.await;
    }
}

/// Poll for a value kept in `state` beside the waker of the task that waits for
/// it: ready with what `ready` finds, or pending with the task's waker kept where
/// `waker` says, for whoever sets the value to wake (after unlocking).
pub(crate) fn poll_locked<S, T>(
    state: &Mutex<S>,
    cx: &Context<'_>,
    ready: impl FnOnce(&S) -> Option<T>,
    waker: impl FnOnce(&mut S) -> &mut Option<Waker>,
) -> Poll<T> {
    let mut st = state.locked();
    if let Some(value) = ready(&st) {
        return Poll::Ready(value);
    }
    match waker(&mut st) {
        Some(w) => w.clone_from(cx.waker()),
        slot @ None => *slot = Some(cx.waker().clone()),
    }
    Poll::Pending
}

/// A list whose entries settle by themselves, pruned of the settled ones whenever
/// it has doubled since it was last pruned: it stays within about twice its live
/// entries, at an amortized O(1) cost per entry added.
#[derive(Debug)]
pub(crate) struct Pruned<L> {
    list: L,
    /// The list's length after the last pruning.
    pruned_len: usize,
}

impl<L: Entries> Default for Pruned<L> {
    fn default() -> Self {
        Pruned {
            list: L::default(),
            pruned_len: 0,
        }
    }
}

impl<L: Entries> Pruned<L> {
    /// The list, to add an entry to: first pruned of the entries `live` refuses, if
    /// it has doubled since it was last pruned (and holds at least `floor`).
    pub(crate) fn make_room(&mut self, floor: usize, live: impl FnMut(&L::Entry) -> bool) -> &mut L {
        if self.list.count() >= 2 * self.pruned_len.max(floor) {
            self.list.keep(live);
            self.pruned_len = self.list.count();
        }
        &mut self.list
    }

    /// The list as it is (settled entries included).
    pub(crate) fn list(&self) -> &L {
        &self.list
    }

    /// Take the whole list out, leaving an empty one.
    pub(crate) fn take(&mut self) -> L {
        self.pruned_len = 0;
        std::mem::take(&mut self.list)
    }
}

/// A collection [`Pruned`] can prune.
pub(crate) trait Entries: Default {
    /// What is kept or pruned.
    type Entry;
    /// How many entries it holds.
    fn count(&self) -> usize;
    /// Keep only the entries `live` accepts.
    fn keep(&mut self, live: impl FnMut(&Self::Entry) -> bool);
}

impl<T> Entries for Vec<T> {
    type Entry = T;

    fn count(&self) -> usize {
        self.len()
    }

    fn keep(&mut self, live: impl FnMut(&T) -> bool) {
        self.retain(live);
    }
}

impl<K, V> Entries for HashMap<K, V> {
    type Entry = V;

    fn count(&self) -> usize {
        self.len()
    }

    fn keep(&mut self, mut live: impl FnMut(&V) -> bool) {
        self.retain(|_, v| live(v));
    }
}

#[cfg(test)]
mod tests {
    use super::Pruned;

    #[test]
    fn a_pruned_list_stays_within_twice_its_live_entries() {
        let mut list: Pruned<Vec<u32>> = Pruned::default();
        // Only the last ten entries are live at any time.
        for n in 0..10_000u32 {
            list.make_room(4, |&e| e + 10 >= n).push(n);
            assert!(
                list.list().len() <= 2 * 10 + 4,
                "{} entries at {n}",
                list.list().len()
            );
        }
        assert!(!list.take().is_empty());
        assert!(list.list().is_empty());
    }
}
