//! A deterministic run's queue: its microthreads run on one task on the run's own
//! thread, and the run's schedule picks which ready one runs next.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_task::Runnable;

use super::task::{Task, drop_later, run_contained, spawn};
use crate::deterministic::Schedule;
use crate::sync::Unpoisoned;

/// How many microthreads a deterministic run's queue runs before it lets its
/// thread's tokio look at timers (as tokio looks at them every 61 tasks).
const SEEDED_RUN: u32 = 61;

/// A deterministic run's queue (see the module docs).
pub(crate) struct Seeded {
    shared: Arc<SeededShared>,
}

struct SeededShared {
    ready: Mutex<Vec<Runnable>>,
    more: tokio::sync::Notify,
    schedule: Arc<Schedule>,
    /// The queue's task is gone (its lane ended): a microthread woken now is
    /// dropped, not queued.
    closed: AtomicBool,
}

impl Seeded {
    /// Start the queue's task on `lane` (the run's own thread), picking by
    /// `schedule`. It ends with the lane; what is still queued is dropped then.
    pub(crate) fn start(lane: &tokio::runtime::Handle, schedule: Arc<Schedule>) -> Seeded {
        let shared = Arc::new(SeededShared {
            ready: Mutex::new(Vec::new()),
            more: tokio::sync::Notify::new(),
            schedule,
            closed: AtomicBool::new(false),
        });
        lane.spawn(run_seeded(shared.clone()));
        Seeded { shared }
    }

    /// Run `future` on the queue.
    pub(crate) fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = self.shared.clone();
        spawn(future, move |r, _| shared.push(r), |r| self.shared.push(r))
    }
}

impl SeededShared {
    fn push(&self, runnable: Runnable) {
        if self.closed.load(Ordering::Acquire) {
            drop_later(runnable);
            return;
        }
        self.ready.locked().push(runnable);
        // A permit if the queue's task is not waiting now: it does not miss it.
        self.more.notify_one();
    }

    /// The ready microthread the schedule picks, if any is ready.
    fn pick(&self) -> Option<Runnable> {
        let mut ready = self.ready.locked();
        if ready.is_empty() {
            return None;
        }
        let i = match ready.len() {
            1 => 0,
            n => self.schedule.choose(n),
        };
        Some(ready.swap_remove(i))
    }
}

/// The task of a deterministic run's queue: run what the schedule picks; when
/// nothing is ready, wait (then tokio, finding nothing to do, moves the paused
/// clock to the next timer).
async fn run_seeded(shared: Arc<SeededShared>) {
    /// When the lane drops this task: what is queued is dropped too.
    struct Close<'a>(&'a SeededShared);
    impl Drop for Close<'_> {
        fn drop(&mut self) {
            self.0.closed.store(true, Ordering::Release);
            let queued = std::mem::take(&mut *self.0.ready.locked());
            drop(queued);
        }
    }
    let _close = Close(&shared);
    let mut ran = 0u32;
    loop {
        match shared.pick() {
            Some(runnable) => {
                run_contained(runnable);
                ran += 1;
                if ran == SEEDED_RUN {
                    ran = 0;
                    tokio::task::yield_now().await;
                }
            }
            None => {
                ran = 0;
                shared.more.notified().await;
            }
        }
    }
}
