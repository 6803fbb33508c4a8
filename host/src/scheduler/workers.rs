//! The worker threads: each with a hand-off (the one microthread it runs next) and
//! a queue, an injector for wakes from elsewhere, stealing when idle, parking when
//! there is nothing to steal; and the chores a worker with nothing to run does
//! before it parks.

use std::cell::Cell;
use std::future::Future;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_task::{Runnable, ScheduleInfo};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use super::task::{Task, contained, drop_later, run_contained, spawn};
use crate::sync::Unpoisoned;

/// How many times in a row a worker runs the microthread in its hand-off before
/// it queues it behind the others.
const NEXT_RUN: u32 = 32;

/// How many times in a row a worker takes from the injector before it looks at
/// its own queue.
const INJECTED_RUN: u32 = 8;

/// How long an idle worker watches a busy worker's hand-off before it takes what
/// waits there: long enough for a hand-off (the waker blocks at once and its worker
/// runs the woken one next, on the same core), short beside a slice.
const NEXT_PATIENCE: Duration = Duration::from_micros(20);

/// How many chores may wait for an idle worker (see [`Scheduler::chore`]): past
/// that, whoever has one does it at once.
const CHORES_WAITING: usize = 32;

/// Work that needs no microthread and no particular time: a worker with nothing
/// to run does it before it parks (see [`Scheduler::chore`]).
pub(crate) type Chore = Box<dyn FnOnce() + Send>;

/// A worker's hand-off. Its worker fills and empties it; an idle worker may take
/// what it holds when the worker stays busy in one microthread (see
/// [`steal_next`]).
#[repr(align(128))]
struct Handoff {
    /// A `Runnable` (from `Runnable::into_raw`), or null.
    next: AtomicPtr<()>,
    /// How many microthreads the worker has started running: unchanged while it
    /// is busy in one.
    runs: AtomicU64,
    /// Nanoseconds the worker has spent idle (parked, or about to), since the
    /// scheduler started, not counting an idle spell under way.
    idle_ns: AtomicU64,
    /// When the idle spell under way began (nanoseconds since the scheduler
    /// started, plus one); 0 when the worker is not idle.
    idle_since: AtomicU64,
}

impl Handoff {
    fn new() -> Handoff {
        Handoff {
            next: AtomicPtr::new(std::ptr::null_mut()),
            runs: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
        }
    }

    /// Put `runnable` in the hand-off; what it held before, if anything.
    fn put(&self, runnable: Runnable) -> Option<Runnable> {
        let raw = runnable.into_raw().as_ptr();
        from_raw(self.next.swap(raw, Ordering::SeqCst))
    }

    fn take(&self) -> Option<Runnable> {
        if self.is_empty() {
            return None;
        }
        from_raw(self.next.swap(std::ptr::null_mut(), Ordering::SeqCst))
    }

    fn is_empty(&self) -> bool {
        self.next.load(Ordering::SeqCst).is_null()
    }
}

fn from_raw(raw: *mut ()) -> Option<Runnable> {
    // SAFETY: a hand-off holds null or a pointer from `Runnable::into_raw` (`put`),
    // and each swap that takes it out hands it to one caller only.
    NonNull::new(raw).map(|p| unsafe { Runnable::from_raw(p) })
}

/// What the workers share: the injector, a stealer of each queue, each worker's
/// hand-off, who is parked.
struct Shared {
    injector: Injector<Runnable>,
    stealers: Vec<Stealer<Runnable>>,
    handoffs: Vec<Handoff>,
    /// Workers looking for work (not parked, not running anything): while one
    /// is, filling a hand-off wakes no one.
    searching: AtomicUsize,
    /// Workers that found nothing to run and park (or are about to).
    idle: Mutex<Vec<usize>>,
    /// Their threads, to unpark them.
    threads: OnceLock<Vec<std::thread::Thread>>,
    shutdown: AtomicBool,
    /// A program holds a worker to block in place (`Scheduler::hold_a_worker`).
    held: AtomicBool,
    /// Tells this scheduler's workers from another runtime's: a worker's
    /// thread-local names its scheduler by it.
    id: usize,
    /// Chores for an idle worker, and how many wait (at most [`CHORES_WAITING`]).
    chores: Injector<Chore>,
    chores_waiting: AtomicUsize,
    /// When the scheduler started: the workers' busy time counts from then.
    started: std::time::Instant,
}

