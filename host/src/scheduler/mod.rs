//! weft's own run queue: the worker threads that run microthreads, and the choice
//! of which ready microthread runs next.
//!
//! - A microthread woken by another one running on the same worker (a rendezvous:
//!   the receiver the sender just completed) is handed off: it goes into that
//!   worker's *hand-off* (the one microthread the worker runs next) and runs as
//!   soon as the waker gives control back, on the same core, with no trip through
//!   a shared queue. A pair handing work to each other keeps the hand-off for
//!   `NEXT_RUN` turns at most, then queues like everyone else, so that the
//!   others on the worker are not starved.
//! - A new microthread is handed off the same way by its spawner's worker: a
//!   spawner that joins it at once keeps the pair on one core. Spawned in a row,
//!   each displaces the one before into the worker's queue.
//! - A microthread that wakes itself (a fuel yield, `yield_now`) goes to the back of
//!   its worker's queue.
//! - A microthread woken from elsewhere (a timer, a socket, the application, a
//!   microthread on another worker) goes to the shared injector, which the workers
//!   look at before their own queues.
//! - A worker with nothing to run steals from the others, and parks when there is
//!   nothing to steal. Parked workers are woken only when work waits that their
//!   busy peers will not get to next: a wake from elsewhere, a second entry in a
//!   queue, a hand-off its worker may stay too busy for (taken only if it does),
//!   a chore. A chain of hand-offs (a ring, a ping-pong, a spawn and its join)
//!   therefore stays on one worker instead of migrating between cores.
//! - A worker with nothing to run does the chores others gave it (see
//!   `Scheduler::chore`) before it parks: work that needs no microthread, such as
//!   making instances ahead of need and dropping ended microthreads' stores.
//!
//! The workers enter the runtime's tokio context: timers, sockets and host tasks
//! stay on tokio, whose own thread drives them and wakes microthreads here.
//!
//! A deterministic run has a queue of its own, [`Seeded`]: one task on the run's
//! own thread (its tokio lane, whose clock is paused) runs its microthreads, and
//! the run's schedule picks which ready one runs next, uniformly from the seed.
//! Which microthread runs next is decided in two places only: `work` for the
//! workers, [`Seeded`] for a deterministic run.

mod seeded;
mod task;
#[cfg(test)]
mod tests;
mod workers;

pub(crate) use seeded::Seeded;
pub(crate) use task::{AbortHandle, Task, TaskError};
pub use workers::WorkerStats;
pub(crate) use workers::{Chore, Scheduler, WorkerHold};
