//! The application's handle on a run ([`RunHandle`]), and the cell where the run's
//! end is published, which it waits on.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use super::registry::{WrongType, short_type_name};
use super::state::Run;
use super::status::ExitStatus;
use super::view::{ChannelInfo, MicrothreadInfo, RunStats};

#[cfg(doc)]
use super::options::RunOptions;

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

    /// The run itself.
    pub(crate) fn run(&self) -> &Arc<Run> {
        &self.run
    }

    /// Block the calling thread until the run has ended, and return how,
    /// keeping the handle.
    pub(crate) fn wait_by_ref(&self) -> ExitStatus {
        self.run.finish.wait()
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
    /// sent, restarts of supervised microthreads.
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
    /// now, all together (what [`RunOptions::max_run_handles`] bounds). Each name
    /// registered in the run's registry counts as one.
    pub fn open_handles(&self) -> u32 {
        self.run.handles.used()
    }

    /// The sender a microthread of the run registered under `name`
    /// (`weft_guest::register`), as the application's own end of that channel;
    /// `None` if no live microthread registered the name (a name is released when
    /// the microthread that registered it ends).
    ///
    /// `T` must be the type the guest registered its sender with. The guest's type
    /// and the application's copy of it live in different crates, so they compare
    /// by name with every path cut to its last segment: a guest's
    /// `Sender<my_guest::proto::Job>` is found as a `Sender<Job>` of any crate's
    /// `Job`, and `Vec<my_guest::Job>` as `Vec<Job>`; two types of the same name
    /// in different modules are not told apart. Another type is an error that
    /// names both.
    ///
    /// The registry's own sender is no one's: until the application holds the
    /// sender this returns, a microthread waiting on the channel counts for the
    /// deadlock detector as one that only the run's microthreads can wake. Look the
    /// name up before the guests wait for the application's messages.
    ///
    /// ```no_run
    /// # fn demo(run: &weft::RunHandle) -> Result<(), Box<dyn std::error::Error>> {
    /// #[derive(serde::Serialize)]
    /// struct Job(String);
    /// if let Some(jobs) = run.whereis::<Job>("jobs")? {
    ///     jobs.send_blocking(Job("count these words".into()))?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn whereis<T>(&self, name: &str) -> Result<Option<crate::channel::Sender<T>>, WrongType> {
        let Some(found) = self.run.registry.whereis(name) else {
            return Ok(None);
        };
        let asked = std::any::type_name::<T>();
        if short_type_name(&found.fingerprint) != short_type_name(asked) {
            return Err(WrongType::new(name, &found.fingerprint, asked));
        }
        Ok(Some(crate::channel::Sender::from_handle(found.sender)))
    }
}

impl Run {
    /// Wait for the run's end.
    pub(crate) async fn end(&self) -> ExitStatus {
        std::future::poll_fn(|cx| self.finish.poll(cx)).await
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

/// A view of a run: its microthreads and counters, for any thread, without owning
/// the run (dropping a view cancels nothing, and a view keeps nothing of the run
/// alive). From [`RunHandle::view`](RunHandle::view).
///
/// Once the run is gone (it ended, and its [`RunHandle`] was
/// dropped), the view sees no microthreads and zero counters.
#[derive(Clone)]
pub struct RunView(pub(crate) Weak<Run>);

impl RunView {
    /// What each live microthread is doing, in order of id; empty once the run has
    /// ended.
    pub fn microthreads(&self) -> Vec<MicrothreadInfo> {
        self.0
            .upgrade()
            .map(|run| run.members.snapshot())
            .unwrap_or_default()
    }

    /// The run's counters; zero once the run is gone.
    pub fn stats(&self) -> RunStats {
        self.0.upgrade().map(|run| run.stats()).unwrap_or_default()
    }

    /// The run's open channels, in order of id: what each buffers and who holds
    /// its ends (who waits on one is in [`microthreads`](RunView::microthreads));
    /// empty once the run has ended.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.0
            .upgrade()
            .map(|run| run.budget.channels().into_iter().map(ChannelInfo::from).collect())
            .unwrap_or_default()
    }

    /// Cancel microthread `id` and its structured children, as its parent's
    /// `cancel` does: its blocking calls fail with `cancelled` so that its cleanup
    /// runs, and it is stopped if it has not finished the run's grace period
    /// after that ([`RunOptions::cancel_grace`](crate::RunOptions::cancel_grace)).
    /// Its joiner sees a failure of kind `Cancelled`. False if there is no such
    /// live microthread.
    pub fn cancel_microthread(&self, id: u64) -> bool {
        let Some(run) = self.0.upgrade() else {
            return false;
        };
        let Some(member) = run.members.get(id) else {
            return false;
        };
        run.cancel_member(&member, true);
        true
    }

    /// Whether the run is gone: it ended and nothing holds it any longer.
    pub fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }

    /// A table of the live microthreads, a line each (what `weft run` prints on
    /// SIGQUIT).
    pub fn table(&self) -> String {
        let mut out = String::new();
        for m in self.microthreads() {
            let name = m.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let parent = m.parent.map(|p| format!(", child of {p}")).unwrap_or_default();
            let fuel = m.fuel.map(|f| format!(", fuel {f}")).unwrap_or_default();
            out.push_str(&format!(
                "microthread {}{name}: {}{parent}, age {:?}{fuel}, sent {}\n",
                m.id,
                m.state,
                readable(m.age),
                m.messages_sent
            ));
        }
        out
    }
}

/// A duration to the millisecond (to the microsecond below one), as people read an age.
fn readable(age: Duration) -> Duration {
    if age >= Duration::from_millis(1) {
        Duration::from_millis(age.as_millis() as u64)
    } else {
        Duration::from_micros(age.as_micros() as u64)
    }
}

impl std::fmt::Debug for RunView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunView").field("stats", &self.stats()).finish()
    }
}
