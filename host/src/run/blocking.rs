//! What the run knows of its live microthreads: who each is, what it waits on while
//! blocked, and how to stop it; from that, the deadlock detector.
//!
//! Blocking touches only the blocked microthread's own [`Member`] and two counters,
//! so the channel hot path shares no lock with other microthreads. The detector
//! looks every grace period instead of being told at every blocking call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::scheduler::AbortHandle;
use crate::sync::{Pruned, Unpoisoned};

use super::atomic::Atomic;
use super::cancel::Cancel;
use super::completion::{Completion, Identity};
use super::monitors::{self, Monitors};
use super::view::{MicrothreadInfo, MicrothreadState};
use crate::channel::{Channel, MonitorEnd, Progress, Waiter};
use crate::error::Failure;

/// How long "every microthread blocked, nothing happening" must last before it is
/// called a deadlock: a wake-up already on its way completes well within it.
const DEADLOCK_GRACE: Duration = Duration::from_millis(100);

/// What a blocked microthread waits on.
pub(crate) enum BlockedOn {
    Recv(Arc<Channel>),
    Send(Arc<Channel>),
    Select(Vec<Arc<Channel>>),
    Join(u64),
    Child(u64),
    /// Asleep until then.
    Sleep(Instant),
    /// On a socket: what it waits for, in words.
    Socket(String),
    /// A stand-in: the microthread runs on that node of the cluster.
    Remote(String),
    /// A node's run without `main`: waiting for spawns from the cluster.
    Serving,
}

impl BlockedOn {
    /// The application holds an end of a channel waited on, and may still end the
    /// wait: no deadlock.
    fn host_can_wake(&self) -> bool {
        match self {
            BlockedOn::Recv(c) => c.host_holds(true),
            BlockedOn::Send(c) => c.host_holds(false),
            BlockedOn::Select(cs) => cs.iter().any(|c| c.host_holds(true) || c.host_holds(false)),
            BlockedOn::Join(_) | BlockedOn::Child(_) | BlockedOn::Sleep(_) => false,
            // Counted as a wait with a timeout: the network may end it.
            BlockedOn::Socket(_) => false,
            // Another node, or the cluster, ends these: waits with a timeout.
            BlockedOn::Remote(_) | BlockedOn::Serving => false,
        }
    }
}

impl std::fmt::Display for BlockedOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockedOn::Recv(c) => write!(f, "receiving on channel {}", c.id()),
            BlockedOn::Send(c) => write!(f, "sending on channel {}", c.id()),
            BlockedOn::Select(cs) => {
                let cs: Vec<String> = cs.iter().map(|c| c.id().to_string()).collect();
                write!(f, "select over channels {}", cs.join(", "))
            }
            BlockedOn::Join(m) => write!(f, "joining microthread {m}"),
            BlockedOn::Child(m) => write!(f, "waiting for its child microthread {m} to finish"),
            BlockedOn::Sleep(until) => {
                let left = until.saturating_duration_since(Instant::now());
                write!(f, "sleeping ({left:?} left)")
            }
            BlockedOn::Socket(what) => f.write_str(what),
            BlockedOn::Remote(node) => write!(f, "running on node {node}"),
            BlockedOn::Serving => f.write_str("serving spawns from the cluster"),
        }
    }
}

/// Tells whether what a blocked microthread waits for has happened already (its
/// task just has not run yet): such a microthread does not count as blocked.
pub(crate) enum Probe {
    Waiter(Arc<Waiter>),
    Completion(Arc<Completion>),
    /// A wait that ends by itself (a sleep), and watches for a cancellation itself.
    Nothing,
}

impl Probe {
    fn is_woken(&self) -> bool {
        match self {
            Probe::Waiter(w) => w.is_complete(),
            Probe::Completion(c) => c.is_finished(),
            Probe::Nothing => false,
        }
    }

    /// End the wait (the waiting microthread is cancelled): a channel wait ends
    /// with `Interrupted`; a join's waiters are woken to see the cancellation.
    fn interrupt(&self) {
        match self {
            Probe::Waiter(w) => w.interrupt(),
            Probe::Completion(c) => c.wake_waiters(),
            Probe::Nothing => {}
        }
    }
}

