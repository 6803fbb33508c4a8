//! The end of a run: the supervisor that watches a run on the runtime's supervisor
//! thread, decides how it ends (the first of `main`'s end, an exit, a stop, the
//! deadline, a signal, a deadlock), cancels what still runs and publishes the end;
//! the OS signals that end a run; and the guard that publishes an end should the
//! supervisor never run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::completion::Ending;
use super::output;
use super::state::{Run, Stop};
use super::status::ExitStatus;
use crate::error::{Failure, FailureKind};
use crate::scheduler::{Task, TaskError};
use crate::sync::{Unpoisoned, until};

/// In a deterministic run the grace periods run on its virtual clock, on its own
/// thread: the supervisor waits for them this long at most (of real time), should
/// that thread be stuck.
const DETERMINISTIC_HANG_GUARD: Duration = Duration::from_secs(60);

/// How long the end of a run waits for its aborted microthreads to be gone.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// The same, when a busy microthread cannot be interrupted (no fuel, no epochs):
/// only blocked ones can stop, and they do at once.
const UNINTERRUPTIBLE_GRACE: Duration = Duration::from_millis(100);

impl Run {
    async fn exit_or_stop(&self) -> ExitStatus {
        until(&self.wake_supervisor, || {
            if let Some(stop) = self.stop.locked().take() {
                return Some(match stop {
                    Stop::Cancelled => ExitStatus::Cancelled,
                    Stop::FuelExhausted(f) => ExitStatus::Failed(f),
                });
            }
            self.exit_code.locked().map(ExitStatus::Exited)
        })
        .await
    }

    /// Whether the run's microthreads are all gone within `grace`.
    async fn all_gone_within(&self, grace: Duration) -> bool {
        let all_gone = until(&self.all_gone, || {
            (self.tasks.load(Ordering::Acquire) == 0).then_some(())
        });
        tokio::time::timeout(grace, all_gone).await.is_ok()
    }

    /// How the run ends: the first of main's end, an exit, a stop, the deadline,
    /// Ctrl-C and a deadlock.
    async fn ending(&self, main: Task<Ending>) -> ExitStatus {
        let deadline = async {
            match self.options.deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let signals = self.signals.locked().take();
        let signals = async {
            match signals {
                Some(signals) => signals.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            status = self.exit_or_stop() => status,
            () = deadline => ExitStatus::DeadlineExceeded,
            ending = main => match ending {
                Ok(Ending::Returned(_)) => ExitStatus::Exited(0),
                Ok(Ending::MainReturnedErr) => ExitStatus::Exited(1),
                Ok(Ending::Exit(code)) => ExitStatus::Exited(code),
                Ok(Ending::Failed(f)) => ExitStatus::Failed(f),
                Err(TaskError::Aborted) => ExitStatus::Cancelled,
                Err(e @ TaskError::Panicked(_)) => ExitStatus::Failed(Failure {
                    id: 0,
                    name: Some("main".into()),
                    kind: FailureKind::Trap,
                    message: format!("the host task running it ended abnormally: {e}"),
                }),
            },
            status = signals => status,
            () = self.options.stdout_closed.wait() => {
                // As SIGPIPE ends a native program: at once, quietly.
                self.request_exit(output::SIGPIPE_EXIT);
                ExitStatus::Exited(output::SIGPIPE_EXIT)
            }
            report = self.members.deadlocked(|| self.tasks.load(Ordering::Acquire)) => ExitStatus::Deadlocked(report),
        }
    }

    /// Watch the run started with `main` to its end, on the supervisor thread (the
    /// workers may all be busy in guests that never yield).
    pub(crate) fn supervise(self: &Arc<Self>, main: Task<Ending>) {
        // Made outside the task: should the task never run (the runtime shutting
        // down), dropping it still publishes an end.
        let guard = FinishOnDrop(self.clone());
        self.supervisor.spawn(async move {
            let run = &guard.0;
            let status = run.ending(main).await;
            // What still runs is cancelled: first gracefully (its blocking calls fail
            // with `cancelled`, so its cleanup runs), for a grace period; then
            // aborted. An exit or a spent fuel budget ends the program at once.
            let graceful = !run.exit_requested() && !run.fuel_spent();
            // A program that imports nothing of weft cannot see its cancellation:
            // no cleanup of its could run in a grace period, so it gets none.
            let graceful = graceful && run.limits.graceful_end;
            if graceful && run.tasks.load(Ordering::Acquire) > 0 {
                run.cancel_gracefully();
                // A deterministic run's grace is timed on its virtual clock (see
                // `cancel_gracefully`); this only guards against a stuck thread.
                let grace = if run.schedule.is_some() {
                    DETERMINISTIC_HANG_GUARD.max(run.options.shutdown_grace)
                } else {
                    run.options.shutdown_grace
                };
                if !run.all_gone_within(grace).await {
                    tracing::debug!(
                        live = run.live(),
                        "the shutdown grace period is over: the microthreads still running are stopped"
                    );
                }
            }
            run.abort_all();
            // A busy microthread that cannot be interrupted will not stop: give the
            // others a moment to, and do not wait for it.
            let grace = if run.limits.interruptible {
                ABORT_GRACE
            } else {
                UNINTERRUPTIBLE_GRACE
            };
            if !run.all_gone_within(grace).await {
                tracing::warn!(
                    live = run.live(),
                    "microthreads still running {grace:?} after the program ended were left behind"
                );
            }
            run.timers.stop();
            // Its instances made ahead of need hold it: they go now.
            drop(run.prepared.close());
            run.budget.empty_all();
            // Ends nobody took go back: the application's channels may close.
            std::mem::take(&mut *run.host_endpoints.locked());
            // The handler has seen every failure before the end is published.
            run.failures.delivered().await;
            run.finish.set(status);
        });
    }

    /// End the run before it starts, with `status`.
    pub(crate) fn finish_now(&self, status: ExitStatus) {
        self.finish.set(status);
    }
}

/// Publishes `Cancelled` if the supervisor is dropped before it published an end.
struct FinishOnDrop(Arc<Run>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if self.0.finish.get().is_some() {
            return;
        }
        self.0.abort_all();
        self.0.timers.stop();
        drop(self.0.prepared.close());
        self.0.budget.empty_all();
        self.0.finish.set(ExitStatus::Cancelled);
    }
}
