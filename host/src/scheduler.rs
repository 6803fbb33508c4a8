//! The scheduler: tokio runs each microthread as a task driving its `call_async`
//! future; a host call that blocks returns `Pending` and suspends exactly that fiber,
//! and a fuel slice running out yields it. This module owns one run of a program:
//! ids, the live-microthread count, spawning, the program's exit, and cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use wasmtime::Engine;
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::bindings::thread::SpawnError;
use crate::channel::{Message, Progress};
use crate::error::Failure;
use crate::microthread::{self, Completion, Ending, Identity, Start};
use crate::program::Program;
use crate::runtime::RunOptions;

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// `main` returned (code 0), returned an error (code 1), or some microthread
    /// called `exit(code)`.
    Exited(i32),
    /// `main` failed: it trapped or panicked, or a child failure reached it.
    Failed(Failure),
    /// The program was interrupted (Ctrl-C) and cancelled.
    Interrupted,
    /// Every live microthread was blocked on a channel or a join that nothing could
    /// ever complete: the program was stopped. The report has one line per
    /// microthread: who it is and what it waits on.
    Deadlocked(String),
}

impl ExitStatus {
    /// The process exit code a command-line runner should use: the guest's code;
    /// 134 for a failure (what `wasmtime run` gives a trap); 130 for an interrupt;
    /// 70 (`EX_SOFTWARE`) for a deadlock.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(code) => *code,
            ExitStatus::Failed(_) => 134,
            ExitStatus::Interrupted => 130,
            ExitStatus::Deadlocked(_) => 70,
        }
    }

    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }
}

/// The shared state of one run of a program: every microthread of the run holds it.
pub(crate) struct ProgramRun {
    program: Program,
    options: RunOptions,
    next_id: AtomicU64,
    live: AtomicU32,
    all_gone: Notify,
    exit_code: Mutex<Option<i32>>,
    exit_requested: Notify,
    /// Set once the run ends: microthreads still running are being aborted.
    cancelled: AtomicBool,
    handle: tokio::runtime::Handle,
    next_channel_id: AtomicU64,
    /// Every live microthread, by id: what the deadlock detector and the
    /// cancellation at the end of the run look at. Touched at spawn and exit only.
    members: Mutex<HashMap<u64, Arc<Member>>>,
    /// How many members are blocked with no timeout (a cheap first check for the
    /// deadlock detector, which looks at `members` only when it matches `live`).
    blocked: AtomicU32,
    progress: Progress,
}

/// What the scheduler knows of one live microthread: who it is, what it waits on
/// while blocked (for the deadlock report), and how to stop it. Blocking touches
/// only the microthread's own member, so the channel hot path shares no lock.
pub(crate) struct Member {
    pub(crate) me: Identity,
    waiting: Mutex<Option<(Waiting, Probe)>>,
    abort: OnceLock<AbortHandle>,
}

