//! The scheduler: tokio runs each microthread as a task driving its `call_async`
//! future; a host call that blocks returns `Pending` and suspends exactly that fiber,
//! and a fuel slice running out yields it. This module owns one run of a program:
//! ids, the live-microthread count, spawning, the program's exit, and cancellation.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
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
    cancel: watch::Sender<bool>,
    handle: tokio::runtime::Handle,
    next_channel_id: AtomicU64,
    /// Microthreads blocked with no timeout, and on what: the deadlock detector's view.
    blocked: Mutex<BTreeMap<u64, (Identity, Waiting, Probe)>>,
    progress: Progress,
}

/// Marks a microthread as blocked (with no timeout) while it lives.
pub(crate) struct Blocked {
    run: Arc<ProgramRun>,
    id: u64,
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.run
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.run.progress.fetch_add(1, Ordering::Relaxed);
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
            cancel: watch::channel(false).0,
            handle,
            next_channel_id: AtomicU64::new(1),
            blocked: Mutex::new(BTreeMap::new()),
            progress: Progress::default(),
        }
    }

    pub(crate) fn next_channel_id(&self) -> u64 {
        self.next_channel_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Mark `me` as blocked, on what `what` says, until the guard is dropped.
    pub(crate) fn block(self: &Arc<Self>, me: &Identity, what: Waiting, probe: Probe) -> Blocked {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(me.id, (me.clone(), what, probe));
        Blocked {
            run: self.clone(),
            id: me.id,
        }
    }

    /// Every live microthread waits, and none of them has a wake-up on its way. The
    /// count is compared first: the probes are looked at only when it matches.
    fn all_blocked(&self) -> bool {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.live.load(Ordering::Acquire);
        live > 0
            && blocked.len() as u32 >= live
            && blocked.values().filter(|(_, _, probe)| !probe.is_woken()).count() as u32 >= live
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
                    let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                    let lines: Vec<String> = blocked
                        .values()
                        .map(|(me, what, _)| format!("{me}: {what}"))
                        .collect();
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

    /// A fresh WASI context for one microthread: the run's arguments and environment,
    /// the host's stdio, nothing else.
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
        self.handle.spawn(async move {
            let _slot = slot;
            let start = Start::Entry {
                trampoline,
                function,
                argument,
            };
            let body = microthread::run(run.clone(), me.clone(), Some(done.clone()), start);
            let outcome = match run.cancellable(body).await {
                Some(Ending::Returned(message)) => Ok(message),
                Some(Ending::Failed(f)) => Err(f),
                Some(Ending::Exit(code)) => {
                    run.request_exit(code);
                    Err(me.failure(format!("it exited the program with code {code}")))
                }
                Some(Ending::MainErr) => Err(me.failure("it returned an error".into())),
                None => Err(me.failure("cancelled".into())),
            };
            done.complete(outcome);
        });
        Ok(completion)
    }

    /// Run `fut` unless the run is cancelled first (then `None`; `fut` is dropped,
    /// which unwinds the microthread's fiber).
    async fn cancellable<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut cancel = self.cancel.subscribe();
        tokio::select! {
            out = fut => Some(out),
            _ = cancel.wait_for(|c| *c) => None,
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
        let main = self.handle.spawn(async move {
            let _slot = slot;
            run.cancellable(microthread::run(run.clone(), me, None, Start::Main))
                .await
        });
        let ctrl_c = async {
            if self.options.ctrl_c && tokio::signal::ctrl_c().await.is_ok() {
                return;
            }
            std::future::pending::<()>().await
        };
        let status = tokio::select! {
            ending = main => match ending {
                Ok(Some(Ending::Returned(_))) => ExitStatus::Exited(0),
                Ok(Some(Ending::MainErr)) => ExitStatus::Exited(1),
                Ok(Some(Ending::Exit(code))) => ExitStatus::Exited(code),
                Ok(Some(Ending::Failed(f))) => ExitStatus::Failed(f),
                // Cancelled: a child's exit won the race; its code is set.
                Ok(None) => ExitStatus::Exited(self.exit_requested().await),
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
        self.cancel.send_replace(true);
        if tokio::time::timeout(CANCEL_GRACE, self.all_gone()).await.is_err() {
            tracing::warn!(
                live = self.live(),
                "microthreads still running {CANCEL_GRACE:?} after the program ended were left behind"
            );
        }
        Ok(status)
    }
}
