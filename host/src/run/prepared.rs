//! A run's shelf of fresh instances made ahead of need: `microthread` makes them
//! (on a worker with nothing else to do) and takes them for its spawns; the run
//! only keeps them, and lets them go when it ends. They are kept type-erased here:
//! `run` knows nothing of stores.

use std::any::Any;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sync::Unpoisoned;

/// One thing kept on the shelf.
pub(crate) type Kept = Box<dyn Any + Send>;

/// A run's instances made ahead of need (see the module docs).
#[derive(Default)]
pub(crate) struct Shelf {
    state: Mutex<ShelfState>,
    /// How many are kept: looked at without the lock, so that a spawn in a run
    /// with none kept (every worker busy) costs one load.
    kept: AtomicU32,
}

#[derive(Default)]
struct ShelfState {
    items: Vec<Kept>,
    /// Asked for and not yet put (or given up).
    making: u32,
    /// The run has ended: nothing more is kept.
    closed: bool,
}

impl Shelf {
    /// One kept thing, if there is one.
    pub(crate) fn take(&self) -> Option<Kept> {
        if self.kept.load(Ordering::Acquire) == 0 {
            return None;
        }
        let item = self.state.locked().items.pop();
        if item.is_some() {
            self.kept.fetch_sub(1, Ordering::AcqRel);
        }
        item
    }

    /// Whether one more should be made, so that `target` are kept or being made;
    /// if so it counts as being made, until [`put`](Shelf::put) or
    /// [`made_none`](Shelf::made_none).
    pub(crate) fn want(&self, target: u32) -> bool {
        if self.kept.load(Ordering::Acquire) >= target {
            return false;
        }
        let mut st = self.state.locked();
        let wanted = !st.closed && (st.items.len() as u32).saturating_add(st.making) < target;
        if wanted {
            st.making += 1;
        }
        wanted
    }

    /// Keep `item`, one of those [`want`](Shelf::want) asked for; handed back when
    /// the run has ended.
    pub(crate) fn put(&self, item: Kept) -> Result<(), Kept> {
        let mut st = self.state.locked();
        st.making = st.making.saturating_sub(1);
        if st.closed {
            return Err(item);
        }
        st.items.push(item);
        self.kept.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// One that [`want`](Shelf::want) asked for will not come.
    pub(crate) fn made_none(&self) {
        let mut st = self.state.locked();
        st.making = st.making.saturating_sub(1);
    }

    /// The run has ended: keep nothing more, and hand back what is kept (to be
    /// dropped outside the lock: what is kept holds the run).
    pub(crate) fn close(&self) -> Vec<Kept> {
        let mut st = self.state.locked();
        st.closed = true;
        self.kept.store(0, Ordering::Release);
        std::mem::take(&mut st.items)
    }
}

#[cfg(test)]
mod tests {
    use super::Shelf;

    #[test]
    fn a_shelf_keeps_up_to_its_target_and_nothing_once_closed() {
        let shelf = Shelf::default();
        assert!(shelf.take().is_none());
        assert!(shelf.want(2) && shelf.want(2));
        assert!(!shelf.want(2), "two are being made already");
        shelf.made_none();
        assert!(shelf.want(2), "one of them will not come");
        assert!(shelf.put(Box::new(1u8)).is_ok());
        assert!(!shelf.want(2), "one kept and one being made");
        let item = shelf.take().expect("one is kept");
        assert_eq!(item.downcast_ref::<u8>(), Some(&1));
        assert!(shelf.put(Box::new(2u8)).is_ok());
        let left = shelf.close();
        assert_eq!(left.len(), 1);
        assert!(shelf.take().is_none());
        assert!(!shelf.want(2), "a closed shelf wants nothing");
        assert!(shelf.put(Box::new(3u8)).is_err(), "nor keeps anything");
    }
}
