//! The state one run's microthreads share ([`Run`]): ids and live counts, the
//! channel budget, the run's limits and options, how it is being stopped, and the
//! counters of the live view; and what a microthread holds of it (its `LiveSlot`,
//! a guest's `JoinHandle`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use wasmtime::Engine;

use super::blocking::{Member, Members};
use super::completion::{Completion, Identity};
use super::context::RunContext;
use super::counters::{Counters, Observed, RequestOutcome, Tally};
use super::finish::Finish;
use super::limits::RunLimits;
use super::options::{AppData, HostEndpoint, RunOptions};
use super::registry::Registry;
use super::signals::Signals;
use super::view::{MicrothreadInfo, RunStats};
use super::{failures, timers};
use crate::channel::{Budget, TimerEnd};
use crate::deterministic::{Lane, Schedule};
use crate::error::{Failure, FailureKind};
use crate::limits::{Pool, PoolUnits, Quota};
use crate::scheduler::{Scheduler, Seeded, Task};
use crate::sync::Unpoisoned;

/// Why a run is being stopped before its program ended it.
pub(super) enum Stop {
    Cancelled,
    FuelExhausted(Failure),
}

/// The host half of a guest's `join-handle` resource: the microthread's completion,
/// and its member, to cancel it. Dropping it abandons the microthread: nobody can
/// join it any more.
pub struct JoinHandle {
    pub(crate) completion: Arc<Completion>,
    pub(crate) member: Arc<Member>,
    /// The node it runs on, if another node runs it (this is its stand-in).
    pub(crate) node: Option<String>,
}

impl Drop for JoinHandle {
    fn drop(&mut self) {
        self.completion.abandon();
    }
}

/// Why a microthread could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The run's or the runtime's live-microthread limit (the payload) is reached.
    LimitReached(u32),
}

/// The shared state of one run of a program: every microthread of the run holds it.
pub(crate) struct Run {
    pub(crate) options: RunOptions,
    pub(crate) limits: RunLimits,
    pub(super) next_id: AtomicU64,
    /// The run's live microthreads.
    pub(super) live: Quota,
    /// The tasks of its microthreads that have not ended: a microthread gives its
    /// place under the limits back before its task ends (see [`LiveSlot`]).
    pub(super) tasks: AtomicU32,
    pub(super) all_gone: Notify,
    /// The runtime's live microthreads, all runs together (they share its pool).
    pub(super) runtime_live: Arc<Quota>,
    /// The runtime's spare instances (made ahead of need, or waiting to be
    /// dropped), all runs together.
    pub(crate) spare: Arc<Quota>,
    /// The instance pool's core instances and tables, all runs together: each
    /// live microthread holds its program's footprint of them.
    pub(crate) pool: Arc<Pool>,
    /// Whether idle workers do its spawns' work ahead of need: set on the runtime,
    /// and never in a deterministic run.
    pub(crate) ahead_of_need: bool,
    /// Fresh instances made ahead of need for this run's spawns.
    pub(crate) prepared: super::prepared::Shelf,
    pub(super) exit_code: Mutex<Option<i32>>,
    pub(super) stop: Mutex<Option<Stop>>,
    /// An exit or a stop was requested: the supervisor looks.
    pub(super) wake_supervisor: Notify,
    /// Set once the run's microthreads are asked to stop (they see `cancelled`
    /// errors, and a microthread spawned now starts cancelled).
    pub(super) cancelling: AtomicBool,
    /// Set once the run's microthreads are being aborted: stopped wherever they
    /// are, without cleanup (`abort_all`). `cancelling` only asks them to stop.
    pub(super) aborting: AtomicBool,
    pub(super) handle: tokio::runtime::Handle,
    /// Where the microthreads run: the runtime's workers, unless the run is
    /// deterministic (then on its own queue, on its lane).
    pub(super) queue: Queue,
    /// A deterministic run's choices, and the thread it runs on (dropped with the
    /// run, which ends that thread).
    pub(super) schedule: Option<Arc<Schedule>>,
    pub(super) _lane: Option<Lane>,
    /// The runtime's supervisor thread, where the run is watched.
    pub(super) supervisor: tokio::runtime::Handle,
    /// To interrupt, by epoch, microthreads that run without fuel.
    pub(super) engine: Engine,
    pub(super) next_channel_id: AtomicU64,
    pub(crate) members: Members,
    pub(crate) budget: Arc<Budget>,
    /// Fuel consumed by the run's microthreads, when the run has a fuel budget.
    pub(super) fuel_used: AtomicU64,
    /// Channel ends the application handed to the run, until a guest takes them.
    pub(super) host_endpoints: Mutex<HashMap<String, HostEndpoint>>,
    /// The runtime's data for the application's host functions.
    pub(super) runtime_data: Option<AppData>,
    /// The cluster the runtime's node belongs to, if any.
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<crate::cluster::Cluster>,
    /// The run's open sockets, within `RunOptions::max_sockets`.
    pub(crate) sockets: Arc<Quota>,
    /// The runtime's resolver, for the names its sockets use.
    pub(crate) resolver: crate::net::Resolver,
    /// Bytes held for its socket reads under way.
    pub(crate) read_buffers: crate::net::ReadBuffers,
    /// The handles its microthreads hold, all together, within
    /// `RunOptions::max_run_handles`.
    pub(crate) handles: Arc<Quota>,
    /// The run's named endpoints (`weft_guest::register`, `whereis`).
    pub(crate) registry: Registry,
    /// The run's timers (`weft_guest::after`, `tick`), stopped when it ends.
    pub(super) timers: timers::Timers,
    /// Counters of the run (the live count is `live`), which the runtime's tally
    /// also holds.
    pub(super) counters: Arc<Counters>,
    /// The runtime's tally of its runs.
    pub(super) tally: Arc<Tally>,
    /// The signals that end the run (with `interrupt_on_ctrl_c`), listened to from
    /// the run's creation: a signal that comes before the supervisor looks is not lost.
    pub(super) signals: Mutex<Option<Signals>>,
    /// The way to the application's failure handler (see `run/failures.rs`).
    pub(super) failures: failures::Failures,
    pub(super) finish: Finish,
}

