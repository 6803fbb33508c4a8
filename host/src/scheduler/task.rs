//! A microthread's task on a queue: spawned with an abort flag, awaited for its
//! output or why there is none, stopped from outside.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use async_task::{Runnable, ScheduleInfo, WithInfo};

/// Start a task of `future`, scheduled by `schedule` each time it is woken: its
/// first runnable goes to `first` (to queue), and the task to await or abort is
/// returned. The workers and a deterministic run's queue spawn through here.
pub(super) fn spawn<F>(
    future: F,
    schedule: impl Fn(Runnable, ScheduleInfo) + Send + Sync + 'static,
    first: impl FnOnce(Runnable),
) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let abort = Arc::new(AbortFlag::default());
    let future = Abortable {
        future: ManuallyDrop::new(future),
        dropped: false,
        abort: abort.clone(),
    };
    let (runnable, task) = async_task::Builder::new().spawn(move |_| future, WithInfo(schedule));
    first(runnable);
    Task {
        task: Some(task.fallible()),
        abort,
    }
}

/// A microthread woken after its queue stopped: nobody will run it. It is dropped
/// (its future with it), so that the queue and its tasks, which hold each other,
/// are not kept alive; on the reaper thread (one for the process, started on first
/// use), since whoever woke it may hold a lock that dropping the future takes (a
/// channel's). Rare: only what was neither aborted nor finished when its runtime
/// or run went away.
pub(super) fn drop_later(runnable: Runnable) {
    match reaper() {
        Ok(tx) => {
            if let Err(mpsc::SendError(runnable)) = tx.send(runnable) {
                // The reaper never ends (it catches what panics): unreachable, but
                // kept (a leak) rather than risk a deadlock here.
                std::mem::forget(runnable);
                tracing::warn!(target: "weft::microthread", "a stopped microthread is kept: the thread that drops them is gone");
            }
        }
        Err(e) => {
            // No thread: kept (a leak) rather than risk a deadlock here.
            std::mem::forget(runnable);
            tracing::warn!(target: "weft::microthread", "a stopped microthread is kept: no thread to drop it on: {e}");
        }
    }
}

/// The queue of the thread that drops stopped microthreads (`weft-drop`), started
/// on first use; it waits for the next one for the life of the process.
fn reaper() -> Result<&'static mpsc::Sender<Runnable>, &'static str> {
    static REAPER: OnceLock<Result<mpsc::Sender<Runnable>, String>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Runnable>();
            std::thread::Builder::new()
                .name("weft-drop".into())
                .spawn(move || {
                    for runnable in rx {
                        contained(|| drop(runnable));
                    }
                })
                .map(|_| tx)
                .map_err(|e| format!("cannot start the thread that drops stopped microthreads: {e}"))
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Run `f`, reporting a panic instead of unwinding: for what runs on weft's own
/// threads outside a task's poll (a drop, the end of a worker), where a panic is a
/// bug (of weft, or of an application's callback) and must not end the thread.
pub(super) fn contained(f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        tracing::error!(
            target: "weft::scheduler",
            "a panic outside any microthread's poll (a bug in weft or in a callback of the application), caught: {}",
            panic_message(&*payload)
        );
    }
}

/// Run `runnable`: its task catches what its future's poll and drop throw; a
/// panic anywhere else is caught here ([`contained`]).
pub(super) fn run_contained(runnable: Runnable) {
    contained(|| {
        runnable.run();
    });
}

/// Lets a task be stopped from outside: its future is dropped at its next poll,
/// which the abort brings about.
#[derive(Default)]
struct AbortFlag {
    aborted: AtomicBool,
    waker: OnceLock<Waker>,
}

impl AbortFlag {
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.get() {
            w.wake_by_ref();
        }
    }
}

/// A task's future, as its task holds it: what the future's poll or drop throws
/// ends the task, never the thread that runs it or drops it.
struct Abortable<F> {
    /// Dropped in place (never moved) once `dropped` is set.
    future: ManuallyDrop<F>,
    dropped: bool,
    abort: Arc<AbortFlag>,
}