/// One blocking call of a microthread: what it waits on, how a cancellation
/// interrupts it, and whether the deadlock detector counts it (a wait with a
/// timeout ends by itself).
struct Block {
    what: BlockedOn,
    probe: Probe,
    counted: bool,
}

/// What the run knows of one live microthread.
pub(crate) struct Member {
    pub(crate) me: Identity,
    /// Its parent's id (none for `main` and detached microthreads).
    pub(crate) parent: Option<u64>,
    /// When it was spawned.
    born: Instant,
    /// Its call is being polled: its code runs on a worker now.
    pub(crate) running: AtomicBool,
    /// Fuel it has consumed, as of its last host call or fuel yield (`u64::MAX`:
    /// not metered).
    pub(crate) fuel: AtomicU64,
    /// Messages it has sent (counted by itself only: no sharing).
    pub(crate) sent: AtomicU64,
    waiting: Mutex<Option<Block>>,
    abort: OnceLock<AbortHandle>,
    /// Its cancellation.
    pub(crate) cancel: Cancel,
    /// Its atomic sections.
    pub(crate) atomic: Atomic,
    /// Its structured children, cancelled with it.
    children: Mutex<Pruned<Vec<Weak<Member>>>>,
    /// Why it fails however its code ends: a child of it failed and nobody could
    /// join the child any more.
    doom: OnceLock<Failure>,
    /// Who watches it: each gets a `Down` when it ends.
    pub(crate) monitors: Monitors,
}

impl Member {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Option<Block>> {
        self.waiting.locked()
    }

    /// Its cancellation was asked for: end the channel wait or the join it is in, if
    /// any.
    pub(crate) fn interrupt(&self) {
        if let Some(wait) = self.waiting().as_ref() {
            wait.probe.interrupt();
        }
    }

    /// Enter a structured child, to be cancelled with this microthread.
    pub(crate) fn adopt(&self, child: &Arc<Member>) {
        let mut children = self.children.locked();
        children
            .make_room(32, |c| c.strong_count() > 0)
            .push(Arc::downgrade(child));
    }

    /// What it is doing now.
    /// How long it has lived.
    pub(crate) fn age(&self) -> Duration {
        self.born.elapsed()
    }

    pub(crate) fn info(&self) -> MicrothreadInfo {
        let state = match self.waiting().as_ref() {
            Some(w) => match &w.what {
                BlockedOn::Recv(c) => MicrothreadState::Receiving { channel: c.id() },
                BlockedOn::Send(c) => MicrothreadState::Sending { channel: c.id() },
                BlockedOn::Select(cs) => MicrothreadState::Selecting {
                    channels: cs.iter().map(|c| c.id()).collect(),
                },
                BlockedOn::Join(id) => MicrothreadState::Joining { id: *id },
                BlockedOn::Child(id) => MicrothreadState::AwaitingChild { id: *id },
                BlockedOn::Sleep(until) => MicrothreadState::Sleeping { until: *until },
                BlockedOn::Socket(what) => MicrothreadState::Socket { what: what.clone() },
                BlockedOn::Remote(node) => MicrothreadState::Remote { node: node.clone() },
                BlockedOn::Serving => MicrothreadState::Serving,
            },
            None if self.running.load(Ordering::Relaxed) => MicrothreadState::Running,
            None => MicrothreadState::Ready,
        };
        let fuel = self.fuel.load(Ordering::Relaxed);
        MicrothreadInfo {
            id: self.me.id,
            name: self.me.name.as_deref().map(str::to_owned),
            parent: self.parent,
            state,
            fuel: (fuel != u64::MAX).then_some(fuel),
            age: self.born.elapsed(),
            messages_sent: self.sent.load(Ordering::Relaxed),
        }
    }

    /// Its children still alive.
    pub(crate) fn children(&self) -> Vec<Arc<Member>> {
        let children = self.children.locked();
        children.list().iter().filter_map(Weak::upgrade).collect()
    }

