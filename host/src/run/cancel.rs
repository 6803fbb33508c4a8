//! The cancellation of one microthread: requested (by its parent's handle, its
//! run's end, or a sibling's unjoined failure), then delivered, either as an error
//! from a blocking call (its cleanup runs) or as a stop at its next fuel yield (it
//! was busy), and, a grace period later, enforced.
//!
//! A microthread that owns its shutdown (a supervisor) takes its cancellation as a
//! notice: it is delivered once, as the error of one blocking call, and from then
//! on its calls work, so that it can stop its children in its own order; a busy
//! one is not stopped for it. Only the end of its grace period stops it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::sync::until;

/// No cancellation.
const NONE: u8 = 0;
/// Requested, not yet seen by the microthread.
const REQUESTED: u8 = 1;
/// Seen: a blocking call returned the error; cleanup may run.
const DELIVERED: u8 = 2;
/// The grace period is over: stop it wherever it is.
const ABORT: u8 = 3;

/// The cancellation state of one microthread.
#[derive(Default)]
pub(crate) struct Cancel {
    state: AtomicU8,
    /// The microthread is inside a blocking call of weft's, which watches for the
    /// cancellation itself (and delivers it as an error).
    in_call: AtomicBool,
    /// Wakes a blocking call when the cancellation is requested.
    requested: Notify,
    /// It owns its shutdown (see the module's doc).
    owned: AtomicBool,
}

/// A blocking call was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cancelled;

impl Cancel {
    /// Ask for the cancellation. Returns false if it had been asked for already.
    pub(crate) fn request(&self) -> bool {
        let first = self
            .state
            .compare_exchange(NONE, REQUESTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.requested.notify_waiters();
        }
        first
    }

    /// The grace period is over.
    pub(crate) fn grace_over(&self) {
        self.state.store(ABORT, Ordering::Release);
        self.requested.notify_waiters();
    }

    /// Whether the cancellation has been asked for.
    pub(crate) fn is_requested(&self) -> bool {
        self.state.load(Ordering::Acquire) != NONE
    }

    /// From now on the microthread owns its shutdown: its cancellation is a notice,
    /// delivered once, and it stops its children itself.
    pub(crate) fn own_shutdown(&self) {
        self.owned.store(true, Ordering::Release);
    }

    /// Whether the microthread owns its shutdown: a cancellation stops at it, and
    /// does not reach its children.
    pub(crate) fn owns_shutdown(&self) -> bool {
        self.owned.load(Ordering::Acquire)
    }

    /// Whether a blocking call must end now: the cancellation is asked for and not
    /// yet seen, or seen by a microthread that does not own its shutdown, or its
    /// grace period is over.
    pub(crate) fn interrupts(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            NONE => false,
            DELIVERED => !self.owns_shutdown(),
            _ => true,
        }
    }

    /// Whether the microthread must stop now, wherever it is: it was cancelled while
    /// busy (not in a blocking call that will deliver the cancellation), or its grace
    /// period is over. Checked at fuel yields and epoch checks.
    pub(crate) fn must_abort(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            NONE | DELIVERED => false,
            REQUESTED => !self.owns_shutdown() && !self.in_call.load(Ordering::Acquire),
            _ => true,
        }
    }

    /// A blocking call starts: if the cancellation was asked for, it is delivered
    /// now, as the call's error. Otherwise the call, while the guard lives, watches
    /// for it itself (`requested()`), and the driver leaves it alone.
    pub(crate) fn begin(&self) -> Result<InCall<'_>, Cancelled> {
        self.in_call.store(true, Ordering::Release);
        let guard = InCall(&self.in_call);
        if self.deliver() { Err(Cancelled) } else { Ok(guard) }
    }

    /// Mark the cancellation as seen, if it was asked for. Returns whether the call
    /// that asks fails with it: any call once it is asked for, but for a microthread
    /// that owns its shutdown only the first (and any once its grace is over).
    pub(crate) fn deliver(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            NONE => false,
            REQUESTED => {
                // Of two calls that race to see it, one delivers it.
                self.state
                    .compare_exchange(REQUESTED, DELIVERED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                    || self.interrupts()
            }
            DELIVERED => !self.owns_shutdown(),
            _ => true,
        }
    }

    /// Resolves once the cancellation is asked for (and marks it seen).
    pub(crate) async fn requested(&self) {
        until(&self.requested, || self.deliver().then_some(())).await;
    }

    /// Run the blocking call `call`, failing if the cancellation is asked for before
    /// it completes (or was already).
    pub(crate) async fn or_cancelled<F: Future>(&self, call: F) -> Result<F::Output, Cancelled> {
        let _in_call = self.begin()?;
        tokio::select! {
            biased;
            () = self.requested() => Err(Cancelled),
            v = call => Ok(v),
        }
    }
}

/// A blocking call is in progress (see [`Cancel::begin`]).
pub(crate) struct InCall<'a>(&'a AtomicBool);

impl Drop for InCall<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
