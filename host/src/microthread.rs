//! A microthread: one instance of the program's component in its own `Store`, driven
//! by `call_async` on a wasmtime fiber. This module owns the per-microthread state,
//! the host side of the `weft:runtime/thread` interface, and how a microthread's end
//! (result, trap, panic, exit) becomes an outcome its joiner sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use wasmtime::Store;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::channel as wit_channel;
use crate::bindings::thread::{self as wit, SpawnError};
use crate::bindings::types as wit_types;
use crate::channel::{Endpoint, Holder, Message};
use crate::error::Failure;
use crate::scheduler::{Member, Probe, ProgramRun, Waiting};

/// What a finished microthread leaves for its joiner.
pub(crate) type Outcome = Result<Message, Failure>;

/// Where a microthread's outcome waits for its joiner (and its parent's prejoin).
pub(crate) struct Completion {
    id: u64,
    name: Option<Arc<str>>,
    state: Mutex<CompletionState>,
    done: Notify,
}

#[derive(Default)]
struct CompletionState {
    /// `None` while the microthread runs.
    outcome: Option<Outcome>,
    finished: bool,
    /// The outcome was taken by `join`.
    taken: bool,
    /// Its failure reached a reader through a channel it was sending on.
    failure_delivered: bool,
}

impl Completion {
    pub(crate) fn new(id: u64, name: Option<Arc<str>>) -> Self {
        Completion {
            id,
            name,
            state: Mutex::default(),
            done: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CompletionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn complete(&self, outcome: Outcome) {
        {
            let mut s = self.lock();
            s.outcome = Some(outcome);
            s.finished = true;
        }
        self.done.notify_waiters();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// Wait until the microthread has finished.
    pub(crate) async fn finished(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_finished() {
                return;
            }
            notified.await;
        }
    }

    /// Wait for the outcome and take it.
    async fn join(&self) -> Outcome {
        self.finished().await;
        let mut s = self.lock();
        if s.taken {
            return Err(Failure {
                id: self.id,
                name: self.name.as_deref().map(str::to_owned),
                message: "its result was already taken by an earlier join".into(),
            });
        }
        s.taken = true;
        s.outcome.take().expect("a finished microthread has an outcome")
    }

    /// A reader received this microthread's failure through a channel.
    pub(crate) fn mark_failure_delivered(&self) {
        self.lock().failure_delivered = true;
    }

    /// After the microthread finished: its failure, if nobody joined it or got it
    /// through a channel.
    fn unjoined_failure(&self) -> Option<Failure> {
        let s = self.lock();
        match &s.outcome {
            Some(Err(f)) if !s.taken && !s.failure_delivered => Some(f.clone()),
            _ => None,
        }
    }

    /// Joined, or succeeded: nothing more to wait for or report.
    fn is_settled(&self) -> bool {
        let s = self.lock();
        s.taken || matches!(s.outcome, Some(Ok(_)))
    }
}

/// The host half of a guest's `join-handle` resource.
pub struct JoinSlot {
    completion: Arc<Completion>,
}

/// Identity of a microthread.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: u64,
    /// Shared, so that identifying a microthread (in a deadlock report, say) is cheap.
    pub(crate) name: Option<Arc<str>>,
}

impl Identity {
    pub(crate) fn failure(&self, message: String) -> Failure {
        Failure {
            id: self.id,
            name: self.name.as_deref().map(str::to_owned),
            message,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "microthread {}", self.id)?;
        match &self.name {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// The data of a microthread's `Store`.
pub(crate) struct MtState {
    /// Made on the first WASI call (or at start when the run grants directories).
    wasi: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    pub(crate) run: Arc<ProgramRun>,
    pub(crate) me: Identity,
    /// This microthread as the scheduler knows it (marked while it blocks).
    pub(crate) member: Arc<Member>,
    /// Senders this microthread holds carry its failure, should it fail.
    pub(crate) holder: Arc<Holder>,
    panic_message: Option<String>,
    /// Children not yet known to be settled: the microthread does not finish before
    /// them (prejoin), and a failure nobody joined fails it.
    children: Vec<Arc<Completion>>,
    /// `children.len()` after the last pruning, to prune in amortised O(1).
    pruned_len: usize,
}

impl WasiView for MtState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let run = &self.run;
        let ctx = self.wasi.get_or_insert_with(|| {
            // Only runs without directory grants get here (see `new_store`), and
            // for them making the context cannot fail.
            run.wasi_ctx().unwrap_or_else(|_| WasiCtx::builder().build())
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl MtState {
    fn push_child(&mut self, child: Arc<Completion>) {
        if self.children.len() >= 2 * self.pruned_len.max(32) {
            self.children.retain(|c| !c.is_settled());
            self.pruned_len = self.children.len();
        }
        self.children.push(child);
    }

    /// Take a message the guest gave up: its endpoints leave this store's table.
    pub(crate) fn take_message(&mut self, m: wit_channel::Message) -> wasmtime::Result<Message> {
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                wit_channel::Endpoint::Sender(r) => {
                    let mut h = self.table.delete(r)?;
                    h.set_holder(None);
                    Endpoint::Sender(h)
                }
                wit_channel::Endpoint::Receiver(r) => Endpoint::Receiver(self.table.delete(r)?),
            });
        }
        Ok(Message {
            bytes: m.bytes,
            endpoints,
        })
    }

    /// Hand a message to the guest: its endpoints enter this store's table.
    pub(crate) fn give_message(&mut self, m: Message) -> wasmtime::Result<wit_channel::Message> {
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                Endpoint::Sender(mut h) => {
                    h.set_holder(Some(self.holder.clone()));
                    wit_channel::Endpoint::Sender(self.table.push(h)?)
                }
                Endpoint::Receiver(h) => wit_channel::Endpoint::Receiver(self.table.push(h)?),
            });
        }
        Ok(wit_channel::Message {
            bytes: m.bytes,
            endpoints,
        })
    }
}

