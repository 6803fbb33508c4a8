//! The cell where a run's end is published: one [`ExitStatus`], set once, for a
//! thread that blocks on it and for a task that polls it.

use std::sync::{Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::status::ExitStatus;
use crate::sync::{Unpoisoned, poll_locked};

/// Where a run's end is published, for a thread that blocks and for a task that
/// polls.
#[derive(Default)]
pub(super) struct Finish {
    state: Mutex<FinishState>,
    published: Condvar,
}

#[derive(Default)]
struct FinishState {
    status: Option<ExitStatus>,
    waker: Option<Waker>,
}

impl Finish {
    fn lock(&self) -> std::sync::MutexGuard<'_, FinishState> {
        self.state.locked()
    }

    /// Publish the end (the first one counts).
    pub(super) fn set(&self, status: ExitStatus) {
        let waker = {
            let mut st = self.lock();
            if st.status.is_some() {
                return;
            }
            st.status = Some(status);
            st.waker.take()
        };
        self.published.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(super) fn get(&self) -> Option<ExitStatus> {
        self.lock().status.clone()
    }

    pub(super) fn wait(&self) -> ExitStatus {
        let mut st = self.lock();
        loop {
            if let Some(status) = &st.status {
                return status.clone();
            }
            st = self.published.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(super) fn poll(&self, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        poll_locked(&self.state, cx, |st| st.status.clone(), |st| &mut st.waker)
    }
}
