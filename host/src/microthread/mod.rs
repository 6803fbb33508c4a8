//! A microthread: one instance of the program's component in its own `Store`, driven
//! by `call_async` on a wasmtime fiber, as a task of its run on weft's run queue. This module owns
//! a store's lifecycle: its state ([`Microthread`]), its fuel, epoch and memory
//! settings, starting it at `main` or at a spawned function (structured or
//! detached), moving endpoints into and out of its resource table, how its end
//! becomes the outcome its joiner sees (`ending`), the prejoin of its children, and
//! how its call is driven through cancellation and atomic sections (`driver`).

mod driver;
mod ending;
mod handles;

use std::sync::{Arc, Weak};

use crate::scheduler::Task;
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use ending::{RunFuelExhausted, Seen};
use handles::Handles;

use crate::channel::{Bytes, Endpoint, Holder, Message};
use crate::deterministic::{Schedule, Traced};
use crate::error::{Failure, FailureKind};
use crate::run::{
    Completion, Ending, Identity, Member, MicrothreadState, Probe, Refused, Run, Slot, Unjoined, Waiting,
};
use crate::wit::bindings::MicrothreadPre;
use crate::wit::bindings::channel as wit_channel;

/// A program's component, pre-linked, ready to instantiate: what every microthread
/// of every run of the program starts from.
pub(crate) struct Image {
    /// `wasi:cli/run`, if the component exports it: where `main` starts.
    pub(crate) command: Option<CommandPre<Microthread>>,
    /// `weft:runtime/entry`, if the component exports it: where spawned
    /// microthreads start.
    pub(crate) entry: Option<MicrothreadPre<Microthread>>,
}

impl Image {
    /// The program imports nothing of weft, so a run of it is one microthread.
    pub(crate) fn is_alone(&self) -> bool {
        self.entry.is_none()
    }
}

/// One microthread, as the host functions it calls see it: the data of its
/// `Store`. An application's own host functions
/// ([`RuntimeBuilder::host_interfaces`](crate::RuntimeBuilder::host_interfaces))
/// reach it through their `StoreContextMut<Microthread>`, and through it the
/// application's data.
///
/// ```no_run
/// # fn main() -> Result<(), weft::Error> {
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// struct Counter(AtomicU64);
///
/// let runtime = weft::Runtime::builder()
///     .data(Counter(AtomicU64::new(0)))
///     .host_interfaces(|linker| {
///         linker.instance("my:app/counter")?.func_wrap(
///             "bump",
///             |store: weft::wasmtime::StoreContextMut<'_, weft::Microthread>, (by,): (u64,)| {
///                 let counter = store.data().data::<Counter>().expect("set on the builder");
///                 Ok((counter.0.fetch_add(by, Ordering::Relaxed) + by,))
///             },
///         )?;
///         Ok(())
///     })
///     .build()?;
/// # Ok(()) }
/// ```
pub struct Microthread {
    /// Made on the first WASI call (or at start when the run grants directories).
    wasi: Option<WasiCtx>,
    /// Its handles, counted against its run's.
    pub(crate) table: Handles,
    pub(crate) run: Arc<Run>,
    pub(crate) image: Arc<Image>,
    pub(crate) me: Identity,
    /// This microthread as its run knows it (marked while it blocks).
    pub(crate) member: Arc<Member>,
    /// Senders this microthread holds carry its failure, should it fail.
    pub(crate) holder: Arc<Holder>,
    pub(crate) panic_message: Option<String>,
    /// The run's socket quota slots its WASI sockets hold.
    pub(crate) wasi_sockets: crate::net::WasiSlots,
    /// Children not yet known to be settled: the microthread does not finish before
    /// them (prejoin), and a failure nobody joined fails it.
    children: Vec<Arc<Completion>>,
    /// `children.len()` after the last pruning, to prune in amortised O(1).
    pruned_len: usize,
    /// Its linear memory's limit, and whether a growth was refused.
    memory: MemoryLimit,
    /// Fuel the store started with, and how much of it has been charged to the
    /// run's budget (runs with a fuel budget only).
    fuel_start: u64,
    fuel_charged: u64,
    /// Fuel that has moved virtual time on (deterministic runs only).
    fuel_clocked: u64,
}