    /// Its children, theirs, and so on, still alive.
    pub(crate) fn descendants(&self) -> Vec<Arc<Member>> {
        let mut all = self.children();
        let mut i = 0;
        while i < all.len() {
            let more = all[i].children();
            all.extend(more);
            i += 1;
        }
        all
    }

    /// Set why it fails; false if it was doomed already.
    pub(crate) fn doom(&self, failure: Failure) -> bool {
        self.doom.set(failure).is_ok()
    }

    pub(crate) fn doomed(&self) -> Option<&Failure> {
        self.doom.get()
    }

    /// Abort its task: it stops at its next host call or fuel yield (its fiber
    /// unwinds when its future is dropped).
    pub(crate) fn abort(&self) {
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }
}

/// Marks a microthread as blocked while it lives.
pub(crate) struct Blocked<'a> {
    members: &'a Members,
    member: &'a Member,
    counted: bool,
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        tracing::trace!(target: "weft::microthread", id = self.member.me.id, "wake");
        *self.member.waiting() = None;
        if self.counted {
            self.members.blocked.fetch_sub(1, Ordering::AcqRel);
        }
        self.members.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// A value alone on its cache line (128 bytes: two lines, for the adjacent-line
/// prefetcher).
#[derive(Default)]
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The live microthreads of a run.
#[derive(Default)]
pub(crate) struct Members {
    /// Every live microthread, by id. Touched at spawn and exit only.
    map: Mutex<HashMap<u64, Arc<Member>>>,
    /// How many members are blocked with no timeout (a cheap first check for the
    /// deadlock detector, which looks at `map` only when it matches the live count).
    /// Written at every blocking call, from every worker: on a cache line of its
    /// own, so that it does not slow down reading the run's other fields.
    blocked: CacheLine<AtomicU32>,
    /// Counts completed waits, so that "everybody blocked" can be told from "a
    /// wake-up is on its way".
    progress: Progress,
    /// Checks the deadlock detector has completed (see [`Members::deadlocked`]).
    checks: AtomicU64,
}

impl Members {
    /// Checks the deadlock detector has completed over the run so far.
    pub(crate) fn deadlock_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Member>>> {
        self.map.locked()
    }

    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Enter a new microthread.
    pub(crate) fn insert(&self, me: Identity, parent: Option<u64>) -> Arc<Member> {
        let member = Members::unlisted(me, parent);
        self.map().insert(member.me.id, member.clone());
        member
    }

    /// A member that is not one of the run's: what an instance made ahead of need
    /// holds until a microthread takes it.
    pub(crate) fn unlisted(me: Identity, parent: Option<u64>) -> Arc<Member> {
        Arc::new(Member {
            me,
            parent,
            born: Instant::now(),
            running: AtomicBool::new(false),
            fuel: AtomicU64::new(u64::MAX),
            sent: AtomicU64::new(0),
            waiting: Mutex::new(None),
            abort: OnceLock::new(),
            cancel: Cancel::default(),
            atomic: Atomic::default(),
            children: Mutex::default(),
            doom: OnceLock::new(),
            monitors: Monitors::default(),
        })
    }

    /// Watch microthread `id` through `end`: its `Down` comes when it ends, or at
    /// once (`NoSuch`) if it is not live.
    pub(crate) fn monitor(&self, id: u64, end: MonitorEnd) {
        let member = self.map().get(&id).cloned();
        let refused = match member {
            Some(member) => member.monitors.watch(end).err(),
            None => Some(end),
        };
        if let Some(end) = refused {
            monitors::no_such(end, id);
        }
    }