pub(crate) fn wit_failure(f: Failure) -> wit_types::Failure {
    wit_types::Failure {
        id: f.id,
        name: f.name,
        message: f.message,
    }
}

impl wit_types::Host for MtState {}

impl wit::Host for MtState {
    async fn spawn(
        &mut self,
        trampoline: u32,
        function: u32,
        argument: wit_channel::Message,
        name: Option<String>,
    ) -> wasmtime::Result<Result<Resource<JoinSlot>, SpawnError>> {
        let max = self.run.program().runtime().limits().max_message_size;
        if argument.bytes.len() > max as usize {
            // The argument's endpoints stay with the guest's copy of the value.
            return Ok(Err(SpawnError::ArgumentTooLarge(max)));
        }
        let argument = self.take_message(argument)?;
        let completion = match self.run.spawn(trampoline, function, argument, name) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        self.push_child(completion.clone());
        Ok(Ok(self.table.push(JoinSlot { completion })?))
    }

    async fn yield_now(&mut self) -> wasmtime::Result<()> {
        yield_once().await;
        Ok(())
    }

    async fn sleep(&mut self, nanoseconds: u64) -> wasmtime::Result<()> {
        tokio::time::sleep(Duration::from_nanos(nanoseconds)).await;
        Ok(())
    }

    async fn current_id(&mut self) -> wasmtime::Result<u64> {
        Ok(self.me.id)
    }

    async fn current_name(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.me.name.as_deref().map(str::to_owned))
    }

    async fn exit(&mut self, code: u8) -> wasmtime::Result<()> {
        Err(I32Exit(i32::from(code)).into())
    }

    async fn set_panic_message(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(message);
        Ok(())
    }
}

impl wit::HostJoinHandle for MtState {
    async fn id(&mut self, handle: Resource<JoinSlot>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&handle)?.completion.id)
    }

    async fn join(
        &mut self,
        handle: Resource<JoinSlot>,
    ) -> wasmtime::Result<Result<wit_channel::Message, wit_types::Failure>> {
        let completion = self.table.get(&handle)?.completion.clone();
        let outcome = {
            let _blocked = self.run.block(
                &self.member,
                Waiting::Join(completion.id),
                Probe::Completion(completion.clone()),
            );
            completion.join().await
        };
        match outcome {
            Ok(m) => Ok(Ok(self.give_message(m)?)),
            Err(f) => Ok(Err(wit_failure(f))),
        }
    }

    async fn drop(&mut self, handle: Resource<JoinSlot>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

/// Give the other microthreads of this worker a turn: wake this task and return
/// `Pending` once, so that it goes to the back of the worker's run queue. (Cheaper
/// than `tokio::task::yield_now`, which defers the wake-up until the worker has
/// polled its I/O driver, a system call per yield; timers and I/O are still polled
/// every `event_interval` ticks.)
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// How a microthread's guest code ended.
pub(crate) enum Ending {
    /// It returned: a spawned function's serialized result (empty for `main`).
    Returned(Message),
    /// `main` returned an error (`wasi:cli/run` gave `Err`): exit code 1.
    MainErr,
    /// It called `exit(code)`: the whole program ends with `code`.
    Exit(i32),
    /// It trapped or panicked.
    Failed(Failure),
}

/// Where a microthread starts.
pub(crate) enum Start {
    /// `wasi:cli/run`: the program's `main`.
    Main,
    /// `weft:runtime/entry.run`: a spawned function.
    Entry {
        trampoline: u32,
        function: u32,
        argument: Message,
    },
}

/// Run one microthread to its end, then wait for its children (prejoin). Returns how
/// it ended, with an unjoined child failure turned into its own failure.
pub(crate) async fn run(
    run: Arc<ProgramRun>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
    start: Start,
) -> Ending {
    let me = member.me.clone();
    let mut store = match new_store(&run, member.clone(), completion) {
        Ok(store) => store,
        Err(e) => return Ending::Failed(me.failure(format!("cannot set up its WASI context: {e:#}"))),
    };
    let result = call(&run, &mut store, start).await;
    let data = store.data_mut();
    let children = std::mem::take(&mut data.children);
    let ending = match result {
        Ok(ending) => ending,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ending::Exit(*code),
            None => Ending::Failed(failure_from_error(&me, &error, data.panic_message.take())),
        },
    };
    if let Ending::Failed(f) = &ending {
        // The senders it held now close with this failure.
        data.holder.fail(f.clone());
    }
    drop(store);
    if let Ending::Exit(_) = ending {
        // The whole program ends now: no waiting for children.
        return ending;
    }
    prejoin(&run, &member, children, ending).await
}