/// The run's limit on a linear memory, and weft's on a table
/// ([`MAX_TABLE_ELEMENTS`](crate::limits::MAX_TABLE_ELEMENTS)); a refused growth is
/// remembered, so that the trap that follows reads as "out of memory" and names
/// the limit.
struct MemoryLimit {
    max: usize,
    refused: bool,
    table_refused: bool,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max && maximum.is_none_or(|m| desired <= m);
        self.refused |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let within = desired <= crate::limits::MAX_TABLE_ELEMENTS;
        self.table_refused |= !within;
        Ok(within && maximum.is_none_or(|m| desired <= m))
    }
}

impl WasiView for Microthread {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (run, alone, id) = (&self.run, self.image.is_alone(), self.me.id);
        let ctx = self.wasi.get_or_insert_with(|| {
            // Only runs without directory grants get here (see `new_store`), and
            // for them making the context cannot fail.
            run.options
                .wasi_ctx(alone, run.schedule().map(|s| (s, id)), &run.budget)
                .unwrap_or_else(|_| WasiCtx::builder().build())
        });
        WasiCtxView {
            ctx,
            table: self.table.wasi(),
        }
    }
}

impl Microthread {
    /// Its id, unique within its run (`main` is 0).
    pub fn id(&self) -> u64 {
        self.me.id
    }

    /// Its name, if it has one (`main` is named "main").
    pub fn name(&self) -> Option<&str> {
        self.me.name.as_deref()
    }

    /// The application's data of type `T`: its run's
    /// ([`RunOptions::data`](crate::RunOptions::data)) if that is a `T`, else its
    /// runtime's ([`RuntimeBuilder::data`](crate::RuntimeBuilder::data)) if that is.
    pub fn data<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        let run = self.run.options.data.as_ref().and_then(|d| d.downcast_ref::<T>());
        run.or_else(|| self.run.runtime_data().and_then(|d| d.downcast_ref::<T>()))
    }

    pub(crate) fn push_child(&mut self, child: Arc<Completion>) {
        if self.children.len() >= 2 * self.pruned_len.max(32) {
            self.children.retain(|c| !c.is_settled());
            self.pruned_len = self.children.len();
        }
        self.children.push(child);
    }

    /// Take a message the guest gave up: its endpoints leave this store's table.
    pub(crate) fn take_message(&mut self, m: wit_channel::Message) -> wasmtime::Result<Message> {
        let m = match m {
            wit_channel::Message::Small(s) => {
                let bytes = Bytes::from_words(s.len, [s.w0, s.w1, s.w2]).ok_or_else(|| {
                    wasmtime::format_err!(
                        "a small message of {} bytes (at most {} fit one)",
                        s.len,
                        crate::channel::bytes::INLINE
                    )
                })?;
                return Ok(Message {
                    bytes,
                    endpoints: Vec::new(),
                });
            }
            wit_channel::Message::Large(m) => m,
        };
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                wit_channel::Endpoint::Sender(r) => {
                    let mut h = self.table.delete(r)?;
                    h.set_holder(None);
                    Endpoint::Sender(h)
                }
                wit_channel::Endpoint::Receiver(r) => Endpoint::Receiver(self.table.delete(r)?),
                wit_channel::Endpoint::TcpListener(r) => Endpoint::Listener(self.table.delete(r)?),
                wit_channel::Endpoint::TcpStream(r) => Endpoint::Stream(self.table.delete(r)?),
            });
        }
        Ok(Message {
            bytes: m.bytes.into(),
            endpoints,
        })
    }

    /// Hand a message to the guest: its endpoints enter this store's table.
    pub(crate) fn give_message(&mut self, m: Message) -> wasmtime::Result<wit_channel::Message> {
        if m.endpoints.is_empty()
            && let Some((len, [w0, w1, w2])) = m.bytes.to_words()
        {
            return Ok(wit_channel::Message::Small(wit_channel::SmallMessage {
                len,
                w0,
                w1,
                w2,
            }));
        }
        let mut endpoints = Vec::with_capacity(m.endpoints.len());
        for e in m.endpoints {
            endpoints.push(match e {
                Endpoint::Sender(mut h) => {
                    h.set_holder(Some(self.holder.clone()));
                    wit_channel::Endpoint::Sender(self.table.push(h)?)
                }
                Endpoint::Receiver(h) => wit_channel::Endpoint::Receiver(self.table.push(h)?),
                Endpoint::Listener(h) => wit_channel::Endpoint::TcpListener(self.table.push(h)?),
                Endpoint::Stream(h) => wit_channel::Endpoint::TcpStream(self.table.push(h)?),
            });
        }
        Ok(wit_channel::Message::Large(wit_channel::LargeMessage {
            bytes: m.bytes.into_vec(),
            endpoints,
        }))
    }

    /// In a deterministic run, move virtual time on by the fuel burnt since the last
    /// call (`left` is the store's fuel now), in steps of a microsecond at least
    /// (each step costs the scheduler a little).
    fn clock(&mut self, schedule: &Schedule, left: u64) {
        let used = self.fuel_start.saturating_sub(left);
        let unclocked = used.saturating_sub(self.fuel_clocked);
        if unclocked >= 1_000 {
            schedule.burnt(unclocked);
            self.fuel_clocked = used;
        }
    }

    /// Record the fuel used so far (`left` is the store's fuel now), and charge it
    /// to the run's budget if there is one. Errors once the budget is spent.
    fn fuel_used(&mut self, left: u64) -> wasmtime::Result<()> {
        let used = self.fuel_start.saturating_sub(left);
        self.member.fuel.store(used, std::sync::atomic::Ordering::Relaxed);
        if self.run.limits.fuel_budget.is_none() {
            return Ok(());
        }
        let delta = used.saturating_sub(self.fuel_charged);
        if delta == 0 {
            return Ok(());
        }
        self.fuel_charged = used;
        let me = &self.me;
        if self.run.charge_fuel(delta, |budget| {
            me.failure(FailureKind::FuelExhausted, RunFuelExhausted(budget).to_string())
        }) {
            Ok(())
        } else {
            Err(RunFuelExhausted(self.run.limits.fuel_budget.unwrap_or(0)).into())
        }
    }
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

