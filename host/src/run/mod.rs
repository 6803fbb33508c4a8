//! One run of a program, in sub-modules; this file only declares them and says
//! what they share. No sub-module imports this one.
//!
//! - `state` the state the run's microthreads share (`Run`: ids, live counts, the
//!   channel budget, how it is being stopped), `context` what the runtime gives a
//!   run to start it (`RunContext`), `counters` its counters and the runtime's
//!   `Tally` of all its runs (what the metrics read);
//! - `options` the public builder ([`RunOptions`]); `limits` what the run may use
//!   once checked against the runtime's limits (`RunLimits`); `wasi` a
//!   microthread's WASI context and the check of its sockets; `output` its stdout
//!   and stderr, and [`OutputBuffer`];
//! - `blocking` what the run knows of each live microthread (`Member`) and the
//!   deadlock detector; `cancel` one microthread's cancellation; `completion` how
//!   a microthread's end reaches its joiner; `atomic` its atomic sections;
//!   `timers` the run's timers; `failures` the failures nobody handles;
//!   `monitors` who watches a microthread, and the `Down` each gets at its end;
//!   `registry` its named endpoints (a name is released when its registrant ends);
//! - `supervisor` how the run ends, `signals` the process's signals it may end
//!   on, `status` [`ExitStatus`], `finish` the cell where the end is published;
//!   `handle` the application's [`RunHandle`] and [`RunView`]; `view` what they
//!   show of the microthreads and counters.
//!
//! A run ends when `main` and its structured children are done, a microthread exits
//! the program, every microthread is deadlocked, its deadline passes, its fuel
//! budget runs out, Ctrl-C interrupts it, or its handle cancels it (dropping the
//! handle does). Then whatever still runs is cancelled: blocked microthreads see
//! the cancellation as an error from their blocking call (their cleanup runs, for
//! the shutdown grace period at most), busy ones stop at their next fuel yield (or,
//! with fuel off, at their next epoch check), and the [`ExitStatus`] is published
//! once they are gone. An `exit` (from `main` as from any other microthread) or a
//! spent fuel budget ends the run at once: no cleanup runs. A deterministic run
//! takes its grace periods on its virtual clock.
//!
//! The run's words, one per concept:
//! - a microthread **ends**: how its guest code ended is its `Ending`, which its
//!   `Completion` holds for its joiner; a task of the scheduler that gave no
//!   output ended with a `TaskError`;
//! - a run **finishes** when its [`ExitStatus`] is published (in its `Finish`
//!   cell, which [`RunHandle::wait`] and [`RunHandle::is_finished`] read);
//! - a run is **stopped** when something other than its program ends it: a
//!   `Stop` (its handle cancelled it, or its fuel budget ran out), which the
//!   supervisor waits for beside an exit (`exit_or_stop`);
//! - a microthread is **cancelled** when it is asked to stop: its blocking calls
//!   fail, so its cleanup runs (`Cancel`; the run's `cancelling` flag);
//! - it is **aborted** when it is stopped wherever it is, without cleanup: its
//!   grace period is over, an exit or a spent budget ended the run, or the run's
//!   shutdown grace is over (the run's `aborting` flag, `abort_all`);
//! - a microthread is **blocked** while it is in a blocking call (`Members::block`
//!   records a `Block`: what it is `BlockedOn` and how to interrupt it); a
//!   channel operation that blocks parks on a channel `Waiter`;
//! - a **slot** is one unit of a `Quota` held until dropped: the run's `LiveSlot` is a
//!   live microthread's place in the run's and the runtime's live-microthread
//!   limits (a socket's is `net::SocketSlot`). `JoinHandle` is not one: it is the
//!   host half of a guest's join handle.

mod atomic;
mod blocking;
mod cancel;
mod completion;
mod context;
mod counters;
mod failures;
mod finish;
mod handle;
mod limits;
mod monitors;
mod options;
mod output;
mod prepared;
mod registry;
mod signals;
mod state;
mod status;
mod supervisor;
mod timers;
mod view;
mod wasi;

pub(crate) use blocking::{BlockedOn, Member, Members, Probe};
pub(crate) use completion::{Completion, Ending, Identity, Unjoined};
pub(crate) use context::RunContext;
pub(crate) use counters::{FAILURE_KINDS, RequestOutcome, Tally};
pub use handle::{RunHandle, RunView};
pub(crate) use monitors::Ended;
pub(crate) use options::{AppData, HostEndpoint};
pub use options::{DEFAULT_MAX_HANDLES, DEFAULT_MAX_RUN_HANDLES, DEFAULT_MAX_SOCKETS, RunOptions};
pub use output::OutputBuffer;
pub(crate) use registry::RegisterError;
pub use registry::WrongType;
// `pub` for the generated bindings, which name it as a resource's type.
pub use state::JoinHandle;
pub(crate) use state::{LiveSlot, Refused, Run};
pub use status::ExitStatus;
pub use view::{ChannelInfo, MicrothreadInfo, MicrothreadState, RunStats};