    /// Microthread `id`, if it is live.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Member>> {
        self.map().get(&id).cloned()
    }

    /// Take a microthread out; returns it.
    pub(crate) fn remove(&self, id: u64) -> Option<Arc<Member>> {
        self.map().remove(&id)
    }

    /// What every live microthread is doing now, in order of id.
    pub(crate) fn snapshot(&self) -> Vec<MicrothreadInfo> {
        let members: Vec<Arc<Member>> = self.map().values().cloned().collect();
        let mut infos: Vec<MicrothreadInfo> = members.iter().map(|m| m.info()).collect();
        infos.sort_by_key(|i| i.id);
        infos
    }

    /// Messages sent by the live microthreads.
    pub(crate) fn sent(&self) -> u64 {
        self.map().values().map(|m| m.sent.load(Ordering::Relaxed)).sum()
    }

    /// Mark `member` as blocked, on what `what` says, until the guard is dropped:
    /// counted by the deadlock detector unless the wait has a `timeout`. A member
    /// whose cancellation was asked for has its channel wait interrupted at once
    /// (checked after the wait is recorded, so that a cancellation that comes
    /// meanwhile either sees the wait or is seen here).
    pub(crate) fn block<'a>(
        &'a self,
        member: &'a Member,
        what: BlockedOn,
        probe: Probe,
        timeout: bool,
    ) -> Blocked<'a> {
        let counted = !timeout;
        tracing::trace!(target: "weft::microthread", id = member.me.id, waiting = %what, "block");
        {
            let mut waiting = member.waiting();
            if member.cancel.interrupts() {
                probe.interrupt();
            }
            *waiting = Some(Block { what, probe, counted });
        }
        if counted {
            self.blocked.fetch_add(1, Ordering::AcqRel);
        }
        Blocked {
            members: self,
            member,
            counted,
        }
    }

    /// Record how to abort microthread `id`'s task. Returns false if it is no longer
    /// a member (it ended already). Done under the map's lock, which `abort_all`
    /// holds while it aborts: either it sees the handle, or the caller sees that the
    /// run is being cancelled.
    pub(crate) fn set_abort(&self, id: u64, abort: &AbortHandle) -> bool {
        match self.map().get(&id) {
            Some(member) => {
                let _ = member.abort.set(abort.clone());
                true
            }
            None => false,
        }
    }

    /// Abort every member's task: each stops at its next host call or fuel yield
    /// (its fiber unwinds when its future is dropped).
    pub(crate) fn abort_all(&self) {
        for member in self.map().values() {
            member.abort();
        }
    }

    /// Every live member, in the order they were spawned (by id): a parent comes
    /// before its children, so a run that cancels them in this order cancels a
    /// supervisor before it sees its children end and restarts them.
    pub(crate) fn all(&self) -> Vec<Arc<Member>> {
        let mut all: Vec<Arc<Member>> = self.map().values().cloned().collect();
        all.sort_unstable_by_key(|m| m.me.id);
        all
    }

    /// Every one of the `live` microthreads waits, and none of them has a wake-up on
    /// its way. The count is compared first: the members are looked at only when it
    /// matches.
    fn all_blocked(&self, live: u32) -> bool {
        if live == 0 || self.blocked.load(Ordering::Acquire) < live {
            return false;
        }
        let map = self.map();
        let stuck = map
            .values()
            .filter(|m| {
                m.waiting()
                    .as_ref()
                    .is_some_and(|w| w.counted && !w.probe.is_woken() && !w.what.host_can_wake())
            })
            .count();
        !map.is_empty() && stuck >= map.len()
    }

    /// Who waits on what, a line per blocked member, in order of id.
    fn report(&self) -> String {
        let members: Vec<Arc<Member>> = self.map().values().cloned().collect();
        let mut lines: Vec<(u64, String)> = members
            .iter()
            .filter_map(|m| {
                let waiting = m.waiting();
                let wait = waiting.as_ref()?;
                Some((m.me.id, format!("{}: {}", m.me, wait.what)))
            })
            .collect();
        lines.sort();
        let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        lines.join("\n")
    }

    /// Resolves, with the report, once every live microthread (`live` counts them)
    /// has been blocked for a grace period during which nothing completed.
    pub(crate) async fn deadlocked(&self, live: impl Fn() -> u32) -> String {
        loop {
            tokio::time::sleep(DEADLOCK_GRACE).await;
            if self.all_blocked(live()) {
                let before = self.progress.load(Ordering::Relaxed);
                tokio::time::sleep(DEADLOCK_GRACE).await;
                if self.all_blocked(live()) && self.progress.load(Ordering::Relaxed) == before {
                    return self.report();
                }
            }
            self.checks.fetch_add(1, Ordering::Relaxed);
        }
    }
}