/// Takes a microthread out of its run's members when its task ends, however it
/// ends (returned, failed, or aborted), and counts its end.
struct Membership {
    run: Arc<Run>,
    id: u64,
    failed: bool,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(member) = self.run.members.remove(self.id) {
            self.run.count_end(
                self.failed,
                member.sent.load(std::sync::atomic::Ordering::Relaxed),
            );
        }
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
            self.done
                .complete(Err(self.me.failure(FailureKind::Cancelled, "cancelled".into())));
        }
    }
}

/// How a spawned microthread relates to the one that spawned it.
pub(crate) enum Link<'a> {
    /// A structured child of `parent`: its parent does not finish before it, it is
    /// cancelled with its parent, and its failure, if nobody joins it, cancels its
    /// siblings and fails its parent.
    Child(&'a Arc<Member>),
    /// Detached: nobody waits for it; its failure, if nobody joins it, goes to the
    /// run's failure handler.
    Detached,
}

/// Start a microthread of `run` at `function` (through `trampoline`) with
/// `argument`, as a task on the run's workers. Returns its completion, where its
/// joiner will find its outcome, and its member, to cancel it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    run: &Arc<Run>,
    image: &Arc<Image>,
    link: Link<'_>,
    trampoline: u32,
    function: u32,
    argument: Message,
    name: Option<String>,
) -> Result<(Arc<Completion>, Arc<Member>), (Refused, Message)> {
    let slot = match run.reserve() {
        Ok(slot) => slot,
        Err(refused) => return Err((refused, argument)),
    };
    let me = run.identify(name.map(Arc::from));
    let unjoined: Unjoined = match link {
        Link::Child(parent) => {
            let (run, parent) = (Arc::downgrade(run), Arc::downgrade(parent));
            Box::new(move |f| child_failed(&run, &parent, f))
        }
        Link::Detached => {
            let run = Arc::downgrade(run);
            Box::new(move |f| {
                if let Some(run) = run.upgrade() {
                    run.report_failure(&f);
                }
            })
        }
    };
    let completion = Arc::new(Completion::new(&me, unjoined, run.budget.clone()));
    let done = completion.clone();
    let start = Start::Entry {
        trampoline,
        function,
        argument,
    };
    let parent = match link {
        Link::Child(parent) => Some(parent),
        Link::Detached => None,
    };
    let (member, _task) = launch(
        run,
        image,
        slot,
        me,
        parent,
        start,
        Some(completion.clone()),
        move |run, me, ending| {
            let outcome = match ending {
                Ending::Returned(message) => Ok(message),
                Ending::Failed(f) => Err(f),
                Ending::Exit(code) => {
                    run.request_exit(code);
                    Err(me.failure(
                        FailureKind::Exited,
                        format!("it exited the program with code {code}"),
                    ))
                }
                Ending::MainErr => Err(me.failure(FailureKind::Trap, "it returned an error".into())),
            };
            done.complete(outcome);
        },
    );
    Ok((completion, member))
}

