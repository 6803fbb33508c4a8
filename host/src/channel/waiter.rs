//! The waiter a blocked operation parks on: completed exactly once, by whichever of
//! its registered operations is satisfied first, or by its timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{Message, Ready};

/// Counts completed waits, so that the deadlock detector can tell "everybody is
/// blocked" from "a wake-up is on its way".
pub(crate) type Progress = Arc<AtomicU64>;

/// How a waiter was completed: by operation `op`, or not at all.
pub(crate) enum Done {
    Op(usize, Ready),
    Timeout,
}

pub(crate) struct Waiter {
    state: Mutex<WaiterState>,
    notify: Notify,
    progress: Progress,
}

struct WaiterState {
    done: Option<Done>,
    /// The messages of the send operations, until one of them is taken.
    sends: Vec<Option<Message>>,
}

impl Waiter {
    pub(crate) fn new(sends: Vec<Option<Message>>, progress: Progress) -> Arc<Waiter> {
        Arc::new(Waiter {
            state: Mutex::new(WaiterState { done: None, sends }),
            notify: Notify::new(),
            progress,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WaiterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn complete(&self, st: &mut WaiterState, done: Done) {
        st.done = Some(done);
        self.progress.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// A receiver takes the message of send operation `op`, unless the waiter is
    /// already complete.
    pub(crate) fn take_send(&self, op: usize) -> Option<Message> {
        let mut st = self.lock();
        if st.done.is_some() {
            return None;
        }
        let msg = st.sends.get_mut(op)?.take()?;
        self.complete(&mut st, Done::Op(op, Ready::Sent));
        Some(msg)
    }

    /// A sender hands `msg` to receive operation `op`, unless the waiter is already
    /// complete (then the message comes back).
    pub(crate) fn give_recv(&self, op: usize, msg: Message) -> Result<(), Message> {
        let mut st = self.lock();
        if st.done.is_some() {
            return Err(msg);
        }
        self.complete(&mut st, Done::Op(op, Ready::Received(msg)));
        Ok(())
    }

    /// Operation `op` found its channel closed (or failed).
    pub(crate) fn finish(&self, op: usize, ready: Ready) {
        let mut st = self.lock();
        if st.done.is_none() {
            self.complete(&mut st, Done::Op(op, ready));
        }
    }

    /// Give up waiting: completes with `Timeout` unless something completed first.
    pub(crate) fn time_out(&self) {
        let mut st = self.lock();
        if st.done.is_none() {
            st.done = Some(Done::Timeout);
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.lock().done.is_some()
    }

    pub(crate) async fn wait(&self) {
        while !self.is_done() {
            self.notify.notified().await;
        }
    }

    /// The outcome and the messages of the sends that did not happen.
    pub(crate) fn take_outcome(&self) -> (Option<Done>, Vec<Option<Message>>) {
        let mut st = self.lock();
        (st.done.take(), std::mem::take(&mut st.sends))
    }
}
