//! The atomic sections of one microthread: while one is open, the driver of its
//! call skips its fuel yields, and owes one, taken when the section ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::sync::Unpoisoned;

// tokio's clock: in a deterministic run, the run's virtual one, so that the cap
// ends a section at the same point every time.
use tokio::time::Instant;

/// The atomic sections of one microthread (they nest).
#[derive(Default)]
pub(crate) struct Atomic {
    depth: AtomicU32,
    /// A fuel yield fell due inside the section.
    owed: AtomicBool,
    /// When the outermost section began.
    since: Mutex<Option<Instant>>,
}

impl Atomic {
    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.since.locked()
    }

    pub(crate) fn begin(&self) {
        if self.depth.fetch_add(1, Ordering::AcqRel) == 0 {
            *self.since() = Some(Instant::now());
            self.owed.store(false, Ordering::Release);
        }
    }

    /// End a section. Returns true when the outermost one ended with a preemption
    /// owed: the caller yields now. Ending a section that was not begun does nothing.
    pub(crate) fn end(&self) -> bool {
        let ended = self
            .depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
        match ended {
            Ok(1) => {
                *self.since() = None;
                self.owed.swap(false, Ordering::AcqRel)
            }
            _ => false,
        }
    }

    /// A blocking call ends every open section (it gives the others a turn anyway).
    pub(crate) fn end_all(&self) {
        // Read first: no section is open at almost every blocking call.
        if self.depth.load(Ordering::Acquire) > 0 && self.depth.swap(0, Ordering::AcqRel) > 0 {
            *self.since() = None;
            self.owed.store(false, Ordering::Release);
        }
    }

    /// Whether a section is open.
    pub(crate) fn active(&self) -> bool {
        self.depth.load(Ordering::Acquire) > 0
    }

    /// A fuel yield fell due inside the section: it is owed. Returns true if the
    /// section has run longer than `cap`.
    pub(crate) fn owe(&self, cap: Duration) -> bool {
        self.owed.store(true, Ordering::Release);
        self.since().is_some_and(|t| t.elapsed() > cap)
    }
}