/// A structured child failed and nobody can join it any more: its parent fails with
/// that failure, and is cancelled, and its other children with it.
fn child_failed(run: &Weak<Run>, parent: &Weak<Member>, failure: Failure) {
    let (Some(run), Some(parent)) = (run.upgrade(), parent.upgrade()) else {
        return;
    };
    let doom = parent.me.failure(
        FailureKind::ChildFailed,
        format!("a child failed and nobody joined it: {failure}"),
    );
    if parent.doom(doom) {
        run.cancel_member(&parent, true);
    }
}

/// Start the run's `main` (microthread 0) as a task on the run's workers.
pub(crate) fn start_main(run: &Arc<Run>, image: &Arc<Image>) -> Result<Task<Ending>, Refused> {
    let slot = run.reserve()?;
    let me = run.identify(Some(Arc::from("main")));
    let (_, task) = launch(run, image, slot, me, None, Start::Main, None, |run, _, ending| {
        if let Ending::Exit(code) = ending {
            // An exit from `main` ends the program at once, as one from any other
            // microthread does: no cleanup for the detached ones. The supervisor
            // learns of it from the task's end, which comes right after.
            run.note_exit(code);
        }
        ending
    });
    Ok(task)
}

/// Enter microthread `me` in its run (and as a child of `parent`) and start its
/// task, which runs it to its end and hands how it ended to `finish`. The task frees
/// its slot and leaves the run's members however it ends; aborted before it
/// finished, it completes `completion` as cancelled. A microthread born into a
/// cancellation (its run's, or its parent's) starts cancelled.
#[allow(clippy::too_many_arguments)]
fn launch<T: Send + 'static>(
    run: &Arc<Run>,
    image: &Arc<Image>,
    slot: Slot,
    me: Identity,
    parent: Option<&Arc<Member>>,
    start: Start,
    completion: Option<Arc<Completion>>,
    finish: impl FnOnce(&Run, &Identity, Ending) -> T + Send + 'static,
) -> (Arc<Member>, Task<T>) {
    let member = run.members.insert(me.clone(), parent.map(|p| p.me.id));
    tracing::debug!(target: "weft::microthread", id = me.id, name = ?me.name, parent = ?member.parent, "spawn");
    if let Some(parent) = parent {
        parent.adopt(&member);
    }
    if run.is_cancelling() {
        // The run's end enforces the grace period.
        member.cancel.request();
    } else if parent.is_some_and(|p| p.cancel.is_requested()) {
        // Born into its parent's cancellation: it gets the grace period the
        // others got, and is stopped at its end.
        run.cancel_member(&member, true);
    }
    let membership = Membership {
        run: run.clone(),
        id: me.id,
        // Until it ends otherwise: an aborted microthread was cancelled.
        failed: true,
    };
    let cancelled = completion
        .clone()
        .map(|done| CompleteOnDrop { done, me: me.clone() });
    let main = completion.is_none();
    let (task_run, image, task_member) = (run.clone(), image.clone(), member.clone());
    let id = me.id;
    let task = async move {
        let _slot = slot;
        let mut membership = membership;
        let _cancelled = cancelled;
        let ending = run_to_end(task_run.clone(), image, task_member, completion, start).await;
        membership.failed = matches!(ending, Ending::Failed(_));
        match &ending {
            Ending::Failed(f) => {
                tracing::debug!(target: "weft::microthread", id = me.id, kind = ?f.kind, failure = %f.summary(), "failure")
            }
            _ => tracing::debug!(target: "weft::microthread", id = me.id, "finish"),
        }
        let done = finish(&task_run, &me, ending);
        drop(membership);
        task_run.ended_in_schedule(main);
        done
    };
    let schedule = run.schedule().cloned();
    let traced = Arc::downgrade(&member);
    let task = run.spawn_microthread(task, move |task| {
        // Only a deterministic run has a queue of its own, and it has a schedule.
        let schedule = schedule.expect("a deterministic run has a schedule");
        let why = move || match traced.upgrade() {
            Some(m) => traced_state(&m.info().state),
            None => "ended".into(),
        };
        Traced::new(task, schedule, id, why)
    });
    run.set_abort(id, &task.abort_handle());
    (member, task)
}

