//! The waiter a blocked operation parks on: completed exactly once, by whichever of
//! its registered operations is satisfied first, or by its timeout. It holds the
//! waiting task's waker itself: completing it is one lock and one wake-up.
//!
//! A send's message may be *claimed* (a cluster's bridge carries it to a
//! rendezvous channel on another node): from then on that send is the one that
//! completes, when the claim is settled ([`Waiter::settle_claim`]), and nothing
//! else (another operation, the timeout, a cancellation) ends the wait first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use super::{Message, Ready};
use crate::sync::{Unpoisoned, poll_locked};

/// The messages of a select's sends that did not complete, by operation index
/// (`None` for a receive, or a send that completed); inline for one operation.
pub(crate) type Unsent = smallvec::SmallVec<[Option<Message>; 1]>;

/// Counts completed waits, so that the deadlock detector can tell "everybody is
/// blocked" from "a wake-up is on its way".
pub(crate) type Progress = Arc<AtomicU64>;

/// What a receiver got from a waiting send operation.
pub(crate) enum Taken {
    /// Its message: the send has completed.
    Message(Message),
    /// Nothing: the waiter completed otherwise already (its entry is stale).
    Stale,
    /// Nothing: the receiver's condition refused the message; the send still waits.
    Refused,
}

/// How a waiter was completed: by operation `op`, or not at all.
pub(crate) enum Outcome {
    Op(usize, Ready),
    Timeout,
    /// The waiting microthread was cancelled.
    Interrupted,
}

pub(crate) struct Waiter {
    state: Mutex<WaiterState>,
    progress: Progress,
}

struct WaiterState {
    outcome: Option<Outcome>,
    /// The send operation whose message is claimed, until the claim is settled.
    claimed: Option<usize>,
    /// The waiting microthread was cancelled while a claim held its wait: the wait
    /// ends so if the claim is given up ([`Waiter::unclaim`]).
    interrupt_pending: bool,
    /// The messages of the send operations, until one of them is taken.
    sends: Unsent,
    /// The waiting task, once it has polled.
    waker: Option<Waker>,
}