/// Where a run's microthreads run.
pub(super) enum Queue {
    /// On the runtime's workers.
    Workers(Arc<Scheduler>),
    /// On the deterministic run's own queue.
    Seeded(Seeded),
}

/// A microthread's place under the live-microthread limits, and its task's in the
/// count the run's end waits for. The place is given back when the microthread
/// has ended ([`LiveSlot::free`], before its joiner learns of its end, so that
/// the joiner may spawn another in its place at once), or with the rest when
/// its task ends, however it ends.
pub(crate) struct LiveSlot {
    run: Arc<Run>,
    counted: bool,
    /// Its program's footprint of the instance pool, until its store holds it (a
    /// stand-in has none: its microthread runs on another node).
    pool: Option<PoolUnits>,
}

impl LiveSlot {
    fn new(run: &Arc<Run>, pool: Option<PoolUnits>) -> LiveSlot {
        run.tasks.fetch_add(1, Ordering::AcqRel);
        LiveSlot {
            run: run.clone(),
            counted: true,
            pool,
        }
    }

    /// Its footprint of the instance pool, for the store its microthread runs in:
    /// the pool's core instances and tables are held as long as the store is.
    pub(crate) fn pool_units(&mut self) -> Option<PoolUnits> {
        self.pool.take()
    }

    /// Its microthread has ended: its place under the limits is free for another.
    /// Its task still finishes (it tells the microthread's joiner and monitors),
    /// and the run's end waits for that.
    pub(crate) fn free(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.run.runtime_live.give_back();
            self.run.live.give_back();
        }
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.free();
        if self.run.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.run.all_gone.notify_waiters();
        }
    }
}

impl Observed for Run {
    fn finished(&self) -> bool {
        self.finish.get().is_some()
    }

    fn microthreads(&self) -> Vec<MicrothreadInfo> {
        self.members.snapshot()
    }

    fn holds(&self) -> (u64, u32, u32) {
        (
            self.budget.buffered(),
            self.budget.open_channels(),
            self.sockets.used(),
        )
    }
}

