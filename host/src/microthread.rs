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

use crate::bindings::thread::{self as wit, SpawnError};
use crate::error::Failure;
use crate::scheduler::ProgramRun;

/// What a finished microthread leaves for its joiner.
pub(crate) type Outcome = Result<Vec<u8>, Failure>;

/// Where a microthread's outcome waits for its joiner (and its parent's prejoin).
pub(crate) struct Completion {
    id: u64,
    name: Option<String>,
    state: Mutex<CompletionState>,
    done: Notify,
}

#[derive(Default)]
struct CompletionState {
    /// `None` while the microthread runs.
    outcome: Option<Outcome>,
    /// The outcome was taken by `join`.
    taken: bool,
}

impl Completion {
    pub(crate) fn new(id: u64, name: Option<String>) -> Self {
        Completion {
            id,
            name,
            state: Mutex::default(),
            done: Notify::new(),
        }
    }

    pub(crate) fn complete(&self, outcome: Outcome) {
        self.state.lock().unwrap().outcome = Some(outcome);
        self.done.notify_waiters();
    }

    fn is_finished(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.outcome.is_some() || s.taken
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
        let mut s = self.state.lock().unwrap();
        if s.taken {
            return Err(self.failure("its result was already taken by an earlier join".into()));
        }
        s.taken = true;
        s.outcome
            .take()
            .expect("finished microthread has an outcome")
    }

    /// After the microthread finished: its failure, if nobody joined it.
    fn unjoined_failure(&self) -> Option<Failure> {
        let s = self.state.lock().unwrap();
        match &s.outcome {
            Some(Err(f)) if !s.taken => Some(f.clone()),
            _ => None,
        }
    }

    /// A microthread joined and nobody else can: drop what it left behind.
    fn is_settled(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.taken || matches!(s.outcome, Some(Ok(_)))
    }

    fn failure(&self, message: String) -> Failure {
        Failure {
            id: self.id,
            name: self.name.clone(),
            message,
        }
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
    pub(crate) name: Option<String>,
}

/// The data of a microthread's `Store`.
pub(crate) struct MtState {
    wasi: WasiCtx,
    table: ResourceTable,
    run: Arc<ProgramRun>,
    me: Identity,
    panic_message: Option<String>,
    /// Children not yet known to be settled: the microthread does not finish before
    /// them (prejoin), and a failure nobody joined fails it.
    children: Vec<Arc<Completion>>,
    /// `children.len()` after the last pruning, to prune in amortised O(1).
    pruned_len: usize,
}

impl WasiView for MtState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
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
}

impl wit::Host for MtState {
    async fn spawn(
        &mut self,
        trampoline: u32,
        function: u32,
        argument: Vec<u8>,
        name: Option<String>,
    ) -> wasmtime::Result<Result<Resource<JoinSlot>, SpawnError>> {
        let completion = match self.run.spawn(trampoline, function, argument, name) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        self.push_child(completion.clone());
        Ok(Ok(self.table.push(JoinSlot { completion })?))
    }

    async fn yield_now(&mut self) -> wasmtime::Result<()> {
        tokio::task::yield_now().await;
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
        Ok(self.me.name.clone())
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
    ) -> wasmtime::Result<Result<Vec<u8>, wit::Failure>> {
        let completion = self.table.get(&handle)?.completion.clone();
        Ok(completion.join().await.map_err(|f| wit::Failure {
            id: f.id,
            name: f.name,
            message: f.message,
        }))
    }

    async fn drop(&mut self, handle: Resource<JoinSlot>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

/// How a microthread's guest code ended.
pub(crate) enum Ending {
    /// It returned: a spawned function's serialized result (empty for `main`).
    Returned(Vec<u8>),
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
        argument: Vec<u8>,
    },
}

/// Run one microthread to its end, then wait for its children (prejoin). Returns how
/// it ended, with an unjoined child failure turned into its own failure.
pub(crate) async fn run(run: Arc<ProgramRun>, me: Identity, start: Start) -> Ending {
    let mut store = new_store(&run, me.clone());
    let result = call(&run, &mut store, start).await;
    let data = store.data_mut();
    let children = std::mem::take(&mut data.children);
    let panic_message = data.panic_message.take();
    drop(store);

    let ending = match result {
        Ok(ending) => ending,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ending::Exit(*code),
            None => Ending::Failed(failure_from_error(&me, &error, panic_message)),
        },
    };
    prejoin(&me, children, ending).await
}

fn new_store(run: &Arc<ProgramRun>, me: Identity) -> Store<MtState> {
    let state = MtState {
        wasi: run.wasi_ctx(),
        table: ResourceTable::new(),
        run: run.clone(),
        me,
        panic_message: None,
        children: Vec::new(),
        pruned_len: 0,
    };
    let mut store = Store::new(run.engine(), state);
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
    store
}

async fn call(
    run: &Arc<ProgramRun>,
    store: &mut Store<MtState>,
    start: Start,
) -> wasmtime::Result<Ending> {
    match start {
        Start::Main => {
            let pre = run
                .program()
                .command_pre()
                .expect("checked before starting main");
            let command = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| instantiate_error(run, e))?;
            Ok(match command.wasi_cli_run().call_run(&mut *store).await? {
                Ok(()) => Ending::Returned(Vec::new()),
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
            let result = instance
                .weft_runtime_entry()
                .call_run(&mut *store, trampoline, function, &argument)
                .await?;
            Ok(Ending::Returned(result))
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
async fn prejoin(me: &Identity, children: Vec<Arc<Completion>>, ending: Ending) -> Ending {
    let mut ending = ending;
    for child in children {
        child.finished().await;
        if let (Ending::Returned(_) | Ending::MainErr, Some(f)) =
            (&ending, child.unjoined_failure())
        {
            ending = Ending::Failed(Failure {
                id: me.id,
                name: me.name.clone(),
                message: format!("a child failed and nobody joined it: {f}"),
            });
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
    Failure {
        id: me.id,
        name: me.name.clone(),
        message,
    }
}