impl Member {
    fn new(me: Identity) -> Self {
        Member {
            me,
            waiting: Mutex::new(None),
            abort: OnceLock::new(),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Option<(Waiting, Probe)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a microthread as blocked (with no timeout) while it lives.
pub(crate) struct Blocked<'a> {
    run: &'a ProgramRun,
    member: &'a Member,
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        *self.member.waiting() = None;
        self.run.blocked.fetch_sub(1, Ordering::AcqRel);
        self.run.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Removes a microthread from its run's members when its task ends, however it
/// ends (returned, failed, or aborted).
struct Membership {
    run: Arc<ProgramRun>,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.run.members().remove(&self.id);
    }
}

/// Completes a microthread's completion as cancelled if its task is aborted before
/// it finished, so that nothing waits on it forever.
struct CompleteOnDrop {
    done: Arc<Completion>,
    me: Identity,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if !self.done.is_finished() {
            self.done.complete(Err(self.me.failure("cancelled".into())));
        }
    }
}

/// Tells whether what a blocked microthread waits for has happened already (its
/// task just has not run yet): such a microthread does not count as blocked.
pub(crate) enum Probe {
    Waiter(Arc<crate::channel::Waiter>),
    Completion(Arc<Completion>),
}

impl Probe {
    fn is_woken(&self) -> bool {
        match self {
            Probe::Waiter(w) => w.is_done(),
            Probe::Completion(c) => c.is_finished(),
        }
    }
}

/// How long the end of a program waits for its cancelled microthreads to stop.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// What a blocked microthread waits on (formatted only for a deadlock report).
pub(crate) enum Waiting {
    Recv(u64),
    Send(u64),
    Select(Vec<u64>),
    Join(u64),
    Child(u64),
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::Recv(c) => write!(f, "receiving on channel {c}"),
            Waiting::Send(c) => write!(f, "sending on channel {c}"),
            Waiting::Select(cs) => {
                let cs: Vec<String> = cs.iter().map(u64::to_string).collect();
                write!(f, "select over channels {}", cs.join(", "))
            }
            Waiting::Join(m) => write!(f, "joining microthread {m}"),
            Waiting::Child(m) => write!(f, "waiting for its child microthread {m} to finish"),
        }
    }
}

/// How long "every microthread blocked, nothing happening" must last before it is
/// called a deadlock: a wake-up already on its way completes well within it.
const DEADLOCK_GRACE: Duration = Duration::from_millis(100);

/// Frees a live-microthread slot when the microthread's task ends, however it ends.
struct Slot(Arc<ProgramRun>);

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_gone.notify_waiters();
        }
    }
}

impl ProgramRun {
    pub(crate) fn new(program: Program, options: RunOptions, handle: tokio::runtime::Handle) -> Self {
        ProgramRun {
            program,
            options,
            next_id: AtomicU64::new(0),
            live: AtomicU32::new(0),
            all_gone: Notify::new(),
            exit_code: Mutex::new(None),
            exit_requested: Notify::new(),
            cancelled: AtomicBool::new(false),
            handle,
            next_channel_id: AtomicU64::new(1),
            members: Mutex::new(HashMap::new()),
            blocked: AtomicU32::new(0),
            progress: Progress::default(),
        }
    }