impl Waiter {
    pub(crate) fn new(sends: Unsent, progress: Progress) -> Arc<Waiter> {
        Arc::new(Waiter {
            state: Mutex::new(WaiterState {
                outcome: None,
                claimed: None,
                interrupt_pending: false,
                sends,
                waker: None,
            }),
            progress,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WaiterState> {
        self.state.locked()
    }

    /// Complete with `outcome`; the caller wakes the returned waker (after unlocking).
    fn complete(&self, st: &mut WaiterState, outcome: Outcome) -> Option<Waker> {
        st.outcome = Some(outcome);
        self.progress.fetch_add(1, Ordering::Relaxed);
        st.waker.take()
    }

    /// A receiver takes the message of send operation `op`, if `accept` agrees (it
    /// sees the message first), unless the waiter is already complete.
    pub(crate) fn take_send_if(&self, op: usize, accept: impl FnOnce(&Message) -> bool) -> Taken {
        let (msg, waker) = {
            let mut st = self.lock();
            if st.outcome.is_some() || st.claimed.is_some() {
                return Taken::Stale;
            }
            let Some(slot) = st.sends.get_mut(op) else {
                return Taken::Stale;
            };
            match slot {
                Some(m) if !accept(m) => return Taken::Refused,
                Some(_) => {}
                None => return Taken::Stale,
            }
            let msg = slot.take().expect("checked above");
            (msg, self.complete(&mut st, Outcome::Op(op, Ready::Sent)))
        };
        if let Some(w) = waker {
            w.wake();
        }
        Taken::Message(msg)
    }

    /// Claim the message of send operation `op`, unless the waiter is complete (or
    /// claimed) already: the send stays waiting until the claim is settled.
    pub(crate) fn claim_send(&self, op: usize) -> Option<Message> {
        let mut st = self.lock();
        if st.outcome.is_some() || st.claimed.is_some() {
            return None;
        }
        let msg = st.sends.get_mut(op)?.take()?;
        st.claimed = Some(op);
        Some(msg)
    }

    /// Settle the claim: the claimed send completes with `ready`, its message given
    /// back (`back`) unless it was delivered.
    pub(crate) fn settle_claim(&self, ready: Ready, back: Option<Message>) {
        let waker = {
            let mut st = self.lock();
            let Some(op) = st.claimed.take() else {
                return;
            };
            if let Some(slot) = st.sends.get_mut(op) {
                *slot = back;
            }
            self.complete(&mut st, Outcome::Op(op, ready))
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Give the claim up: the claimed send's message goes back, and the send waits
    /// on (or ends, cancelled, if its microthread was cancelled meanwhile). Returns
    /// whether it still waits (then its entry goes back on the channel).
    pub(crate) fn unclaim(&self, msg: Message) -> bool {
        let (still, waker) = {
            let mut st = self.lock();
            let Some(op) = st.claimed.take() else {
                return false;
            };
            if let Some(slot) = st.sends.get_mut(op) {
                *slot = Some(msg);
            }
            if std::mem::take(&mut st.interrupt_pending) {
                (false, self.complete(&mut st, Outcome::Interrupted))
            } else {
                // The waiting task looks again: its timeout may have run out.
                (st.outcome.is_none(), st.waker.take())
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        still
    }

    /// Resolves once no claim holds the wait: it was settled (the waiter is
    /// complete) or given up.
    pub(crate) async fn claim_over(&self) {
        std::future::poll_fn(|cx| {
            poll_locked(
                &self.state,
                cx,
                |st| (st.outcome.is_some() || st.claimed.is_none()).then_some(()),
                |st| &mut st.waker,
            )
        })
        .await
    }

    /// Whether a send's message is claimed and the claim not yet settled: the
    /// wait goes on, whatever its timeout.
    pub(crate) fn is_claimed(&self) -> bool {
        self.lock().claimed.is_some()
    }

    /// Complete with what `outcome` makes of `value`, and wake the waiting task; unless
    /// the waiter is complete (or claimed) already: then `value` comes back,
    /// undelivered.
    fn complete_with<T>(&self, value: T, outcome: impl FnOnce(T) -> Outcome) -> Option<T> {
        let waker = {
            let mut st = self.lock();
            if st.outcome.is_some() || st.claimed.is_some() {
                return Some(value);
            }
            self.complete(&mut st, outcome(value))
        };
        if let Some(w) = waker {
            w.wake();
        }
        None
    }

    /// A sender hands `msg` to receive operation `op`, unless the waiter is already
    /// complete (then the message comes back).
    pub(crate) fn give_recv(&self, op: usize, msg: Message) -> Result<(), Message> {
        match self.complete_with(msg, |msg| Outcome::Op(op, Ready::Received(msg))) {
            Some(msg) => Err(msg),
            None => Ok(()),
        }
    }

    /// Operation `op` found its channel closed (or failed). A waiter complete
    /// already ended otherwise: nothing waits for `ready` any more.
    pub(crate) fn finish(&self, op: usize, ready: Ready) {
        self.complete_with(ready, |ready| Outcome::Op(op, ready));
    }

    /// The waiting microthread is cancelled: end the wait, unless it ended already.
    pub(crate) fn interrupt(&self) {
        {
            let mut st = self.lock();
            if st.claimed.is_some() && st.outcome.is_none() {
                // Ends the wait if the claim is given up; a settled claim is the
                // send's outcome, and the cancellation is seen at the next call.
                st.interrupt_pending = true;
                return;
            }
        }
        self.complete_with((), |()| Outcome::Interrupted);
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Wake `waker` when the waiter completes (for a thread that parks); true if it
    /// is complete already.
    pub(crate) fn wake_on_complete(&self, waker: &Waker) -> bool {
        let mut st = self.lock();
        if st.outcome.is_some() {
            return true;
        }
        st.waker = Some(waker.clone());
        false
    }

    /// Wait until the waiter is complete.
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            poll_locked(
                &self.state,
                cx,
                |st| st.outcome.as_ref().map(|_| ()),
                |st| &mut st.waker,
            )
        })
        .await
    }

    /// Stop waiting: the outcome (`Timeout` unless something completed first) and
    /// the messages of the sends that did not happen.
    pub(crate) fn take_outcome(&self) -> (Outcome, Unsent) {
        let mut st = self.lock();
        st.waker = None;
        let outcome = st.outcome.take().unwrap_or(Outcome::Timeout);
        // Complete for good: a late operation finds it done and leaves it alone.
        st.outcome = Some(Outcome::Timeout);
        (outcome, std::mem::take(&mut st.sends))
    }
}