/// Why a microthread's slice ended, for a schedule trace: what it now waits for,
/// in words that do not depend on the host's clock.
fn traced_state(state: &MicrothreadState) -> String {
    match state {
        MicrothreadState::Running | MicrothreadState::Ready => "yielded".into(),
        MicrothreadState::Sleeping { .. } => "blocked: sleeping".into(),
        other => format!("blocked: {other}"),
    }
}

/// Run one microthread to its end, then wait for its children (prejoin). Returns how
/// it ended, with an unjoined child failure turned into its own failure.
async fn run_to_end(
    run: Arc<Run>,
    image: Arc<Image>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
    start: Start,
) -> Ending {
    let me = member.me.clone();
    // The phases of a microthread's life, as trace events (for the goal table's
    // breakdown of a spawn): instantiating, instantiated, returned, dropped.
    tracing::trace!(name: "instantiating", target: "weft::microthread", id = me.id);
    let mut store = match new_store(&run, image, member.clone(), completion) {
        Ok(store) => store,
        Err(e) => {
            return Ending::Failed(me.failure(
                FailureKind::Trap,
                format!("cannot set up its WASI context: {e:#}"),
            ));
        }
    };
    let result = driver::drive(call(&mut store, start), &member, run.limits.atomic_cap).await;
    tracing::trace!(name: "returned", target: "weft::microthread", id = me.id);
    if run.limits.fuel_budget.is_some()
        && let Ok(left) = store.get_fuel()
    {
        // The last of its fuel. Going over the budget now ends the run (the charge
        // asked for that); this microthread has ended anyway.
        let _over = store.data_mut().fuel_used(left);
    }
    let data = store.data_mut();
    let children = std::mem::take(&mut data.children);
    let ending = match result {
        Ok(ending) => ending,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ending::Exit(*code),
            None => {
                let seen = Seen {
                    panic: data.panic_message.take(),
                    memory_refused: data.memory.refused,
                    table_refused: data.memory.table_refused,
                };
                Ending::Failed(ending::failure(&run, &me, &error, seen))
            }
        },
    };
    // However a cancelled microthread ended (unless it exited the program), it was
    // cancelled: that is what its joiner sees.
    let ending = match ending {
        Ending::Returned(_) | Ending::MainErr if member.cancel.is_requested() => {
            Ending::Failed(me.failure(FailureKind::Cancelled, "cancelled".into()))
        }
        Ending::Failed(f) if member.cancel.is_requested() && f.kind != FailureKind::Cancelled => {
            Ending::Failed(me.failure(
                FailureKind::Cancelled,
                format!("cancelled, and then: {}", f.message),
            ))
        }
        other => other,
    };
    if let Ending::Failed(f) = &ending
        && f.kind != FailureKind::Cancelled
    {
        // The senders it held now close with this failure (a cancelled one's just
        // close).
        data.holder.fail(f.clone());
    }
    drop(store);
    tracing::trace!(name: "dropped", target: "weft::microthread", id = me.id);
    if let Ending::Exit(_) = ending {
        // The whole program ends now: no waiting for children.
        return ending;
    }
    prejoin(&run, &member, children, ending).await
}

