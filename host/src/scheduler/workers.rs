//! The worker threads: each with a next slot and a queue, an injector for wakes
//! from elsewhere, stealing when idle, parking when there is nothing to steal.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_task::{Runnable, ScheduleInfo};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use super::task::{Task, drop_later, task};

/// How many times in a row a worker runs the microthread in its next slot before
/// it queues it behind the others.
const NEXT_RUN: u32 = 32;

/// How many times in a row a worker takes from the injector before it looks at
/// its own queue.
const INJECTED_RUN: u32 = 8;

/// What the workers share: the injector, a stealer of each queue, who is parked.
struct Shared {
    injector: Injector<Runnable>,
    stealers: Vec<Stealer<Runnable>>,
    /// Workers that found nothing to run and park (or are about to).
    idle: Mutex<Vec<usize>>,
    /// Their threads, to unpark them.
    threads: OnceLock<Vec<std::thread::Thread>>,
    shutdown: AtomicBool,
    /// Tells this scheduler's workers from another runtime's: a worker's
    /// thread-local names its scheduler by it.
    id: usize,
}

impl Shared {
    /// Wake a parked worker, if one is parked.
    fn wake_one(&self) {
        let index = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let (Some(i), Some(threads)) = (index, self.threads.get()) {
            threads[i].unpark();
        }
    }

    fn wake_all(&self) {
        if let Some(threads) = self.threads.get() {
            for t in threads {
                t.unpark();
            }
        }
    }
}

/// The worker the current thread is, while it is one.
struct Local {
    scheduler: usize,
    queue: Worker<Runnable>,
    next: Cell<Option<Runnable>>,
}

thread_local! {
    /// The worker this thread is: set by `work` for as long as its `Local` lives.
    static LOCAL: Cell<*const Local> = const { Cell::new(std::ptr::null()) };
}

/// This thread's worker, if it is one of `shared`'s.
fn local_of(shared: &Shared) -> Option<&Local> {
    let local = LOCAL.with(Cell::get);
    // SAFETY: `work` sets the pointer to a `Local` on its own stack and clears it
    // before that `Local` is dropped; only this thread reads it.
    unsafe { local.as_ref() }.filter(|l| l.scheduler == shared.id)
}

/// Put `runnable` where it will run next, by who woke it (see the module docs).
fn schedule(shared: &Arc<Shared>, runnable: Runnable, info: ScheduleInfo) {
    if shared.shutdown.load(Ordering::Acquire) {
        drop_later(runnable);
        return;
    }
    let Some(local) = local_of(shared) else {
        shared.injector.push(runnable);
        shared.wake_one();
        return;
    };
    if info.woken_while_running {
        local.queue.push(runnable);
    } else if let Some(displaced) = local.next.replace(Some(runnable)) {
        local.queue.push(displaced);
    } else {
        return;
    }
    // Work waits behind what this worker runs next: a parked worker may take it.
    if local.queue.len() > 1 {
        shared.wake_one();
    }
}

