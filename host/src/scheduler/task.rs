//! A microthread's task on a queue: spawned with an abort flag, awaited for its
//! output or why there is none, stopped from outside.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use async_task::{Runnable, ScheduleInfo, WithInfo};

/// A task of `future`, scheduled by `schedule`: its first runnable (to queue), and
/// the task to await or abort.
pub(super) fn task<F>(
    future: F,
    schedule: impl Fn(Runnable, ScheduleInfo) + Send + Sync + 'static,
) -> (Runnable, Task<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let abort = Arc::new(AbortFlag::default());
    let future = Abortable {
        future,
        abort: abort.clone(),
    };
    let (runnable, task) = async_task::Builder::new().spawn(move |_| future, WithInfo(schedule));
    let task = Task {
        task: Some(task.fallible()),
        abort,
    };
    (runnable, task)
}

/// A microthread woken after its queue stopped: nobody will run it. It is dropped
/// (its future with it), so that the queue and its tasks, which hold each other,
/// are not kept alive; on a thread of its own, since whoever woke it may hold a lock
/// that dropping the future takes (a channel's). Rare: only what was neither
/// aborted nor finished when its runtime or run went away.
pub(super) fn drop_later(runnable: Runnable) {
    // Not dropped with the closure should the thread not start (see below).
    let runnable = std::mem::ManuallyDrop::new(runnable);
    let dropped = std::thread::Builder::new()
        .name("weft-drop".into())
        .spawn(move || drop(std::mem::ManuallyDrop::into_inner(runnable)));
    if let Err(e) = dropped {
        // No thread: kept (a leak) rather than risk a deadlock here.
        tracing::warn!(target: "weft::microthread", "a stopped microthread is kept: no thread to drop it on: {e}");
    }
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

struct Abortable<F> {
    future: F,
    abort: Arc<AbortFlag>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Why a task gave no output.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It was aborted, or its scheduler stopped before it finished.
    Aborted,
    /// It panicked (a bug in weft): the panic's message.
    Panicked(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Aborted => f.write_str("aborted"),
            Ended::Panicked(m) => write!(f, "panicked: {m}"),
        }
    }
}

impl<F: Future> Future for Abortable<F> {
    type Output = Result<F::Output, Ended>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`.
        let this = unsafe { self.get_unchecked_mut() };
        // A task's waker is the same at every poll: kept once, before the flag is
        // read, so that an abort either sees it or is seen here.
        if this.abort.waker.get().is_none() {
            let _ = this.abort.waker.set(cx.waker().clone());
        }
        if this.abort.aborted.load(Ordering::SeqCst) {
            return Poll::Ready(Err(Ended::Aborted));
        }
        // A panic ends this task only, never the worker that polls it.
        let poll = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: see above.
            unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx)
        }));
        match poll {
            Ok(poll) => poll.map(Ok),
            Err(payload) => Poll::Ready(Err(Ended::Panicked(panic_message(&*payload)))),
        }
    }
}

/// A task on the workers: await it for its output, or why there is none; dropping
/// it lets the task run on.
pub(crate) struct Task<T> {
    task: Option<async_task::FallibleTask<Result<T, Ended>>>,
    abort: Arc<AbortFlag>,
}

impl<T> Task<T> {
    /// Stops the task from outside.
    pub(crate) fn abort_handle(&self) -> AbortHandle {
        AbortHandle(self.abort.clone())
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, Ended>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Ended>> {
        match self.task.as_mut() {
            // `None`: the task was dropped unfinished, with its scheduler.
            Some(task) => Pin::new(task)
                .poll(cx)
                .map(|out| out.unwrap_or(Err(Ended::Aborted))),
            None => Poll::Ready(Err(Ended::Aborted)),
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