fn new_store(
    run: &Arc<Run>,
    image: Arc<Image>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
) -> wasmtime::Result<Store<Microthread>> {
    // Opening the granted directories can fail: then each microthread makes its WASI
    // context when it starts, so that a failure is its failure, not a panic later.
    // Without grants the context is made on the first WASI call: most microthreads
    // never make one.
    let wasi = if run.options.dirs.is_empty() {
        None
    } else {
        Some(run.options.wasi_ctx(
            image.is_alone(),
            run.schedule().map(|s| (s, member.me.id)),
            &run.budget,
        )?)
    };
    let limits = &run.limits;
    let fuel_start = limits.microthread_fuel_budget.unwrap_or(u64::MAX);
    let state = Microthread {
        wasi,
        table: Handles::new(run.handles.clone()),
        run: run.clone(),
        image,
        me: member.me.clone(),
        member,
        holder: Arc::new(Holder::new(completion.map(|c| c as _))),
        panic_message: None,
        wasi_sockets: crate::net::WasiSlots::default(),
        children: Vec::new(),
        pruned_len: 0,
        memory: MemoryLimit {
            max: usize::try_from(limits.max_memory).unwrap_or(usize::MAX),
            refused: false,
            table_refused: false,
        },
        fuel_start,
        fuel_charged: 0,
        fuel_clocked: 0,
    };
    let mut store = Store::new(run.engine(), state);
    // The run's cap on the handles a microthread holds (join handles, channel ends,
    // sockets), in place of wasmtime's 100k: a program that spawns 100k microthreads
    // and then joins them holds 100k join handles.
    store.set_max_component_handles(limits.store_handles as usize);
    store.limiter(|s| &mut s.memory);
    match limits.fuel_slice {
        Some(slice) => {
            // Every `slice` units the fiber yields to the scheduler; the total is the
            // microthread's budget (unlimited unless the run sets one).
            store.set_fuel(fuel_start)?;
            // Every host call, and every fuel yield (a call into the host too),
            // records the fuel used so far (for the live view) and charges it to
            // the run's budget, if it has one; in a deterministic run it also moves
            // virtual time on and sets where the next slice ends (a hook of its
            // own, so that other runs' hot path does not look for a schedule).
            match run.schedule() {
                None => {
                    store.fuel_async_yield_interval(Some(slice))?;
                    store.call_hook(|mut ctx, hook| match hook {
                        CallHook::CallingHost => fuel_used(&mut ctx).map(drop),
                        _ => Ok(()),
                    });
                }
                Some(schedule) => {
                    let schedule = schedule.clone();
                    store.fuel_async_yield_interval(Some(schedule.slice(slice)))?;
                    store.call_hook(move |mut ctx, hook| {
                        if !matches!(hook, CallHook::CallingHost) {
                            return Ok(());
                        }
                        let left = fuel_used(&mut ctx)?;
                        ctx.data_mut().clock(&schedule, left);
                        ctx.fuel_async_yield_interval(Some(schedule.slice(slice)))
                    });
                }
            }
        }
        None if limits.interruptible => {
            // No fuel, so no yields: an epoch tick (sent when the run is cancelled)
            // is what stops a microthread that never calls the host.
            store.epoch_deadline_callback(|ctx| {
                let me = ctx.data();
                Ok(if me.run.is_cancelled() || me.member.cancel.must_stop() {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Continue(1)
                })
            });
            store.set_epoch_deadline(1);
        }
        // Neither: the runtime was built without epoch checks.
        None => {}
    }
    Ok(store)
}

/// Record the fuel a microthread has used so far (its call hook, at each host call
/// and fuel yield); returns the fuel it has left.
fn fuel_used(ctx: &mut wasmtime::StoreContextMut<'_, Microthread>) -> wasmtime::Result<u64> {
    let left = ctx.get_fuel()?;
    ctx.data_mut().fuel_used(left)?;
    Ok(left)
}

async fn call(store: &mut Store<Microthread>, start: Start) -> wasmtime::Result<Ending> {
    let image = store.data().image.clone();
    match start {
        Start::Main => {
            let pre = image
                .command
                .as_ref()
                .ok_or_else(|| wasmtime::format_err!("the program has no `main`"))?;
            // Boxed: the instantiation's future is large, and a microthread's task
            // would otherwise keep room for it all its life.
            let command = Box::pin(pre.instantiate_async(&mut *store))
                .await
                .map_err(|e| instantiate_error(store.data(), e))?;
            not_cancelled(store)?;
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
            let pre = image
                .entry
                .as_ref()
                .ok_or_else(|| wasmtime::format_err!("the program cannot spawn"))?;
            // Boxed, as above.
            let instance = Box::pin(pre.instantiate_async(&mut *store))
                .await
                .map_err(|e| instantiate_error(store.data(), e))?;
            tracing::trace!(name: "instantiated", target: "weft::microthread", id = store.data().me.id);
            not_cancelled(store)?;
            let argument = store.data_mut().give_message(argument)?;
            let result = instance
                .weft_runtime_entry()
                .call_run(&mut *store, trampoline, function, &argument)
                .await?;
            // A result waits on the host until it is joined: it may be no larger
            // than a message.
            let max = store.data().run.limits.max_message_size;
            if result.byte_len() > max as usize {
                return Err(wasmtime::format_err!(
                    "its result of {} bytes is over the message size limit of {max} bytes \
                     (max_message_size): return less (send large data over a channel in \
                     parts), or raise the limit",
                    result.byte_len()
                ));
            }
            Ok(Ending::Returned(store.data_mut().take_message(result)?))
        }
    }
}

