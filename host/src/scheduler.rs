//! weft's own run queue: the worker threads that run microthreads, and the choice
//! of which ready microthread runs next.
//!
//! - A microthread woken by another one running on the same worker (a rendezvous:
//!   the receiver the sender just completed) goes into that worker's *next* slot
//!   and runs as soon as the waker gives control back, on the same core, with no
//!   trip through a shared queue. A pair handing work to each other keeps the slot
//!   for [`NEXT_RUN`] turns at most, then queues like everyone else, so that the
//!   others on the worker are not starved.
//! - A microthread that wakes itself (a fuel yield, `yield_now`) goes to the back of
//!   its worker's queue.
//! - A microthread woken from elsewhere (a timer, a socket, the application, a
//!   microthread on another worker) goes to the shared injector, which the workers
//!   look at before their own queues.
//! - A worker with nothing to run steals from the others, and parks when there is
//!   nothing to steal. Parked workers are woken only when work waits that their
//!   busy peers will not get to next: a spawn, a wake from elsewhere, a second
//!   entry in a queue. A chain of hand-offs (a ring, a ping-pong) therefore stays
//!   on one worker instead of migrating between cores.
//!
//! The workers enter the runtime's tokio context: timers, sockets and host tasks
//! stay on tokio, whose own thread drives them and wakes microthreads here.
//!
//! A deterministic run has a queue of its own, [`Seeded`]: one task on the run's
//! own thread (its tokio lane, whose clock is paused) runs its microthreads, and
//! the run's schedule picks which ready one runs next, uniformly from the seed.
//! Which microthread runs next is decided in two places only: `work` for the
//! workers, [`Seeded`] for a deterministic run.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use async_task::{Runnable, ScheduleInfo, WithInfo};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use crate::deterministic::Schedule;

/// How many times in a row a worker runs the microthread in its next slot before
/// it queues it behind the others.
const NEXT_RUN: u32 = 32;

/// How many times in a row a worker takes from the injector before it looks at
/// its own queue.
const INJECTED_RUN: u32 = 8;

struct Shared {
    injector: Injector<Runnable>,
    stealers: Vec<Stealer<Runnable>>,
    /// Workers that found nothing to run and park (or are about to).
    idle: Mutex<Vec<usize>>,
    /// Their threads, to unpark them.
    threads: OnceLock<Vec<std::thread::Thread>>,
    shutdown: AtomicBool,
    /// Each worker's next slot is in its thread-local; a wake from another thread
    /// cannot reach it.
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

    fn has_idle(&self) -> bool {
        !self.idle.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
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
    if local.queue.len() > 1 && shared.has_idle() {
        shared.wake_one();
    }
}

/// A microthread woken after its queue stopped: nobody will run it. It is dropped
/// (its future with it), so that the queue and its tasks, which hold each other,
/// are not kept alive; on a thread of its own, since whoever woke it may hold a lock
/// that dropping the future takes (a channel's). Rare: only what was neither
/// aborted nor finished when its runtime or run went away.
fn drop_later(runnable: Runnable) {
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
                if self.shared.has_idle() {
                    self.shared.wake_one();
                }
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
}

/// A task of `future`, scheduled by `schedule`: its first runnable (to queue), and
/// the task to await or abort.
fn task<F>(
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
        let (runnable, task) = task(future, move |r, _| shared.push(r));
        self.shared.push(runnable);
        task
    }
}

impl SeededShared {
    fn push(&self, runnable: Runnable) {
        if self.closed.load(Ordering::Acquire) {
            drop_later(runnable);
            return;
        }
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(runnable);
        // A permit if the queue's task is not waiting now: it does not miss it.
        self.more.notify_one();
    }

    /// The ready microthread the schedule picks, if any is ready.
    fn pick(&self) -> Option<Runnable> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
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
            let queued = std::mem::take(&mut *self.0.ready.lock().unwrap_or_else(|e| e.into_inner()));
            drop(queued);
        }
    }
    let _close = Close(&shared);
    let mut ran = 0u32;
    loop {
        match shared.pick() {
            Some(runnable) => {
                runnable.run();
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

impl Scheduler {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn scheduler(workers: usize) -> (tokio::runtime::Runtime, Scheduler) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s = Scheduler::new(workers, "test-worker", rt.handle().clone()).unwrap();
        (rt, s)
    }

    #[test]
    fn tasks_run_and_give_their_output() {
        let (_rt, s) = scheduler(2);
        let tasks: Vec<_> = (0..100u64).map(|i| s.spawn(async move { i * 2 })).collect();
        let sum: u64 = tasks
            .into_iter()
            .map(|t| futures_block_on(t).expect("finished"))
            .sum();
        assert_eq!(sum, 9900);
    }

    #[test]
    fn timers_of_tokio_wake_tasks_here() {
        let (_rt, s) = scheduler(1);
        let t = s.spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            7
        });
        assert_eq!(futures_block_on(t).ok(), Some(7));
    }

    #[test]
    fn an_aborted_task_gives_none_and_drops_its_future() {
        struct Dropped(Arc<AtomicU64>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (_rt, s) = scheduler(1);
        let drops = Arc::new(AtomicU64::new(0));
        let held = Dropped(drops.clone());
        let t = s.spawn(async move {
            let _held = held;
            std::future::pending::<()>().await
        });
        t.abort_handle().abort();
        assert!(matches!(futures_block_on(t), Err(Ended::Aborted)));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_task_ends_alone() {
        let (_rt, s) = scheduler(1);
        let t = s.spawn(async { panic!("on purpose") });
        assert!(matches!(futures_block_on(t), Err(Ended::Panicked(m)) if m == "on purpose"));
        assert_eq!(futures_block_on(s.spawn(async { 1 })).ok(), Some(1));
    }

    #[test]
    fn a_chain_of_hand_offs_completes_on_two_workers() {
        // A ring of tasks on tokio's channels: each wakes the next.
        let (_rt, s) = scheduler(2);
        let n = 50;
        let (first_tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (tx, next_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let mut my_rx = std::mem::replace(&mut rx, next_rx);
            tasks.push(s.spawn(async move {
                while let Some(v) = my_rx.recv().await {
                    if tx.send(v + 1).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let hops = futures_block_on(s.spawn(async move {
            let mut last = 0;
            for lap in 0..100u64 {
                first_tx.send(lap * n).await.unwrap();
                last = rx.recv().await.unwrap();
            }
            last
        }));
        assert_eq!(hops.ok(), Some(99 * n + n));
    }

    /// The order in which a seeded queue runs ten tasks that are all ready at once.
    fn seeded_order(seed: u64) -> Vec<u32> {
        let (lane, schedule) = crate::deterministic::Lane::start(seed, None).unwrap();
        let queue = Seeded::start(lane.handle(), schedule);
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..10u32)
            .map(|i| {
                let order = order.clone();
                queue.spawn(async move { order.lock().unwrap().push(i) })
            })
            .collect();
        for t in tasks {
            futures_block_on(t).expect("finished");
        }
        let done = order.lock().unwrap();
        done.clone()
    }

    #[test]
    fn a_seeded_queue_picks_by_its_seed() {
        assert_eq!(seeded_order(7), seeded_order(7));
        let orders: std::collections::HashSet<_> = (0..8).map(seeded_order).collect();
        assert!(orders.len() > 1, "eight seeds, one order: {orders:?}");
        assert!(orders.iter().all(|o| o.len() == 10));
    }

    /// Block the test thread on a future (the test is not a worker).
    fn futures_block_on<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}
