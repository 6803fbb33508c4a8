//! A microthread's life once its task runs: its store is made, the program
//! instantiated and called through the driver, its end settled (cancelled, failed,
//! exited), and then it waits for its children.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};
use wasmtime_wasi::I32Exit;

use super::ending::{self, Evidence};
use super::store::{Image, Microthread, Request, Spawned, new_store};
use super::{driver, reserve};
use crate::channel::Message;
use crate::error::FailureKind;
use crate::limits::PoolUnits;
use crate::run::{BlockedOn, Completion, Ending, Member, Probe, Run};

/// Where a microthread starts.
pub(super) enum Start {
    /// `wasi:cli/run`: the program's `main`.
    Main,
    /// `weft:runtime/entry.run`: a spawned function.
    Spawned(Spawned),
    /// `wasi:http/incoming-handler.handle`: an HTTP request.
    Request(Request),
    /// Nowhere here: it runs on another node, and this is its stand-in, which
    /// ends as `body` says (given the stand-in's member, to watch its
    /// cancellation).
    Remote { node: String, body: RemoteBody },
    /// Nowhere: a node's run without `main`, which serves spawns from the other
    /// nodes until it is cancelled.
    Serving,
}

/// How a stand-in ends: the result or the failure of the microthread it stands
/// in for.
pub(crate) type RemoteBody = Box<
    dyn FnOnce(
            Arc<Member>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Message, crate::error::Failure>> + Send>,
        > + Send,
>;

/// Run one microthread to its end, then wait for its children. Returns how
/// it ended, with an unjoined child failure turned into its own failure.
pub(super) async fn run_to_end(
    run: Arc<Run>,
    image: Arc<dyn Image>,
    member: Arc<Member>,
    completion: Option<Arc<Completion>>,
    start: Start,
    pool: Option<PoolUnits>,
) -> Ending {
    let start = match start {
        Start::Remote { node, body } => return stand_in(&run, &member, node, body).await,
        Start::Serving => return serve(&run, &member).await,
        start => start,
    };
    let me = member.me.clone();
    // The phases of a microthread's life, as trace events (for the goal table's
    // breakdown of a spawn): instantiating, instantiated, returned, dropped.
    tracing::trace!(name: "instantiating", target: "weft::microthread", id = me.id);
    // A spawned function starts in an instance made ahead of need, if one is ready.
    let prepared = match &start {
        Start::Spawned(_) => reserve::take(&run, &image, &member, &completion),
        _ => None,
    };
    let (mut store, instance) = match prepared {
        Some((store, instance)) => {
            // One made ahead holds its own units of the pool: these go back now,
            // not when the microthread ends.
            drop(pool);
            (store, Some(instance))
        }
        None => match new_store(&run, image, member.clone(), completion, pool) {
            Ok(store) => (store, None),
            Err(e) => {
                return Ending::Failed(me.failure(
                    FailureKind::Trap,
                    format!("cannot set up its WASI context: {e:#}"),
                ));
            }
        },
    };
    let result = driver::drive(call(&mut store, instance, start), &member, run.limits.atomic_cap).await;
    tracing::trace!(name: "returned", target: "weft::microthread", id = me.id);
    if run.limits.fuel_budget.is_some()
        && let Ok(left) = store.get_fuel()
    {
        // The last of its fuel. Going over the budget now ends the run (the charge
        // asked for that); this microthread has ended anyway.
        let _over = store.data_mut().fuel_used(left);
    }
    let data = store.data_mut();
    let children = data.children.take();
    let ending = match result {
        Ok(ending) => ending,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ending::Exit(*code),
            None => {
                let evidence = Evidence {
                    panic: data.panic_message.take(),
                    memory_refused: data.memory.refused,
                    table_refused: data.memory.table_refused,
                };
                Ending::Failed(ending::failure(&run, &me, &error, evidence))
            }
        },
    };
    // However a cancelled microthread ended (unless it exited the program), it was
    // cancelled: that is what its joiner sees.
    let ending = match ending {
        Ending::Returned(_) | Ending::MainReturnedErr if member.cancel.is_requested() => {
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
    reserve::drop_store(&run, store);
    tracing::trace!(name: "dropped", target: "weft::microthread", id = me.id);
    if let Ending::Exit(_) = ending {
        // The whole program ends now: no waiting for children.
        return ending;
    }
    if member.cancel.owns_shutdown() && member.cancel.is_requested() {
        // Its cancellation stopped at it, and it has ended: the children it did not
        // stop are cancelled now, as any cancelled parent's are.
        for child in member.children() {
            run.cancel_member(&child, true);
        }
    }
    wait_for_children(&run, &member, children, ending).await
}

/// A stand-in's life: it waits for the end of the microthread it stands in for,
/// and ends as it did (with its own identity: the one its joiner and monitors
/// know). Cancelled, it asks that one to stop, and still waits for its end.
async fn stand_in(run: &Arc<Run>, member: &Arc<Member>, node: String, body: RemoteBody) -> Ending {
    let _blocked = run
        .members
        .block(member, BlockedOn::Remote(node), Probe::Nothing, true);
    let outcome = body(member.clone()).await;
    let me = &member.me;
    match outcome {
        // However it ended, it was cancelled: as for a microthread here.
        Ok(_) if member.cancel.is_requested() => {
            Ending::Failed(me.failure(FailureKind::Cancelled, "cancelled".into()))
        }
        Ok(result) => Ending::Returned(result),
        Err(f) => Ending::Failed(me.failure(f.kind, f.message)),
    }
}

/// A node's run without `main`: it waits, serving spawns from the other nodes (which
/// start detached in its run), until it is cancelled.
async fn serve(run: &Arc<Run>, member: &Arc<Member>) -> Ending {
    let _blocked = run
        .members
        .block(member, BlockedOn::Serving, Probe::Nothing, true);
    member.cancel.requested().await;
    Ending::Returned(Message::default())
}

/// Call `start` in `instance`, or in a fresh instance made now.
async fn call(
    store: &mut Store<Microthread>,
    instance: Option<Instance>,
    start: Start,
) -> wasmtime::Result<Ending> {
    let image = store.data().image.clone();
    let instance = match instance {
        Some(instance) => {
            not_cancelled(store)?;
            instance
        }
        None => instantiate(store, image.instance_pre()).await?,
    };
    Ok(match start {
        Start::Main => match image.call_main(store, instance).await? {
            Ok(()) => Ending::Returned(Message::default()),
            Err(()) => Ending::MainReturnedErr,
        },
        Start::Spawned(spawned) => {
            // A phase of a spawn (see `run_to_end`); `main` has no such event.
            tracing::trace!(name: "instantiated", target: "weft::microthread", id = store.data().me.id);
            Ending::Returned(image.call_spawned(store, instance, spawned).await?)
        }
        Start::Request(request) => {
            image.call_request(store, instance, request).await?;
            Ending::Returned(Message::default())
        }
        Start::Remote { .. } | Start::Serving => unreachable!("run_to_end runs these without a store"),
    })
}

/// Instantiate the program in `store`, unless the run is being cancelled (see
/// [`not_cancelled`]). Boxed: the instantiation's future is large, and a
/// microthread's task would otherwise keep room for it all its life.
async fn instantiate(
    store: &mut Store<Microthread>,
    pre: &InstancePre<Microthread>,
) -> wasmtime::Result<Instance> {
    let instance = Box::pin(pre.instantiate_async(&mut *store))
        .await
        .map_err(|e| instantiate_error(store.data(), e))?;
    not_cancelled(store)?;
    Ok(instance)
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
    if me.run.is_aborting() || (unmetered && me.member.cancel.must_abort()) {
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
async fn wait_for_children(
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
                BlockedOn::Child(child.id()),
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
        (Ending::Returned(_) | Ending::MainReturnedErr, Some(doom)) => Ending::Failed(doom.clone()),
        (Ending::Failed(f), Some(doom)) if f.kind == FailureKind::Cancelled => Ending::Failed(doom.clone()),
        (ending, _) => ending,
    }
}