/// Refuse to start guest code in a run being cancelled. Checked after the store's
/// epoch deadline is set: a cancellation that this check misses increments the
/// epoch after that, and so still reaches the guest's first epoch check.
///
/// Without fuel, a microthread whose cancellation was asked for before it started
/// (it waited for a worker) does not start either: the epoch tick that would have
/// stopped it where it is has passed already, and nothing else would (with fuel,
/// its first fuel yield does, unless a blocking call saw the cancellation first).
fn not_cancelled(store: &Store<Microthread>) -> wasmtime::Result<()> {
    let me = store.data();
    let unmetered = me.run.limits.fuel_slice.is_none();
    if me.run.is_cancelled() || (unmetered && me.member.cancel.must_stop()) {
        return Err(wasmtime::Trap::Interrupt.into());
    }
    Ok(())
}

/// Instantiation fails for want of resources (memory, mappings): say which.
fn instantiate_error(state: &Microthread, error: wasmtime::Error) -> wasmtime::Error {
    let hint = crate::limits::map_count_hint(state.run.live());
    error.context(format!("cannot instantiate the microthread{hint}"))
}

/// Wait for every child. A child failure nobody joined (and no channel carried to a
/// reader) becomes this microthread's failure, and cancels the other children; a
/// failure that made this microthread fail already (`doom`) is its end.
async fn prejoin(
    run: &Arc<Run>,
    member: &Arc<Member>,
    children: Vec<Arc<Completion>>,
    ending: Ending,
) -> Ending {
    let me = &member.me;
    for child in children {
        if !child.is_finished() {
            let _blocked = run.members.block(
                member,
                Waiting::Child(child.id()),
                Probe::Completion(child.clone()),
                false,
            );
            child.finished().await;
        }
        if let Some(f) = child.unjoined_failure()
            && !child.is_reported()
            && member.doomed().is_none()
        {
            member.doom(me.failure(
                FailureKind::ChildFailed,
                format!("a child failed and nobody joined it: {f}"),
            ));
            run.cancel_member(member, true);
        }
    }
    match (ending, member.doomed()) {
        (Ending::Exit(code), _) => Ending::Exit(code),
        (Ending::Returned(_) | Ending::MainErr, Some(doom)) => Ending::Failed(doom.clone()),
        (Ending::Failed(f), Some(doom)) if f.kind == FailureKind::Cancelled => Ending::Failed(doom.clone()),
        (ending, _) => ending,
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryLimit;
    use crate::limits::MAX_TABLE_ELEMENTS;
    use wasmtime::ResourceLimiter;

    fn limiter() -> MemoryLimit {
        MemoryLimit {
            max: 1 << 20,
            refused: false,
            table_refused: false,
        }
    }

    #[test]
    fn tables_may_not_grow_past_weft_s_limit_whatever_they_declare() {
        let mut l = limiter();
        // Up to the limit, a table without a maximum of its own grows…
        assert!(l.table_growing(10, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(!l.table_refused);
        // … and not one element further, nor by a huge step, whatever it declares.
        assert!(
            !l.table_growing(MAX_TABLE_ELEMENTS, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
        assert!(l.table_refused, "a refusal by weft's limit is remembered");
        let mut l = limiter();
        assert!(!l.table_growing(0, usize::MAX, Some(usize::MAX)).unwrap());
        assert!(l.table_refused);
        // The table's own maximum holds too, and is not weft's refusal.
        let mut l = limiter();
        assert!(!l.table_growing(5, 11, Some(10)).unwrap());
        assert!(!l.table_refused);
        assert!(l.table_growing(5, 10, Some(10)).unwrap());
        // Memories are not counted as tables.
        assert!(!l.memory_growing(0, 2 << 20, None).unwrap());
        assert!(l.refused && !l.table_refused);
    }
}