impl Shared {
    /// Wake a parked worker, if one is parked.
    fn wake_one(&self) {
        let index = self.idle.locked().pop();
        if let (Some(i), Some(threads)) = (index, self.threads.get()) {
            threads[i].unpark();
        }
    }

    /// A waiting chore, if any.
    fn next_chore(&self) -> Option<Chore> {
        loop {
            match self.chores.steal() {
                Steal::Success(chore) => {
                    self.chores_waiting.fetch_sub(1, Ordering::SeqCst);
                    return Some(chore);
                }
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// Drop the chores nobody will do (the workers are stopping): dropping one
    /// is what most of them are for anyway.
    fn drop_chores(&self) {
        while let Some(chore) = self.next_chore() {
            contained(|| drop(chore));
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
    index: usize,
    queue: Worker<Runnable>,
}

thread_local! {
    /// The worker this thread is: set by `work` for as long as its `Local` lives
    /// (a [`Registered`] guard clears it, on unwind too).
    static LOCAL: Cell<*const Local> = const { Cell::new(std::ptr::null()) };
}

/// Names this thread's `Local` in [`LOCAL`] while it lives: created after the
/// `Local` and dropped before it, whether `work` returns or unwinds, so that a
/// wake during the `Local`'s own drop finds no worker here and goes to the
/// injector.
struct Registered;

impl Registered {
    fn new(local: &Local) -> Registered {
        LOCAL.with(|l| l.set(local));
        Registered
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        LOCAL.with(|l| l.set(std::ptr::null()));
    }
}

/// Call `f` with this thread's worker, if it is one of `shared`'s. The reference
/// cannot leave `f`.
fn with_local<R>(shared: &Shared, f: impl FnOnce(Option<&Local>) -> R) -> R {
    let local = LOCAL.with(Cell::get);
    // SAFETY: `LOCAL` is non-null only while a `Registered` guard lives, which
    // `work` creates after its `Local` and drops before it (also on unwind); only
    // this thread reads it, and the reference does not outlive this call, which
    // runs on this thread inside `work`'s frame.
    let local = unsafe { local.as_ref() }.filter(|l| l.scheduler == shared.id);
    f(local)
}

/// Put `runnable` where it will run next, by who woke it (see the module docs).
fn schedule(shared: &Arc<Shared>, runnable: Runnable, info: ScheduleInfo) {
    if shared.shutdown.load(Ordering::Acquire) {
        drop_later(runnable);
        return;
    }
    place(shared, runnable, info.woken_while_running);
}

/// Put `runnable`, woken (or spawned) by whoever runs on this thread, where it
/// will run next: from a worker, in its hand-off (or its queue, if it woke
/// itself); from elsewhere, in the injector.
fn place(shared: &Shared, runnable: Runnable, woke_itself: bool) {
    with_local(shared, |local| {
        let Some(local) = local else {
            shared.injector.push(runnable);
            shared.wake_one();
            return;
        };
        if woke_itself {
            local.queue.push(runnable);
        } else if let Some(displaced) = shared.handoffs[local.index].put(runnable) {
            local.queue.push(displaced);
        } else {
            // The hand-off was empty. The waker usually blocks at once and this worker
            // runs the woken one next; should the waker stay busy instead, an idle
            // worker takes it from the hand-off (`steal_next`): wake one, unless one is
            // already looking for work.
            if shared.searching.load(Ordering::SeqCst) == 0 {
                shared.wake_one();
            }
            return;
        }
        // Work waits behind what this worker runs next: a parked worker may take it.
        if local.queue.len() > 1 {
            shared.wake_one();
        }
    });
}

/// The worker threads and their queues. Dropping it stops the workers; the
/// microthreads still queued are dropped with it.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// One worker thread of a runtime: what it has done, and what waits for it
/// (from [`Metrics::workers`](crate::metrics::Metrics::workers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Time it was not idle (running microthreads and chores, looking for work)
    /// since the runtime started.
    pub busy: std::time::Duration,
    /// Microthread runs it made (each up to the microthread's next block, yield or
    /// fuel yield).
    pub runs: u64,
    /// Microthreads waiting in its queue now (and in its hand-off).
    pub queued: usize,
}

impl Scheduler {
    /// What each worker has done, and what waits for it now; the microthreads
    /// woken from elsewhere that no worker has taken yet are [`injected`](Scheduler::injected).
    pub(crate) fn loads(&self) -> Vec<WorkerStats> {
        let shared = &self.shared;
        let now = shared.started.elapsed().as_nanos() as u64;
        shared
            .handoffs
            .iter()
            .zip(&shared.stealers)
            .map(|(handoff, queue)| {
                let since = handoff.idle_since.load(Ordering::Relaxed);
                let idle_now = if since == 0 {
                    0
                } else {
                    now.saturating_sub(since - 1)
                };
                let idle = handoff.idle_ns.load(Ordering::Relaxed) + idle_now;
                WorkerStats {
                    busy: std::time::Duration::from_nanos(now.saturating_sub(idle)),
                    runs: handoff.runs.load(Ordering::Relaxed),
                    queued: queue.len() + usize::from(!handoff.is_empty()),
                }
            })
            .collect()
    }

    /// Microthreads woken from elsewhere (timers, sockets, the application,
    /// another worker) that no worker has taken yet.
    pub(crate) fn injected(&self) -> usize {
        self.shared.injector.len()
    }

    /// Start `workers` threads named `name-N`, each in `tokio`'s context.
    pub(crate) fn new(workers: usize, name: &str, tokio: tokio::runtime::Handle) -> std::io::Result<Self> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let queues: Vec<Worker<Runnable>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: queues.iter().map(Worker::stealer).collect(),
            handoffs: (0..workers).map(|_| Handoff::new()).collect(),
            searching: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            threads: OnceLock::new(),
            shutdown: AtomicBool::new(false),
            held: AtomicBool::new(false),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            chores: Injector::new(),
            chores_waiting: AtomicUsize::new(0),
            started: std::time::Instant::now(),
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
        // A new microthread runs next on its spawner's worker, as a woken one
        // does: a spawner that joins it at once (a call in a fresh microthread)
        // keeps the pair on one core. Spawned in a row, the earlier ones queue,
        // and an idle worker takes them; one whose spawner stays busy, an idle
        // worker takes from the hand-off.
        let first = |runnable| place(&self.shared, runnable, false);
        let task = spawn(future, move |r, info| schedule(&shared, r, info), first);
        if self.shared.shutdown.load(Ordering::Acquire) {
            // Nobody will run it: dropped, its `Task` resolves as aborted.
            self.drop_injected();
        }
        task
    }

    /// Give `chore` to a worker with nothing to run, which does it before it parks
    /// (a parked worker is woken for the first of those waiting, unless one is
    /// looking for work already).
    /// Refused, and handed back, when [`CHORES_WAITING`] chores wait already or
    /// the workers are stopping: then the caller does it.
    pub(crate) fn chore(&self, chore: Chore) -> Result<(), Chore> {
        let shared = &self.shared;
        if shared.shutdown.load(Ordering::Acquire) {
            return Err(chore);
        }
        let waiting = shared.chores_waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= CHORES_WAITING {
            shared.chores_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(chore);
        }
        shared.chores.push(chore);
        // A worker that does one does all that wait: wake one for the first only.
        if waiting == 0 && shared.searching.load(Ordering::SeqCst) == 0 {
            shared.wake_one();
        }
        Ok(())
    }

    /// Let one program block the worker that runs it (a program that cannot spawn
    /// doing its file I/O in place rather than on tokio's blocking threads), while
    /// the hold lives: granted to one holder at a time, and only when another
    /// worker remains for every other run, so that such programs never stop the
    /// runtime. `None`: do the I/O off the workers.
    pub(crate) fn hold_a_worker(&self) -> Option<WorkerHold> {
        let granted = self.shared.stealers.len() >= 2
            && self
                .shared
                .held
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        granted.then(|| WorkerHold(self.shared.clone()))
    }

    /// Stop the workers once they are done with what they run now, waiting at most
    /// `grace` for them (not at all from one of them): a worker busy in a guest
    /// that never yields is left behind. What is still queued is dropped.
    pub(crate) fn shutdown(&self, grace: std::time::Duration) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all();
        if !with_local(&self.shared, |local| local.is_some()) {
            let deadline = std::time::Instant::now() + grace;
            while self.threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        self.drop_injected();
    }

    /// Drop what waits in the injector (the workers are stopping or gone), and in
    /// the hand-offs of workers that did not stop.
    fn drop_injected(&self) {
        contained(|| while !self.shared.injector.steal().is_empty() {});
        for handoff in &self.shared.handoffs {
            contained(|| drop(handoff.take()));
        }
        // What a chore holds may hold this scheduler (a store holds its run): not
        // dropped, they would keep each other.
        self.shared.drop_chores();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_all();
        self.drop_injected();
    }
}

/// A program's permission to block the worker it runs on
/// ([`Scheduler::hold_a_worker`]); given back when dropped.
pub(crate) struct WorkerHold(Arc<Shared>);

impl Drop for WorkerHold {
    fn drop(&mut self) {
        self.0.held.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for WorkerHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerHold")
    }
}

/// One worker's loop: run what is next, else what is injected, queued or stolen;
/// park when there is nothing.
fn work(shared: &Arc<Shared>, index: usize, queue: Worker<Runnable>) {
    let local = Local {
        scheduler: shared.id,
        index,
        queue,
    };
    let local = &local;
    // Dropped before `local`, even should this unwind.
    let _registered = Registered::new(local);
    let handoff = &shared.handoffs[index];
    let mut next_run = 0u32;
    let mut injected_run = 0u32;
    loop {
        if shared.shutdown.load(Ordering::Acquire) {
            break;
        }
        let found = match handoff.take() {
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
        let found = match found {
            Some(r) => Some(r),
            None => {
                // Nothing to run: a chore, then look again.
                if let Some(chore) = shared.next_chore() {
                    contained(chore);
                    continue;
                }
                let since = shared.started.elapsed().as_nanos() as u64;
                handoff.idle_since.store(since + 1, Ordering::Relaxed);
                let found = park(shared, index, local);
                let idle = (shared.started.elapsed().as_nanos() as u64).saturating_sub(since);
                handoff.idle_ns.fetch_add(idle, Ordering::Relaxed);
                handoff.idle_since.store(0, Ordering::Relaxed);
                found
            }
        };
        if let Some(runnable) = found {
            handoff.runs.fetch_add(1, Ordering::Relaxed);
            // A panic here (not in a microthread's poll or drop, which its task
            // catches) is a bug: reported, and the worker carries on.
            run_contained(runnable);
        }
    }
    // Dropped here, on the worker: the futures they hold may need its context.
    contained(|| drop(handoff.take()));
    contained(|| while local.queue.pop().is_some() {});
    shared.drop_chores();
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

/// Take work from the injector or another worker: their queues, else what waits
/// in the hand-off of a worker that stays busy.
fn steal(shared: &Shared, index: usize, local: &Local) -> Option<Runnable> {
    shared.searching.fetch_add(1, Ordering::SeqCst);
    let found = steal_queued(shared, index, local).or_else(|| steal_next(shared, index));
    shared.searching.fetch_sub(1, Ordering::SeqCst);
    found
}

fn steal_queued(shared: &Shared, index: usize, local: &Local) -> Option<Runnable> {
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

/// Take a microthread that waits in another worker's hand-off while that worker
/// stays busy in the one that woke it: look, wait [`NEXT_PATIENCE`], and take it
/// if that worker has started nothing since (a hand-off's waker blocks at once,
/// and the pair stays on its worker).
fn steal_next(shared: &Shared, index: usize) -> Option<Runnable> {
    let waiting: Vec<(usize, u64)> = (0..shared.handoffs.len())
        .filter(|&j| j != index && !shared.handoffs[j].is_empty())
        .map(|j| (j, shared.handoffs[j].runs.load(Ordering::Relaxed)))
        .collect();
    if waiting.is_empty() {
        return None;
    }
    // A sleep, not a park: a wake meant for this worker is not used up here.
    std::thread::sleep(NEXT_PATIENCE);
    waiting.into_iter().find_map(|(j, runs)| {
        let handoff = &shared.handoffs[j];
        if handoff.runs.load(Ordering::Relaxed) == runs {
            handoff.take()
        } else {
            None
        }
    })
}

/// Nothing to run: say so, look once more (a wake between the look and the
/// saying would otherwise be missed), then park until woken. What the last look
/// found in another worker's hand-off, if anything, is returned to run.
fn park(shared: &Shared, index: usize, local: &Local) -> Option<Runnable> {
    shared.idle.locked().push(index);
    let work_waits = !shared.injector.is_empty()
        || shared.stealers.iter().any(|s| !s.is_empty())
        || !shared.chores.is_empty();
    let mut found = None;
    if !work_waits && !shared.shutdown.load(Ordering::Acquire) && local.queue.is_empty() {
        // A hand-off filled while this worker was searching woke no one: look now
        // that it is no longer searching (whoever fills one later wakes it).
        found = steal_next(shared, index);
        if found.is_none() {
            std::thread::park();
        }
    }
    shared.idle.locked().retain(|&i| i != index);
    found
}