fn new_store(
    run: &Arc<ProgramRun>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
) -> wasmtime::Result<Store<MtState>> {
    let wasi = run
        .wasi_ctx_needed_at_start()
        .then(|| run.wasi_ctx())
        .transpose()?;
    let state = MtState {
        wasi,
        table: ResourceTable::new(),
        run: run.clone(),
        me: member.me.clone(),
        member,
        holder: Arc::new(Holder::new(completion)),
        panic_message: None,
        children: Vec::new(),
        pruned_len: 0,
    };
    let mut store = Store::new(run.engine(), state);
    // A microthread may hold a join handle for every other one, and endpoints
    // besides: wasmtime's default cap of 100k handles per store would trap it.
    let max = run.program().runtime().limits().max_microthreads as usize;
    store.set_max_component_handles(store.max_component_handles().max(max.saturating_mul(4)));
    if let Some(slice) = run.fuel_slice() {
        // Fuel is only a clock here: the budget is unlimited, and every `slice` units
        // the fiber yields to the scheduler.
        store
            .set_fuel(u64::MAX)
            .expect("fuel is enabled when a slice is set");
        store
            .fuel_async_yield_interval(Some(slice))
            .expect("fuel is enabled when a slice is set");
    }
    Ok(store)
}

async fn call(run: &Arc<ProgramRun>, store: &mut Store<MtState>, start: Start) -> wasmtime::Result<Ending> {
    match start {
        Start::Main => {
            let pre = run.program().command_pre().expect("checked before starting main");
            let command = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| instantiate_error(run, e))?;
            Ok(match command.wasi_cli_run().call_run(&mut *store).await? {
                Ok(()) => Ending::Returned(Message::default()),
                Err(()) => Ending::MainErr,
            })
        }
        Start::Entry {
            trampoline,
            function,
            argument,
        } => {
            let pre = run.program().entry_pre().expect("checked at spawn");
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| instantiate_error(run, e))?;
            let argument = store.data_mut().give_message(argument)?;
            let result = instance
                .weft_runtime_entry()
                .call_run(&mut *store, trampoline, function, &argument)
                .await?;
            Ok(Ending::Returned(store.data_mut().take_message(result)?))
        }
    }
}

/// Instantiation fails for want of resources (memory, mappings): say which.
fn instantiate_error(run: &ProgramRun, error: wasmtime::Error) -> wasmtime::Error {
    let hint = crate::limits::map_count_hint(run.live());
    error.context(format!("cannot instantiate the microthread{hint}"))
}

/// Wait for every child; a child failure nobody joined becomes this microthread's
/// failure (unless it already failed or exited).
async fn prejoin(
    run: &Arc<ProgramRun>,
    member: &Member,
    children: Vec<Arc<Completion>>,
    ending: Ending,
) -> Ending {
    let me = &member.me;
    let mut ending = ending;
    for child in children {
        if !child.is_finished() {
            let _blocked = run.block(member, Waiting::Child(child.id), Probe::Completion(child.clone()));
            child.finished().await;
        }
        if let (Ending::Returned(_) | Ending::MainErr, Some(f)) = (&ending, child.unjoined_failure()) {
            ending = Ending::Failed(me.failure(format!("a child failed and nobody joined it: {f}")));
        }
    }
    ending
}

/// Describe a trap: the panic message if the guest left one, the trap, the backtrace.
fn failure_from_error(me: &Identity, error: &wasmtime::Error, panic: Option<String>) -> Failure {
    let trap = match error.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => format!("{error:#}"),
    };
    let mut message = match panic {
        Some(p) => format!("{} ({trap})", p.replace('\n', " ")),
        None => trap,
    };
    if let Some(bt) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        // wasmtime's rendering, without its heading and its closing note.
        let frames = bt.to_string();
        let frames: Vec<&str> = frames
            .lines()
            .filter(|l| l.starts_with(' ') && !l.trim().is_empty())
            .collect();
        if !frames.is_empty() {
            message.push_str("\nwasm backtrace:\n");
            message.push_str(&frames.join("\n"));
        }
    }
    me.failure(message)
}
