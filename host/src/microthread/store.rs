//! A microthread's `Store`: its data ([`Microthread`], what host functions see),
//! the program image it is instantiated from ([`Image`]), its memory and table
//! limiter, its fuel accounting, and the hooks `new_store` sets (fuel yields and
//! charges, virtual time, epoch interruption).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::{Instance, InstancePre};
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::ending::RunFuelExhausted;
use super::handles::Handles;
use crate::channel::{Holder, Message};
use crate::deterministic::Schedule;
use crate::error::FailureKind;
use crate::limits::PoolUnits;
use crate::run::{Completion, Identity, Member, Run};
use crate::sync::Pruned;

/// A program's component, pre-linked, ready to instantiate: what every microthread
/// of every run of the program starts from. The WIT glue implements it (`wit::Exports`),
/// and only it knows the generated bindings: a microthread instantiates
/// [`instance_pre`](Image::instance_pre) in its store and asks the glue to call
/// into that instance, with and for the host's own types.
pub(crate) trait Image: Send + Sync + 'static {
    /// The component, pre-linked against the host.
    fn instance_pre(&self) -> &InstancePre<Microthread>;

    /// Whether the program has a `main` (it exports `wasi:cli/run`).
    fn has_main(&self) -> bool;

    /// Whether the program can spawn microthreads (it exports
    /// `weft:runtime/entry`). One that cannot runs alone: a run of it is one
    /// microthread.
    fn can_spawn(&self) -> bool;

    /// The program's content hash (BLAKE3 of the file it came from, in hex):
    /// nodes of a cluster spawn on each other only for the same program.
    fn program(&self) -> &str;

    /// What each microthread of the program takes from the instance pool.
    fn footprint(&self) -> crate::limits::Footprint;

    /// The name of the function a spawn of `trampoline` and `function` runs, if
    /// the program says ([`EntryNames`](crate::entry_names::EntryNames)): the default name of
    /// the microthread.
    fn entry_name(&self, trampoline: u32, function: u32) -> Option<&std::sync::Arc<str>>;

    /// Whether the program handles HTTP requests (it exports
    /// `wasi:http/incoming-handler`).
    fn serves_http(&self) -> bool;

    /// Call the program's request handler in `instance` with `request`. The
    /// response goes out through the request's `respond` when the guest sets it,
    /// which may be before the call returns.
    fn call_request<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
        request: Request,
    ) -> Call<'a, ()>;

    /// Call `main` in `instance`; `Ok(Err(()))` when it returned an error.
    fn call_main<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
    ) -> Call<'a, Result<(), ()>>;

    /// Call a spawned function in `instance`; its result.
    fn call_spawned<'a>(
        &'a self,
        store: &'a mut Store<Microthread>,
        instance: Instance,
        spawned: Spawned,
    ) -> Call<'a, Message>;
}

/// A call into a microthread's instance, under way. Boxed: it is the glue's
/// future, whose type a microthread cannot name.
pub(crate) type Call<'a, T> = Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

/// A spawned function, as the guest's trampoline calls it: the function (an index
/// into the guest's table, through `trampoline`) and its argument.
pub(crate) struct Spawned {
    pub(crate) trampoline: u32,
    pub(crate) function: u32,
    pub(crate) argument: Message,
}

/// An HTTP request a microthread handles (`wasi:http/incoming-handler`): the
/// request, and where its response goes once the guest sets it.
pub(crate) struct Request {
    pub(crate) request: hyper::Request<hyper::body::Incoming>,
    pub(crate) respond: Box<dyn FnOnce(Responded) + Send + Sync>,
}

/// A handler's response, as the guest sets it: its head (its body follows as
/// the guest writes it), or the error it gave instead.
pub(crate) type Responded = Result<
    hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
    wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