impl Run {
    /// A run of `options` on the runtime of `context`, with the channel ends
    /// the application handed it; on its own lane if it is deterministic.
    pub(crate) fn new(
        options: RunOptions,
        host_endpoints: HashMap<String, HostEndpoint>,
        limits: RunLimits,
        deterministic: Option<(Lane, Arc<Schedule>)>,
        context: &RunContext,
    ) -> Arc<Run> {
        let (handle, lane, schedule, queue) = match deterministic {
            Some((lane, schedule)) => {
                let queue = Queue::Seeded(Seeded::start(lane.handle(), schedule.clone()));
                (lane.handle().clone(), Some(lane), Some(schedule), queue)
            }
            None => (
                context.io.clone(),
                None,
                None,
                Queue::Workers(context.scheduler.clone()),
            ),
        };
        let supervisor = context.supervisor.clone();
        let sockets = Arc::new(Quota::new(options.max_sockets));
        let failures =
            failures::Failures::start(options.on_failure.as_ref(), options.stderr.clone(), &supervisor);
        let limits_run_handles = limits.run_handles;
        let signals = options.ctrl_c.then(|| {
            let _in_supervisor = supervisor.enter();
            Signals::listen()
        });
        let ahead_of_need = context.ahead_of_need && schedule.is_none();
        let counters = Arc::new(Counters::default());
        let run = Arc::new(Run {
            queue,
            signals: Mutex::new(signals),
            schedule,
            _lane: lane,
            live: Quota::new(limits.max_microthreads),
            budget: Arc::new(Budget::new(limits.max_buffered_bytes, limits.max_channels)),
            options,
            limits,
            next_id: AtomicU64::new(0),
            tasks: AtomicU32::new(0),
            all_gone: Notify::new(),
            runtime_live: context.live.clone(),
            spare: context.spare.clone(),
            pool: context.pool.clone(),
            ahead_of_need,
            prepared: super::prepared::Shelf::default(),
            exit_code: Mutex::new(None),
            stop: Mutex::new(None),
            wake_supervisor: Notify::new(),
            cancelling: AtomicBool::new(false),
            aborting: AtomicBool::new(false),
            handle,
            supervisor,
            engine: context.engine.clone(),
            next_channel_id: AtomicU64::new(1),
            members: Members::default(),
            fuel_used: AtomicU64::new(0),
            host_endpoints: Mutex::new(host_endpoints),
            runtime_data: context.data.clone(),
            #[cfg(feature = "cluster")]
            cluster: context.cluster.clone(),
            counters: counters.clone(),
            tally: context.tally.clone(),
            timers: timers::Timers::default(),
            registry: Registry::default(),
            sockets,
            resolver: context.resolver.clone(),
            read_buffers: crate::net::ReadBuffers::default(),
            failures,
            handles: Arc::new(Quota::new(limits_run_handles)),
            finish: Finish::default(),
        });
        let observed: Arc<dyn Observed> = run.clone();
        context.tally.register(Arc::downgrade(&observed), counters);
        run
    }

    /// Start a microthread's task: on the workers, or on a deterministic run's
    /// queue, where `seeded` wraps it first (to trace its slices).
    pub(crate) fn spawn_microthread<F, S>(&self, task: F, seeded: impl FnOnce(F) -> S) -> Task<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
        S: std::future::Future<Output = F::Output> + Send + 'static,
    {
        match &self.queue {
            Queue::Workers(scheduler) => scheduler.spawn(task),
            Queue::Seeded(queue) => queue.spawn(seeded(task)),
        }
    }

    /// Give `chore` to a worker of the run's with nothing to run (see
    /// [`Scheduler::chore`]); handed back in a deterministic run, or when too many
    /// wait: then the caller does it.
    pub(crate) fn chore(&self, chore: crate::scheduler::Chore) -> Result<(), crate::scheduler::Chore> {
        match &self.queue {
            Queue::Workers(scheduler) => scheduler.chore(chore),
            Queue::Seeded(_) => Err(chore),
        }
    }

