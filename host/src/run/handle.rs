//! The application's handle on a run ([`RunHandle`]), and the cell where the run's
//! end is published, which it waits on.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::Run;
use super::status::ExitStatus;
use super::view::{MicrothreadInfo, RunStats, RunView};
use crate::sync::{Unpoisoned, poll_locked};

#[cfg(doc)]
use super::options::RunOptions;

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

    fn wait(&self) -> ExitStatus {
        let mut st = self.lock();
        loop {
            if let Some(status) = &st.status {
                return status.clone();
            }
            st = self.published.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        poll_locked(&self.state, cx, |st| st.status.clone(), |st| &mut st.waker)
    }
}

/// A running program, owned by the application that started it
/// ([`Program::start`](crate::Program::start)).
///
/// Its microthreads run on the runtime's workers whoever holds the handle.
/// [`wait`](RunHandle::wait) blocks the calling thread until the run has ended; the
/// handle is also a [`Future`] of the same [`ExitStatus`], which any executor can
/// poll. [`cancel`](RunHandle::cancel) stops the run; **dropping the handle cancels
/// the run too**, so no run is ever left without an owner. The handle keeps its
/// program and runtime alive.
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// use std::time::Duration;
/// let program = weft::Runtime::new()?.load("server.wasm")?;
/// let run = program.start(&weft::RunOptions::new())?;
/// std::thread::sleep(Duration::from_secs(1));
/// run.cancel();
/// assert_eq!(run.wait(), weft::ExitStatus::Cancelled);
/// # Ok(()) }
/// ```
#[must_use = "dropping a RunHandle cancels its run"]
pub struct RunHandle {
    run: Arc<Run>,
    /// The program (and so its runtime), for as long as the handle lives.
    _keep: Arc<dyn Send + Sync>,
}

impl RunHandle {
    pub(crate) fn new(run: Arc<Run>, keep: Arc<dyn Send + Sync>) -> Self {
        RunHandle { run, _keep: keep }
    }

    /// Block the calling thread until the run has ended, and return how.
    pub fn wait(self) -> ExitStatus {
        self.run.finish.wait()
    }

    /// Cancel the run: the blocking calls of its blocked microthreads fail at once
    /// with a cancellation, so that their cleanup runs, for the
    /// [`shutdown_grace`](RunOptions::shutdown_grace) period at most (then they are
    /// stopped wherever they are); busy ones stop at their next fuel yield (or
    /// epoch check, where fuel is off). The run then ends with
    /// [`ExitStatus::Cancelled`], once they are all gone. Cancelling a run that has
    /// ended does nothing.
    pub fn cancel(&self) {
        self.run.cancel();
    }

    /// How the run ended, if it has.
    pub fn status(&self) -> Option<ExitStatus> {
        self.run.finish.get()
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.status().is_some()
    }

    /// Live microthreads of the run now.
    pub fn live_microthreads(&self) -> u32 {
        self.run.live()
    }

    /// What each live microthread is doing, in order of id (empty once the run has
    /// ended).
    pub fn microthreads(&self) -> Vec<MicrothreadInfo> {
        self.run.members.snapshot()
    }

    /// The run's counters: spawned, live, peak live, finished, failed, messages
    /// sent.
    pub fn stats(&self) -> RunStats {
        self.run.stats()
    }

    /// A view of the run for other threads (say, one that prints the live
    /// microthreads on a signal): it sees the run without owning it.
    pub fn view(&self) -> RunView {
        RunView(Arc::downgrade(&self.run))
    }

    /// Bytes buffered in the run's channels now (what
    /// [`RunOptions::max_buffered_bytes`] bounds).
    pub fn buffered_bytes(&self) -> u64 {
        self.run.budget.buffered()
    }

    /// Channels of the run open now.
    pub fn open_channels(&self) -> u32 {
        self.run.budget.open_channels()
    }

    /// Sockets of the run open now, `weft_guest::net`'s and `std::net`'s (what
    /// [`RunOptions::max_sockets`] bounds).
    pub fn open_sockets(&self) -> u32 {
        self.run.sockets.used()
    }

    /// Bytes the host holds now for the run's socket reads under way (a read that
    /// waits for bytes holds none).
    pub fn socket_read_bytes(&self) -> u64 {
        self.run.read_buffers.bytes()
    }

    /// Handles (join handles, channel ends, sockets) the run's microthreads hold
    /// now, all together (what [`RunOptions::max_run_handles`] bounds).
    pub fn open_handles(&self) -> u32 {
        self.run.handles.used()
    }
}

impl Future for RunHandle {
    type Output = ExitStatus;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        self.run.finish.poll(cx)
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        if !self.is_finished() {
            self.run.cancel();
        }
    }
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("live", &self.run.live())
            .field("status", &self.status())
            .finish()
    }
}