>;

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
    pub(crate) image: Arc<dyn Image>,
    pub(crate) me: Identity,
    /// This microthread as its run knows it (marked while it blocks).
    pub(crate) member: Arc<Member>,
    /// Senders this microthread holds carry its failure, should it fail.
    pub(crate) holder: Arc<Holder>,
    pub(crate) panic_message: Option<String>,
    /// Its program's footprint of the instance pool's core instances and tables,
    /// held as long as the store is, which holds them in the pool.
    _pool: Option<PoolUnits>,
    /// The run's socket quota slots its WASI sockets hold.
    pub(crate) wasi_sockets: crate::net::WasiSlots,
    /// Its `wasi:http` state, made on its first `wasi:http` call.
    http: Option<Box<crate::net::http::HttpState>>,
    /// Children not yet known to be settled: the microthread does not finish before
    /// them (it waits for its children), and a failure nobody joined fails it.
    pub(super) children: Pruned<Vec<Arc<Completion>>>,
    /// Its linear memory's limit, and whether a growth was refused.
    pub(super) memory: MemoryLimit,
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
pub(super) struct MemoryLimit {
    max: usize,
    pub(super) refused: bool,
    pub(super) table_refused: bool,
    /// The size its linear memory was last granted, in bytes.
    pub(super) granted: usize,
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
        if ok {
            self.granted = desired;
        }
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
        let (run, alone, id) = (&self.run, alone(&*self.image), self.me.id);
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
    /// Its handles' table and its `wasi:http` state (made now if it has none):
    /// what `wasi:http`'s calls see.
    pub(crate) fn http_parts(
        &mut self,
    ) -> (
        &mut wasmtime::component::ResourceTable,
        &mut crate::net::http::HttpState,
    ) {
        let run = &self.run;
        let state = self.http.get_or_insert_with(|| {
            Box::new(crate::net::http::HttpState {
                ctx: wasmtime_wasi_http::WasiHttpCtx::new(),
                outgoing: run.outgoing_http(),
            })
        });
        (self.table.wasi(), state)
    }

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
        self.children.make_room(32, |c| !c.is_settled()).push(child);
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
    pub(super) fn fuel_used(&mut self, left: u64) -> wasmtime::Result<()> {
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

/// Whether each run of `image` is one microthread: it can neither spawn nor
/// serve requests (each of which is a microthread of its own).
fn alone(image: &dyn Image) -> bool {
    !image.can_spawn() && !image.serves_http()
}

pub(super) fn new_store(
    run: &Arc<Run>,
    image: Arc<dyn Image>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
    pool: Option<PoolUnits>,
) -> wasmtime::Result<Store<Microthread>> {
    // Opening the granted directories can fail: then each microthread makes its WASI
    // context when it starts, so that a failure is its failure, not a panic later.
    // Without grants the context is made on the first WASI call: most microthreads
    // never make one.
    let wasi = if run.options.dirs.is_empty() {
        None
    } else {
        Some(run.options.wasi_ctx(
            alone(&*image),
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
        http: None,
        children: Pruned::default(),
        memory: MemoryLimit {
            max: usize::try_from(limits.max_memory).unwrap_or(usize::MAX),
            refused: false,
            table_refused: false,
            granted: 0,
        },
        fuel_start,
        fuel_charged: 0,
        fuel_clocked: 0,
        _pool: pool,
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
                Ok(if me.run.is_aborting() || me.member.cancel.must_abort() {
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

/// Make `store`, made ahead of need with a member of its own, the store of
/// `member`: as [`new_store`] would have made it for it.
pub(super) fn adopt(
    store: &mut Store<Microthread>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
) -> wasmtime::Result<()> {
    let data = store.data_mut();
    data.me = member.me.clone();
    data.member = member;
    data.holder = Arc::new(Holder::new(completion.map(|c| c as _)));
    let (fuel_start, limits) = (data.fuel_start, &data.run.limits);
    match limits.fuel_slice {
        // Its instantiation burnt some: a microthread's fuel counts from its start.
        Some(_) => store.set_fuel(fuel_start)?,
        // The epoch may have moved on since it was made.
        None if limits.interruptible => store.set_epoch_deadline(1),
        None => {}
    }
    Ok(())
}

impl Microthread {
    /// The size of its linear memory, in bytes.
    pub(super) fn memory_size(&self) -> usize {
        self.memory.granted
    }

    /// Let go of what others can see this microthread hold: its handles (channel
    /// ends, join handles, sockets, WASI streams), its WASI context and its socket
    /// slots. What stays is its memory and instance, which nobody else sees: the
    /// store may then be dropped later, off the critical path.
    pub(super) fn release(&mut self) {
        self.wasi = None;
        self.http = None;
        self.table = Handles::new(self.run.handles.clone());
        self.wasi_sockets = crate::net::WasiSlots::default();
    }
}

/// Record the fuel a microthread has used so far (its call hook, at each host call
/// and fuel yield); returns the fuel it has left.
fn fuel_used(ctx: &mut wasmtime::StoreContextMut<'_, Microthread>) -> wasmtime::Result<u64> {
    let left = ctx.get_fuel()?;
    ctx.data_mut().fuel_used(left)?;
    Ok(left)
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
            granted: 0,
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

    #[test]
    fn the_limiter_knows_the_size_of_the_memory_it_granted() {
        let mut l = limiter();
        assert!(l.memory_growing(0, 64 << 10, None).unwrap());
        assert!(l.memory_growing(64 << 10, 512 << 10, None).unwrap());
        assert_eq!(l.granted, 512 << 10);
        // A refused growth leaves it as it was.
        assert!(!l.memory_growing(512 << 10, 2 << 20, None).unwrap());
        assert_eq!(l.granted, 512 << 10);
    }
}