    /// The choices of a deterministic run.
    pub(crate) fn schedule(&self) -> Option<&Arc<Schedule>> {
        self.schedule.as_ref()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn next_channel_id(&self) -> u64 {
        self.next_channel_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new microthread's identity.
    pub(crate) fn identify(&self, name: Option<Arc<str>>) -> Identity {
        Identity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name,
        }
    }

    /// Live microthreads of this run.
    pub(crate) fn live(&self) -> u32 {
        self.live.used()
    }

    /// Take a live-microthread slot, within the run's limit and the runtime's.
    /// Whether a microthread could start now (else the maximum in the way); what
    /// [`reserve`](Run::reserve) would find, without taking a slot.
    pub(crate) fn room(&self) -> Result<(), u32> {
        if self.live.used() >= self.live.max() {
            return Err(self.live.max());
        }
        if self.runtime_live.used() >= self.runtime_live.max() {
            return Err(self.runtime_live.max());
        }
        if !self.pool.fits(self.limits.footprint) {
            return Err(self.pool_holds());
        }
        Ok(())
    }

    /// How many microthreads of this program the instance pool holds: the live
    /// limit a spawn refused for want of pool room reports.
    fn pool_holds(&self) -> u32 {
        self.pool
            .holds(self.limits.footprint)
            .min(self.runtime_live.max())
    }

    pub(crate) fn reserve(self: &Arc<Self>) -> Result<LiveSlot, Refused> {
        if !self.live.take() {
            return Err(Refused::LimitReached(self.live.max()));
        }
        if !self.runtime_live.take() {
            self.live.give_back();
            return Err(Refused::LimitReached(self.runtime_live.max()));
        }
        let Some(pool) = self.pool.units(self.limits.footprint) else {
            self.runtime_live.give_back();
            self.live.give_back();
            return Err(Refused::LimitReached(self.pool_holds()));
        };
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        self.counters
            .peak_live
            .fetch_max(self.live.used(), Ordering::Relaxed);
        Ok(LiveSlot::new(self, Some(pool)))
    }

    /// A slot for the stand-in of a microthread spawned on another node: counted
    /// among the live (the live view shows it), never refused (the limits apply
    /// where that microthread runs, which refuses it when full).
    pub(crate) fn reserve_stand_in(self: &Arc<Self>) -> LiveSlot {
        self.live.take_anyway();
        self.runtime_live.take_anyway();
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        self.counters
            .peak_live
            .fetch_max(self.live.used(), Ordering::Relaxed);
        LiveSlot::new(self, None)
    }

    /// Record how to abort microthread `id`'s task; abort it at once if the run is
    /// already being aborted (it may have been spawned while the others were).
    pub(crate) fn set_abort(&self, id: u64, abort: &crate::scheduler::AbortHandle) {
        self.members.set_abort(id, abort);
        if self.aborting.load(Ordering::SeqCst) {
            abort.abort();
        }
    }

    /// Whether the run's microthreads are being aborted (see the field).
    pub(crate) fn is_aborting(&self) -> bool {
        self.aborting.load(Ordering::Acquire)
    }

    /// Some microthread called `exit(code)`: the first code wins, and the program ends.
    pub(crate) fn request_exit(&self, code: i32) {
        self.note_exit(code);
        self.wake_supervisor.notify_one();
    }

    /// Record an exit with `code` (what still runs then gets no cleanup) without
    /// waking the supervisor: for `main`'s own exit, whose task's end wakes it once
    /// the task has finished (and, in a deterministic run, traced its end).
    pub(crate) fn note_exit(&self, code: i32) {
        self.exit_code.locked().get_or_insert(code);
    }

    pub(super) fn request_stop(&self, why: Stop) {
        self.stop.locked().get_or_insert(why);
        self.wake_supervisor.notify_one();
    }

    /// Whether some microthread called `exit`.
    pub(super) fn exit_requested(&self) -> bool {
        self.exit_code.locked().is_some()
    }

    /// Whether the run's fuel budget is spent.
    pub(super) fn fuel_spent(&self) -> bool {
        self.limits
            .fuel_budget
            .is_some_and(|budget| self.fuel_used.load(Ordering::Acquire) > budget)
    }

    /// Cancel the run (its handle, or the runtime going away).
    pub(crate) fn cancel(&self) {
        self.request_stop(Stop::Cancelled);
    }

    /// Charge `units` of fuel to the run's budget, if it has one. Returns false once
    /// the budget is spent: the caller stops, and the run ends with `failure`.
    pub(crate) fn charge_fuel(&self, units: u64, failure: impl FnOnce(u64) -> Failure) -> bool {
        let Some(budget) = self.limits.fuel_budget else {
            return true;
        };
        let used = self
            .fuel_used
            .fetch_add(units, Ordering::AcqRel)
            .saturating_add(units);
        if used <= budget {
            return true;
        }
        self.request_stop(Stop::FuelExhausted(failure(budget)));
        false
    }

    /// Whether the run's microthreads are being cancelled: one spawned now starts
    /// cancelled.
    pub(crate) fn is_cancelling(&self) -> bool {
        self.cancelling.load(Ordering::Acquire)
    }

    /// Whether epoch checks are what stops a busy microthread of this run.
    pub(super) fn by_epoch(&self) -> bool {
        self.limits.fuel_slice.is_none() && self.limits.interruptible
    }

    /// Cancel one microthread and, with it, its structured children: their blocking
    /// calls fail with `cancelled` (so their cleanup runs), a busy one stops at its
    /// next fuel yield (or epoch check). With `enforce`, one that has not finished
    /// a grace period later (the run's `cancel_grace`) is stopped wherever it is.
    pub(crate) fn cancel_member(&self, member: &Arc<Member>, enforce: bool) {
        let grace = enforce.then_some(self.options.cancel_grace);
        self.cancel_member_within(member, grace);
    }

    /// Cancel one microthread and its structured children as
    /// [`cancel_member`](Run::cancel_member) does, stopping those that have not
    /// finished `grace` from now (if given) wherever they are.
    ///
    /// The cancellation stops at a microthread that owns its shutdown (a
    /// supervisor): it stops its children itself, in its order, within the grace;
    /// once that is over, they are stopped with it wherever they are.
    pub(crate) fn cancel_member_within(&self, member: &Arc<Member>, grace: Option<Duration>) {
        let mut todo = vec![member.clone()];
        let mut requested = Vec::new();
        while let Some(m) = todo.pop() {
            if m.cancel.request() {
                m.interrupt();
                if !m.cancel.owns_shutdown() {
                    todo.extend(m.children());
                }
                requested.push(m);
            }
        }
        if requested.is_empty() {
            return;
        }
        if self.by_epoch() {
            // Busy microthreads without fuel see it at their next epoch check.
            self.engine.increment_epoch();
        }
        if let Some(grace) = grace {
            let (engine, by_epoch) = (self.engine.clone(), self.by_epoch());
            // A deterministic run's grace is virtual time, on its own thread: where
            // the cleanup is stopped does not depend on the machine's speed.
            self.timer_thread().spawn(async move {
                tokio::time::sleep(grace).await;
                for m in &requested {
                    m.cancel.grace_over();
                    m.abort();
                    if m.cancel.owns_shutdown() {
                        // What it has not stopped yet goes with it.
                        for d in m.descendants() {
                            d.cancel.grace_over();
                            d.abort();
                        }
                    }
                }
                if by_epoch {
                    engine.increment_epoch();
                }
            });
        }
    }

    /// Where the run's grace periods are timed: on a deterministic run's own
    /// thread, whose clock is virtual; else on the supervisor's.
    pub(super) fn timer_thread(&self) -> &tokio::runtime::Handle {
        if self.schedule.is_some() {
            &self.handle
        } else {
            &self.supervisor
        }
    }

    /// Ask every microthread still running to stop, as [`cancel_member`](Run::cancel_member) does,
    /// without a timer each: the run's end enforces the grace period for all (in
    /// a deterministic run, a timer on its virtual clock does, armed here).
    pub(super) fn cancel_gracefully(self: &Arc<Self>) {
        let first = !self.cancelling.swap(true, Ordering::SeqCst);
        if first && self.schedule.is_some() {
            let (run, grace) = (Arc::downgrade(self), self.options.shutdown_grace);
            self.handle.spawn(async move {
                tokio::time::sleep(grace).await;
                if let Some(run) = run.upgrade() {
                    run.abort_all();
                }
            });
        }
        // Each tree from its root (main, a detached microthread): the cancellation
        // reaches the others through their parents, and stops at a microthread
        // that owns its shutdown, which stops its children in its own order.
        let all = self.members.all();
        let live: HashSet<u64> = all.iter().map(|m| m.me.id).collect();
        for member in all {
            if member.parent.is_none_or(|p| !live.contains(&p)) {
                self.cancel_member(&member, false);
            }
        }
    }

    /// A microthread of a deterministic run has ended (`main`, or another): what
    /// the end of the program sets off (an exit or a spent fuel budget stop the
    /// others; the end of `main` cancels those left) happens here, on the run's own
    /// thread, at the point of the schedule where it was decided, not whenever the
    /// supervisor thread gets to it (which then finds it done).
    pub(crate) fn ended_in_schedule(self: &Arc<Self>, main: bool) {
        if self.schedule.is_none() {
            return;
        }
        if self.exit_requested() || self.fuel_spent() {
            self.abort_all();
        } else if main && !self.is_cancelling() {
            self.cancel_gracefully();
        }
    }

    /// Abort every microthread still running: blocked ones now, busy ones at
    /// their next fuel yield or epoch check. No guest code runs any more.
    pub(crate) fn abort_all(&self) {
        self.cancelling.store(true, Ordering::SeqCst);
        self.aborting.store(true, Ordering::SeqCst);
        self.members.abort_all();
        if self.by_epoch() {
            // Microthreads without fuel never yield: their epoch callback sees that
            // the run is being aborted and traps them.
            self.engine.increment_epoch();
        }
    }

    /// A message sent with its time (one in `channel::LATENCY_SAMPLE`) was
    /// received `latency` after its send.
    pub(crate) fn observe_message_latency(&self, latency: Duration) {
        self.tally.observe_latency(latency);
    }

    /// A microthread has ended (failed with `failed`, or not), having lived `age`,
    /// sent `sent` messages and consumed `fuel` (if metered).
    pub(crate) fn count_end(&self, failed: Option<FailureKind>, age: Duration, sent: u64, fuel: Option<u64>) {
        self.counters.count_end(failed, sent, fuel);
        self.tally.observe_lifetime(age);
    }

    /// The run's counters.
    pub(crate) fn stats(&self) -> RunStats {
        let c = &self.counters;
        RunStats {
            spawned: c.spawned.load(Ordering::Relaxed),
            live: self.live(),
            peak_live: c.peak_live.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            failed: c.failed_total(),
            messages_sent: c.sent_by_ended.load(Ordering::Relaxed) + self.members.sent(),
            deadlock_checks: self.members.deadlock_checks(),
            restarts: c.restarts.load(Ordering::Relaxed),
            spawned_remote: c.spawned_remote.load(Ordering::Relaxed),
            started_for_others: c.started_for_others.load(Ordering::Relaxed),
            started_prepared: c.started_prepared.load(Ordering::Relaxed),
            requests_started: c.requests_started.load(Ordering::Relaxed),
            requests_answered: c.requests(RequestOutcome::Answered),
            requests_failed: c.requests(RequestOutcome::Failed),
            requests_timed_out: c.requests(RequestOutcome::TimedOut),
            requests_refused: c.requests(RequestOutcome::Refused),
        }
    }

    /// A spawned microthread started in an instance made ahead of need.
    pub(crate) fn count_prepared_start(&self) {
        self.counters.started_prepared.fetch_add(1, Ordering::Relaxed);
    }

    /// A microthread of the run was spawned on another node (`remote`), or one
    /// was started here for another node's spawn.
    /// An HTTP request's microthread started.
    pub(crate) fn count_request_start(&self) {
        self.counters.requests_started.fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP request ended so.
    pub(crate) fn count_request(&self, outcome: RequestOutcome) {
        self.counters.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_cluster_spawn(&self, remote: bool) {
        let counter = match remote {
            true => &self.counters.spawned_remote,
            false => &self.counters.started_for_others,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A supervisor of the run restarted a child.
    pub(crate) fn count_restart(&self) {
        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The runtime's data for the application's host functions.
    pub(crate) fn runtime_data(&self) -> Option<&AppData> {
        self.runtime_data.as_ref()
    }

    /// Start a timer that sends an empty message on `end`'s channel after `after`,
    /// then each `every` (at least [`timers::MIN_TICK_PERIOD`]), if given,
    /// dropping a tick while the previous one is unread and skipping the ticks it
    /// missed. It stops when the channel's receivers are gone (at once), or when
    /// the run ends. See `run/timers.rs`.
    pub(crate) fn start_timer(&self, end: TimerEnd, after: Duration, every: Option<Duration>) {
        self.timers.start(&self.handle, end, after, every);
    }

    /// Take the channel end the application handed the run under `name`, if it is
    /// of the kind asked for (a sender or not).
    pub(crate) fn take_endpoint(&self, name: &str, sender: bool) -> Option<HostEndpoint> {
        let mut map = self.host_endpoints.locked();
        let matches = match map.get(name)? {
            HostEndpoint::Sender(..) => sender,
            HostEndpoint::Receiver(..) => !sender,
        };
        if matches { map.remove(name) } else { None }
    }

    /// The channel ends handed to the run that no guest took, taken out of it.
    pub(crate) fn untaken_endpoints(&self) -> HashMap<String, HostEndpoint> {
        std::mem::take(&mut *self.host_endpoints.locked())
    }

    /// A failure nobody else handles (a detached microthread's, not joined): it is
    /// queued for the application's handler ([`RunOptions::on_failure`]), which is
    /// called on the supervisor, never here; or by default it is reported on the
    /// run's stderr (the application's log when that is discarded). The program
    /// carries on. Any thread may call this, in a drop or under a lock.
    pub(crate) fn report_failure(&self, failure: &Failure) {
        self.failures.report(failure, "detached");
    }

    /// The failure of a microthread that handled an HTTP request, which nobody
    /// joins: as a detached one's, said to be a request's.
    pub(crate) fn report_request_failure(&self, failure: &Failure) {
        self.failures.report(failure, "request:");
    }
}