    pub(crate) fn next_channel_id(&self) -> u64 {
        self.next_channel_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Mark `member` as blocked, on what `what` says, until the guard is dropped.
    pub(crate) fn block<'a>(&'a self, member: &'a Member, what: Waiting, probe: Probe) -> Blocked<'a> {
        *member.waiting() = Some((what, probe));
        self.blocked.fetch_add(1, Ordering::AcqRel);
        Blocked { run: self, member }
    }

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Member>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live microthread waits, and none of them has a wake-up on its way. The
    /// count is compared first: the members are looked at only when it matches.
    fn all_blocked(&self) -> bool {
        let live = self.live.load(Ordering::Acquire);
        if live == 0 || self.blocked.load(Ordering::Acquire) < live {
            return false;
        }
        let members = self.members();
        let stuck = members
            .values()
            .filter(|m| m.waiting().as_ref().is_some_and(|(_, probe)| !probe.is_woken()))
            .count();
        !members.is_empty() && stuck >= members.len()
    }

    /// Resolves, with the report, once every live microthread has been blocked for a
    /// grace period during which nothing completed.
    ///
    /// It looks every grace period rather than being told at every blocking call:
    /// telling it would cost a cross-thread wake-up on the hot path of every channel
    /// operation.
    async fn deadlocked(&self) -> String {
        loop {
            tokio::time::sleep(DEADLOCK_GRACE).await;
            if self.all_blocked() {
                let before = self.progress.load(Ordering::Relaxed);
                tokio::time::sleep(DEADLOCK_GRACE).await;
                if self.all_blocked() && self.progress.load(Ordering::Relaxed) == before {
                    let members: Vec<Arc<Member>> = self.members().values().cloned().collect();
                    let mut lines: Vec<(u64, String)> = members
                        .iter()
                        .filter_map(|m| {
                            let waiting = m.waiting();
                            let (what, _) = waiting.as_ref()?;
                            Some((m.me.id, format!("{}: {what}", m.me)))
                        })
                        .collect();
                    lines.sort();
                    let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
                    return lines.join("\n");
                }
            }
        }
    }

    pub(crate) fn program(&self) -> &Program {
        &self.program
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.program.runtime().engine()
    }

    /// Live microthreads of this run.
    pub(crate) fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn fuel_slice(&self) -> Option<u64> {
        self.program.runtime().fuel_slice()
    }

    /// A fresh WASI context for one microthread: the run's arguments, environment
    /// and directory grants, the host's stdio, nothing else. Without grants it cannot
    /// fail, and microthreads make it only when they first call WASI
    /// ([`wasi_ctx_needed_at_start`](Self::wasi_ctx_needed_at_start)).
    pub(crate) fn wasi_ctx(&self) -> wasmtime::Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        // File I/O goes to tokio's blocking pool so that it does not stall the other
        // microthreads of a worker; a program that cannot spawn is alone, and does it
        // in place, saving a thread hop per operation.
        b.allow_blocking_current_thread(!self.program.is_spawnable());
        let o = &self.options;
        match &o.stdin {
            Some(pipe) => b.stdin(pipe.clone()),
            None => b.inherit_stdin(),
        };
        match &o.stdout {
            Some(buffer) => b.stdout(buffer.0.clone()),
            None => b.inherit_stdout(),
        };
        match &o.stderr {
            Some(buffer) => b.stderr(buffer.0.clone()),
            None => b.inherit_stderr(),
        };
        b.arg(&self.options.program_name);
        b.args(&self.options.args);
        b.envs(&self.options.env);
        for grant in &o.dirs {
            let perms = if grant.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&grant.host, &grant.guest, perms)?;
        }
        Ok(b.build())
    }

    /// Opening the granted directories can fail: then each microthread makes its WASI
    /// context when it starts, so that a failure is its failure, not a panic later.
    /// Without grants the context is made lazily, on the first WASI call: most
    /// microthreads never make one.
    pub(crate) fn wasi_ctx_needed_at_start(&self) -> bool {
        !self.options.dirs.is_empty()
    }

    fn reserve_slot(self: &Arc<Self>) -> Option<Slot> {
        let max = self.program.runtime().limits().max_microthreads;
        let mut live = self.live.load(Ordering::Relaxed);
        loop {
            if live >= max {
                return None;
            }
            match self
                .live
                .compare_exchange_weak(live, live + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => live = now,
            }
        }
    }

    /// Start a microthread at `function` (through `trampoline`) with `argument`.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        trampoline: u32,
        function: u32,
        argument: Message,
        name: Option<String>,
    ) -> Result<Arc<Completion>, SpawnError> {
        let limits = self.program.runtime().limits();
        if self.program.entry_pre().is_none() {
            return Err(SpawnError::NotSpawnable);
        }
        let slot = self
            .reserve_slot()
            .ok_or(SpawnError::LimitReached(limits.max_microthreads))?;
        let me = Identity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.map(Arc::from),
        };
        let completion = Arc::new(Completion::new(me.id, me.name.clone()));
        let done = completion.clone();
        let run = self.clone();
        let (member, membership) = self.join_members(&me);
        let id = me.id;
        let task = self.handle.spawn(async move {
            let _slot = slot;
            let _membership = membership;
            let _cancelled = CompleteOnDrop {
                done: done.clone(),
                me: me.clone(),
            };
            let start = Start::Entry {
                trampoline,
                function,
                argument,
            };
            let outcome = match microthread::run(run.clone(), member, Some(done.clone()), start).await {
                Ending::Returned(message) => Ok(message),
                Ending::Failed(f) => Err(f),
                Ending::Exit(code) => {
                    run.request_exit(code);
                    Err(me.failure(format!("it exited the program with code {code}")))
                }
                Ending::MainErr => Err(me.failure("it returned an error".into())),
            };
            done.complete(outcome);
        });
        self.set_abort(id, task.abort_handle());
        Ok(completion)
    }

    /// Enter a new microthread in the members: its member, and the guard that takes
    /// it out when its task ends.
    fn join_members(self: &Arc<Self>, me: &Identity) -> (Arc<Member>, Membership) {
        let member = Arc::new(Member::new(me.clone()));
        self.members().insert(me.id, member.clone());
        let membership = Membership {
            run: self.clone(),
            id: me.id,
        };
        (member, membership)
    }

    /// Record how to abort microthread `id`'s task; abort it at once if the run is
    /// already being cancelled (it may have been spawned during the cancellation).
    /// The handle is set under the members' lock, which `cancel_all` holds while it
    /// aborts: either it sees the handle, or this sees `cancelled`.
    fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(member) = self.members().get(&id) {
            let _ = member.abort.set(abort.clone());
        }
        if self.cancelled.load(Ordering::SeqCst) {
            abort.abort();
        }
    }

    /// Abort every microthread still running: each stops at its next host call or
    /// fuel yield (its fiber unwinds when its future is dropped).
    fn cancel_all(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        for member in self.members().values() {
            if let Some(abort) = member.abort.get() {
                abort.abort();
            }
        }
    }

    /// Some microthread called `exit(code)`: the first code wins, and the program ends.
    fn request_exit(&self, code: i32) {
        self.exit_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(code);
        self.exit_requested.notify_waiters();
    }

    async fn exit_requested(&self) -> i32 {
        loop {
            let notified = self.exit_requested.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(code) = *self.exit_code.lock().unwrap_or_else(|e| e.into_inner()) {
                return code;
            }
            notified.await;
        }
    }

    async fn all_gone(&self) {
        loop {
            let notified = self.all_gone.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Run the program's `main` to its end (after its structured children), or until
    /// a microthread exits the program or Ctrl-C interrupts it; then cancel whatever
    /// still runs and wait for it to be gone.
    pub(crate) async fn run_main(self: Arc<Self>) -> Result<ExitStatus, crate::Error> {
        let slot = self
            .reserve_slot()
            .ok_or_else(|| crate::Error::Start("the microthread limit is 0".into()))?;
        let me = Identity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name: Some(Arc::from("main")),
        };
        let run = self.clone();
        let (member, membership) = self.join_members(&me);
        let id = me.id;
        let main = self.handle.spawn(async move {
            let _slot = slot;
            let _membership = membership;
            microthread::run(run, member, None, Start::Main).await
        });
        self.set_abort(id, main.abort_handle());
        let ctrl_c = async {
            if self.options.ctrl_c && tokio::signal::ctrl_c().await.is_ok() {
                return;
            }
            std::future::pending::<()>().await
        };
        let status = tokio::select! {
            ending = main => match ending {
                Ok(Ending::Returned(_)) => ExitStatus::Exited(0),
                Ok(Ending::MainErr) => ExitStatus::Exited(1),
                Ok(Ending::Exit(code)) => ExitStatus::Exited(code),
                Ok(Ending::Failed(f)) => ExitStatus::Failed(f),
                Err(e) => ExitStatus::Failed(Failure {
                    id: 0,
                    name: Some("main".into()),
                    message: format!("the host task running it ended abnormally: {e}"),
                }),
            },
            code = self.exit_requested() => ExitStatus::Exited(code),
            _ = ctrl_c => ExitStatus::Interrupted,
            report = self.deadlocked() => ExitStatus::Deadlocked(report),
        };
        // Cancelled microthreads stop at their next host call or fuel yield; one
        // that never yields (preemption off) is left behind after a grace period.
        self.cancel_all();
        if tokio::time::timeout(CANCEL_GRACE, self.all_gone()).await.is_err() {
            tracing::warn!(
                live = self.live(),
                "microthreads still running {CANCEL_GRACE:?} after the program ended were left behind"
            );
        }
        Ok(status)
    }
}
