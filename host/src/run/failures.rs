//! The failures nobody handles (a detached microthread's, not joined), on their way
//! to the application's handler ([`RunOptions::on_failure`](super::RunOptions::on_failure)).
//!
//! A failure is reported wherever it becomes unhandled: on a worker, when a
//! microthread ends; in a drop (a join handle abandoned with its holder's store,
//! or discarded with a channel's messages), on any thread, the application's
//! included. So the handler is never called there: the failure goes on an
//! unbounded queue, and one task per run, on the runtime's supervisor, takes them
//! in order and calls the handler for each on the supervisor's blocking thread
//! (named `weft-supervisor`, like the thread that watches the runs, which a slow
//! handler therefore does not hold up), under `catch_unwind`. The run's end is
//! published only once the handler has seen every failure reported before it
//! ([`Failures::delivered`]).
//!
//! Without a handler, a failure is written on the run's stderr at once.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::{mpsc, oneshot};

use super::options::FailureHandler;
use super::output::Output;
use crate::error::Failure;

/// A run's way to its failure handler.
pub(super) struct Failures {
    /// To the task that calls the handler; `None` without a handler.
    queue: Option<mpsc::UnboundedSender<Delivery>>,
    /// The run's stderr, where failures go without a handler.
    stderr: Output,
}

/// What the delivering task is asked to do, in order.
enum Delivery {
    /// Hand a failure to the handler.
    Failure(Failure),
    /// Say so once every failure queued before has been handled.
    Delivered(oneshot::Sender<()>),
}

impl Failures {
    /// The way to `handler`, if any, whose task runs on `supervisor`.
    pub(super) fn start(
        handler: Option<&FailureHandler>,
        stderr: Output,
        supervisor: &tokio::runtime::Handle,
    ) -> Failures {
        let queue = handler.map(|handler| {
            let (tx, rx) = mpsc::unbounded_channel();
            supervisor.spawn(deliver(
                Queued {
                    rx,
                    stderr: stderr.clone(),
                },
                handler.clone(),
                supervisor.clone(),
            ));
            tx
        });
        Failures { queue, stderr }
    }

    /// A failure nobody handles: queue it for the handler, or without one write it
    /// on the run's stderr. Never calls the handler itself, so any thread may
    /// report, in a drop or under a lock.
    /// `what` says what failed, on stderr: a `detached` microthread, a `request`.
    pub(super) fn report(&self, failure: &Failure, what: &str) {
        let line = match &self.queue {
            None => format!("weft: {what} {failure}\n"),
            Some(queue) => match queue.send(Delivery::Failure(failure.clone())) {
                Ok(()) => return,
                // The delivering task is gone (the runtime is shutting down).
                Err(mpsc::error::SendError(_)) => format!(
                    "weft: {what} {failure} (not handed to the failure handler: the runtime is shutting down)\n"
                ),
            },
        };
        self.stderr.write(&line);
    }

    /// Resolves once the handler has returned (or panicked) for every failure
    /// reported before this call. If the delivering task is gone (the runtime
    /// shutting down), what it had not delivered was written on the run's stderr.
    pub(super) async fn delivered(&self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if queue.send(Delivery::Delivered(tx)).is_err() {
            // The task is gone, and its queue with it: nothing is left to wait for.
            return;
        }
        if rx.await.is_err() {
            tracing::warn!("the failure handler's task ended before it had handled every failure of the run");
        }
    }
}

/// The delivering task's queue: what it still holds when the task is dropped
/// (the runtime shutting down) is written on the run's stderr.
struct Queued {
    rx: mpsc::UnboundedReceiver<Delivery>,
    stderr: Output,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(delivery) = self.rx.try_recv() {
            if let Delivery::Failure(f) = delivery {
                self.stderr.write(&format!(
                    "weft: detached {f} (not handed to the failure handler: the runtime shut down)\n"
                ));
            }
        }
    }
}

/// Hand each queued failure to `handler`, one at a time, in order, on the
/// supervisor's blocking thread. A handler that panics is reported on the run's
/// stderr, once, with the failure it was given, and is called again for the next
/// one.
/// Ends when the run (which holds the queue's sender) is gone.
async fn deliver(mut queue: Queued, handler: FailureHandler, supervisor: tokio::runtime::Handle) {
    while let Some(delivery) = queue.rx.recv().await {
        let failure = match delivery {
            Delivery::Failure(f) => f,
            Delivery::Delivered(done) => {
                if done.send(()).is_err() {
                    // The run's end stopped waiting (its supervisor was dropped).
                    tracing::debug!("nobody waits for the failure handler any more");
                }
                continue;
            }
        };
        let handler = handler.clone();
        let given = failure.clone();
        let call = supervisor.spawn_blocking(move || catch_unwind(AssertUnwindSafe(|| (handler.0)(&given))));
        let line = match call.await {
            Ok(Ok(())) => continue,
            Ok(Err(panic)) => format!(
                "weft: the failure handler panicked: {}; the run goes on. It was given: detached {failure}\n",
                panic_message(&*panic)
            ),
            Err(e) => format!("weft: not handed to the failure handler ({e}): detached {failure}\n"),
        };
        queue.stderr.write(&line);
    }
}

/// What a panic said, if it said it as text.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic without a message)"
    }
}