impl<F> Abortable<F> {
    /// Drop the future in place, now (at most once). A panic in its drop is
    /// caught: its message.
    fn drop_future(&mut self) -> Result<(), String> {
        if std::mem::replace(&mut self.dropped, true) {
            return Ok(());
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: dropped once (the flag above), in place: a pinned future is
            // dropped before its memory is reused, as pinning requires.
            unsafe { ManuallyDrop::drop(&mut self.future) }
        }))
        .map_err(|payload| panic_message(&*payload))
    }
}

impl<F> Drop for Abortable<F> {
    fn drop(&mut self) {
        // Dropped unfinished: aborted through its runnable, or with its queue.
        if let Err(m) = self.drop_future() {
            tracing::error!(target: "weft::scheduler", "a task panicked while being dropped (a bug in weft or in a callback of the application), caught: {m}");
        }
    }
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Why a task gave no output.
#[derive(Debug)]
pub(crate) enum TaskError {
    /// It was aborted, or its scheduler stopped before it finished.
    Aborted,
    /// It panicked (a bug in weft): the panic's message.
    Panicked(String),
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Aborted => f.write_str("aborted"),
            TaskError::Panicked(m) => write!(f, "panicked: {m}"),
        }
    }
}

impl<F: Future> Future for Abortable<F> {
    type Output = Result<F::Output, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`,
        // only dropped in place (`drop_future`).
        let this = unsafe { self.get_unchecked_mut() };
        if this.dropped {
            // Not polled again once it gave its output; kept safe should it be.
            return Poll::Ready(Err(TaskError::Aborted));
        }
        // A task's waker is the same at every poll: kept once, before the flag is
        // read, so that an abort either sees it or is seen here.
        if this.abort.waker.get().is_none() {
            let _ = this.abort.waker.set(cx.waker().clone());
        }
        let ended = if this.abort.aborted.load(Ordering::SeqCst) {
            Err(TaskError::Aborted)
        } else {
            // A panic ends this task only, never the worker that polls it.
            let poll = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: see above; not yet dropped (`dropped` is false).
                unsafe { Pin::new_unchecked(&mut *this.future) }.poll(cx)
            }));
            match poll {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(out)) => Ok(out),
                Err(payload) => Err(TaskError::Panicked(panic_message(&*payload))),
            }
        };
        // Dropped here, where a panic in its drop (which can run an application's
        // callback) is caught and ends the task, not its worker.
        match (this.drop_future(), ended) {
            (Ok(()), ended) => Poll::Ready(ended),
            (Err(m), Err(TaskError::Panicked(first))) => Poll::Ready(Err(TaskError::Panicked(format!(
                "{first}; then, while dropped: {m}"
            )))),
            (Err(m), _) => Poll::Ready(Err(TaskError::Panicked(format!("while dropped: {m}")))),
        }
    }
}

/// A task on the workers: await it for its output, or why there is none; dropping
/// it lets the task run on.
pub(crate) struct Task<T> {
    task: Option<async_task::FallibleTask<Result<T, TaskError>>>,
    abort: Arc<AbortFlag>,
}

impl<T> Task<T> {
    /// Stops the task from outside.
    pub(crate) fn abort_handle(&self) -> AbortHandle {
        AbortHandle(self.abort.clone())
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        match self.task.as_mut() {
            // `None`: the task was dropped unfinished, with its scheduler.
            Some(task) => Pin::new(task)
                .poll(cx)
                .map(|out| out.unwrap_or(Err(TaskError::Aborted))),
            None => Poll::Ready(Err(TaskError::Aborted)),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

/// Stops a [`Task`]: its future is dropped at its next poll, which this brings
/// about.
#[derive(Clone)]
pub(crate) struct AbortHandle(Arc<AbortFlag>);

impl AbortHandle {
    pub(crate) fn abort(&self) {
        self.0.abort();
    }
}