/// The worker threads and their queues. Dropping it stops the workers; the
/// microthreads still queued are dropped with it.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    /// Start `workers` threads named `name-N`, each in `tokio`'s context.
    pub(crate) fn new(workers: usize, name: &str, tokio: tokio::runtime::Handle) -> std::io::Result<Self> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let queues: Vec<Worker<Runnable>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: queues.iter().map(Worker::stealer).collect(),
            idle: Mutex::new(Vec::new()),
            threads: OnceLock::new(),
            shutdown: AtomicBool::new(false),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let mut threads = Vec::with_capacity(workers);
        for (index, queue) in queues.into_iter().enumerate() {
            let (theirs, tokio) = (shared.clone(), tokio.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    let _context = tokio.enter();
                    work(&theirs, index, queue);
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shared.shutdown.store(true, Ordering::Release);
                    for t in &threads {
                        t.thread().unpark();
                    }
                    return Err(e);
                }
            }
        }
        let _ = shared
            .threads
            .set(threads.iter().map(|t| t.thread().clone()).collect());
        Ok(Scheduler { shared, threads })
    }

    /// Run `future` on the workers.
    pub(crate) fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = self.shared.clone();
        let (runnable, task) = task(future, move |r, info| schedule(&shared, r, info));
        // A new microthread queues behind its spawner; an idle worker may take it.
        match local_of(&self.shared) {
            Some(local) => {
                local.queue.push(runnable);
                self.shared.wake_one();
            }
            None => {
                self.shared.injector.push(runnable);
                self.shared.wake_one();
            }
        }
        if self.shared.shutdown.load(Ordering::Acquire) {
            // Nobody will run it: dropped, its `Task` resolves as aborted.
            self.drop_injected();
        }
        task
    }

    /// Stop the workers once they are done with what they run now, waiting at most
    /// `grace` for them (not at all from one of them): a worker busy in a guest
    /// that never yields is left behind. What is still queued is dropped.
    pub(crate) fn shutdown(&self, grace: std::time::Duration) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all();
        if local_of(&self.shared).is_none() {
            let deadline = std::time::Instant::now() + grace;
            while self.threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        self.drop_injected();
    }

    /// Drop what waits in the injector (the workers are stopping or gone).
    fn drop_injected(&self) {
        while !self.shared.injector.steal().is_empty() {}
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all();
        self.drop_injected();
    }
}

/// One worker's loop: run what is next, else what is injected, queued or stolen;
/// park when there is nothing.
fn work(shared: &Arc<Shared>, index: usize, queue: Worker<Runnable>) {
    let local = Local {
        scheduler: shared.id,
        queue,
        next: Cell::new(None),
    };
    let local = &local;
    LOCAL.with(|l| l.set(local));
    let mut next_run = 0u32;
    let mut injected_run = 0u32;
    loop {
        if shared.shutdown.load(Ordering::Acquire) {
            break;
        }
        let found = match local.next.take() {
            Some(r) if next_run < NEXT_RUN => {
                next_run += 1;
                Some(r)
            }
            Some(r) => {
                // Its turn is up: behind the others.
                local.queue.push(r);
                next_run = 0;
                None
            }
            None => {
                next_run = 0;
                None
            }
        };
        let found = found.or_else(|| {
            if injected_run < INJECTED_RUN
                && let Some(r) = steal_from(&shared.injector, &local.queue)
            {
                injected_run += 1;
                return Some(r);
            }
            injected_run = 0;
            local.queue.pop().or_else(|| steal(shared, index, local))
        });
        match found {
            Some(runnable) => {
                runnable.run();
            }
            None => park(shared, index, local),
        }
    }
    // Dropped here, on the worker: the futures they hold may need its context.
    drop(local.next.take());
    while local.queue.pop().is_some() {}
    LOCAL.with(|l| l.set(std::ptr::null()));
}

fn steal_from(injector: &Injector<Runnable>, queue: &Worker<Runnable>) -> Option<Runnable> {
    loop {
        match injector.steal_batch_and_pop(queue) {
            Steal::Success(r) => return Some(r),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

/// Take work from the injector or another worker.
fn steal(shared: &Shared, index: usize, local: &Local) -> Option<Runnable> {
    if let Some(r) = steal_from(&shared.injector, &local.queue) {
        return Some(r);
    }
    let n = shared.stealers.len();
    for k in 1..n {
        let other = &shared.stealers[(index + k) % n];
        loop {
            match other.steal_batch_and_pop(&local.queue) {
                Steal::Success(r) => return Some(r),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }
    None
}

/// Nothing to run: say so, look once more (a wake between the look and the
/// saying would otherwise be missed), then park until woken.
fn park(shared: &Shared, index: usize, local: &Local) {
    shared.idle.lock().unwrap_or_else(|e| e.into_inner()).push(index);
    let work_waits = !shared.injector.is_empty() || shared.stealers.iter().any(|s| !s.is_empty());
    if !work_waits && !shared.shutdown.load(Ordering::Acquire) && local.queue.is_empty() {
        std::thread::park();
    }
    shared
        .idle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&i| i != index);
}
