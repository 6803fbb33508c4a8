//! How a microthread's end reaches whoever waits for it: its identity, how its
//! guest code ended ([`Ending`]), and the [`Completion`] where its outcome waits for
//! its joiner and its parent's prejoin.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::channel::{Budget, Delivery, Message};
use crate::error::{Failure, FailureKind};
use crate::sync::{Unpoisoned, until};

/// What a finished microthread leaves for its joiner.
pub(crate) type Outcome = Result<Message, Failure>;

/// Identity of a microthread.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: u64,
    /// Shared, so that identifying a microthread (in a deadlock report, say) is cheap.
    pub(crate) name: Option<Arc<str>>,
}

impl Identity {
    pub(crate) fn failure(&self, kind: FailureKind, message: String) -> Failure {
        Failure {
            id: self.id,
            name: self.name.as_deref().map(str::to_owned),
            kind,
            message,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "microthread {}", self.id)?;
        match &self.name {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// How a microthread's guest code ended.
pub(crate) enum Ending {
    /// It returned: a spawned function's serialized result (empty for `main`).
    Returned(Message),
    /// `main` returned an error (`wasi:cli/run` gave `Err`): exit code 1.
    MainReturnedErr,
    /// It called `exit(code)`: the whole program ends with `code`.
    Exit(i32),
    /// It trapped, panicked, or was stopped.
    Failed(Failure),
}

/// What to do with a failure that nobody can consume any more (no join, no channel):
/// fail the parent, or hand it to the run's failure handler.
pub(crate) type Unjoined = Box<dyn Fn(Failure) + Send + Sync>;

/// Where a microthread's outcome waits for its joiner (and its parent's prejoin).
///
/// A result waiting to be joined counts against its run's buffered-bytes budget
/// (as a message in a channel does), until it is joined or can no longer be (its
/// join handle is gone): a result that does not fit fails the microthread.
pub(crate) struct Completion {
    id: u64,
    name: Option<Arc<str>>,
    state: Mutex<CompletionState>,
    done: Notify,
    unjoined: Unjoined,
    budget: Arc<Budget>,
}

#[derive(Default)]
struct CompletionState {
    /// `None` while the microthread runs.
    outcome: Option<Outcome>,
    finished: bool,
    /// The outcome was taken by `join`.
    taken: bool,
    /// Its failure reached a reader through a channel it was sending on.
    failure_delivered: bool,
    /// Its join handle is gone: nobody can join it any more.
    abandoned: bool,
    /// The result in `outcome` is counted in the run's budget.
    held: bool,
    /// Channels that hold its failure for receivers that may still take it.
    awaiting: u32,
    /// Its failure went to `unjoined`.
    reported: bool,
    /// How it ended, for its monitors: what `outcome` holds, without the result.
    ended: Option<Result<(), Failure>>,
}

impl Completion {
    pub(crate) fn new(me: &Identity, unjoined: Unjoined, budget: Arc<Budget>) -> Self {
        Completion {
            id: me.id,
            name: me.name.clone(),
            state: Mutex::default(),
            done: Notify::new(),
            unjoined,
            budget,
        }
    }

    fn failure(&self, message: String) -> Failure {
        Failure {
            id: self.id,
            name: self.name.as_deref().map(str::to_owned),
            kind: FailureKind::Trap,
            message,
        }
    }

    /// The result is no longer held (joined, or nobody can join it any more).
    fn let_go(&self, s: &mut CompletionState) {
        if std::mem::take(&mut s.held)
            && let Some(Ok(result)) = &s.outcome
        {
            self.budget.release(result);
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CompletionState> {
        self.state.locked()
    }

    /// Record the outcome (the first one counts) and wake whoever waits. A result
    /// that nobody can join any more is dropped; one that does not fit the run's
    /// budget fails the microthread.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let mut unwanted = None;
        {
            let mut s = self.lock();
            if s.finished {
                return;
            }
            let outcome = match outcome {
                Ok(result) if s.abandoned => {
                    unwanted = Some(result);
                    Ok(Message::default())
                }
                Ok(result) if self.budget.reserve(&result) => {
                    s.held = true;
                    Ok(result)
                }
                Ok(result) => Err(self.failure(format!(
                    "its result of {} bytes does not fit in the run's budget of {} buffered \
                     bytes (max_buffered_bytes), which the results waiting to be joined and \
                     the messages in channels share: join results sooner, or raise the limit",
                    result.bytes.len(),
                    self.budget.max_buffered()
                ))),
                Err(f) => Err(f),
            };
            s.ended = Some(outcome.as_ref().map(|_| ()).map_err(Failure::clone));
            s.outcome = Some(outcome);
            s.finished = true;
        }
        // Dropped outside the lock: its endpoints may close channels.
        drop(unwanted);
        self.done.notify_waiters();
        self.check_unjoined();
    }

    /// Its join handle is gone: its result, if it has one, is dropped.
    pub(crate) fn abandon(&self) {
        let dropped = {
            let mut s = self.lock();
            s.abandoned = true;
            self.let_go(&mut s);
            match &mut s.outcome {
                Some(Ok(result)) => Some(std::mem::take(result)),
                _ => None,
            }
        };
        // Dropped outside the lock: its endpoints may close channels.
        drop(dropped);
        self.check_unjoined();
    }

    /// A failure that nobody can consume any more (it is finished, failed, not
    /// joined, its handle gone, and no channel holds its failure for a reader) goes
    /// to `unjoined`, once.
    fn check_unjoined(&self) {
        let failure = {
            let mut s = self.lock();
            let unjoined = s.finished
                && !s.taken
                && !s.failure_delivered
                && s.abandoned
                && s.awaiting == 0
                && !s.reported;
            match &s.outcome {
                // A cancelled microthread was stopped on purpose: nothing to report.
                Some(Err(f)) if unjoined && f.kind != FailureKind::Cancelled => {
                    let f = f.clone();
                    s.reported = true;
                    f
                }
                _ => return,
            }
        };
        (self.unjoined)(failure);
    }

    /// How the microthread ended (once it has): its joiner's outcome, without
    /// the result.
    pub(crate) fn ended(&self) -> Option<Result<(), Failure>> {
        self.lock().ended.clone()
    }

    /// Whether the microthread's failure has gone to `unjoined`.
    pub(crate) fn is_reported(&self) -> bool {
        self.lock().reported
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// Wait until the microthread has finished.
    pub(crate) async fn finished(&self) {
        self.finished_unless(|| false).await;
    }

    /// Wait until the microthread has finished (true), or until `stop` says so when
    /// the waiters are woken ([`wake_waiters`](Completion::wake_waiters)) (false).
    pub(crate) async fn finished_unless(&self, stop: impl Fn() -> bool) -> bool {
        until(&self.done, || {
            if self.is_finished() {
                Some(true)
            } else {
                stop().then_some(false)
            }
        })
        .await
    }

    /// Wake whoever waits for this microthread, to look at their `stop` again.
    pub(crate) fn wake_waiters(&self) {
        self.done.notify_waiters();
    }

    /// Take the outcome of the finished microthread.
    pub(crate) fn take(&self) -> Outcome {
        let mut s = self.lock();
        if s.taken {
            return Err(Failure {
                id: self.id,
                name: self.name.as_deref().map(str::to_owned),
                kind: FailureKind::Trap,
                message: "its result was already taken by an earlier join".into(),
            });
        }
        self.let_go(&mut s);
        s.taken = true;
        s.outcome.take().expect("a finished microthread has an outcome")
    }

    /// After the microthread finished: its failure, if nobody joined it or got it
    /// through a channel.
    pub(crate) fn unjoined_failure(&self) -> Option<Failure> {
        let s = self.lock();
        match &s.outcome {
            // A cancelled microthread was stopped on purpose: nothing to report.
            Some(Err(f)) if !s.taken && !s.failure_delivered && f.kind != FailureKind::Cancelled => {
                Some(f.clone())
            }
            _ => None,
        }
    }

    /// Joined, or succeeded: nothing more to wait for or report.
    pub(crate) fn is_settled(&self) -> bool {
        let s = self.lock();
        s.taken || matches!(s.outcome, Some(Ok(_)))
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let s = self.state.value_mut();
        if std::mem::take(&mut s.held)
            && let Some(Ok(result)) = &s.outcome
        {
            self.budget.release(result);
        }
    }
}

impl Delivery for Completion {
    fn awaiting(&self) {
        self.lock().awaiting += 1;
    }

    /// A reader received this microthread's failure through a channel.
    fn delivered(&self) {
        let mut s = self.lock();
        s.failure_delivered = true;
        s.awaiting = s.awaiting.saturating_sub(1);
    }

    fn discarded(&self) {
        {
            let mut s = self.lock();
            s.awaiting = s.awaiting.saturating_sub(1);
        }
        self.check_unjoined();
    }
}
