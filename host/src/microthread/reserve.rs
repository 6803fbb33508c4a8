//! Instances made ahead of need, and stores dropped off the critical path: the
//! two halves of a spawn's cost that need not be paid while someone waits.
//!
//! A worker with nothing to run makes fresh, never-run instances of a run's
//! program (a few per run, [`KEPT_PER_RUN`]), and a spawn takes one when one is
//! there: it skips its instantiation. A microthread that ends lets go of what
//! others can see at once (its handles, its WASI context), wakes its joiner, and
//! leaves its store to a worker with nothing to run. Both are bounded by the
//! runtime's spare instances ([`SPARE_INSTANCES`](crate::limits::SPARE_INSTANCES))
//! and by the chores a scheduler keeps waiting: past them, a spawn instantiates
//! and an end drops in place, as before. Every microthread still starts in a
//! fresh instance. A deterministic run does neither: its schedule stays what its
//! seed says.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use wasmtime::Store;
use wasmtime::component::Instance;

use super::store::{Image, Microthread, adopt, new_store};
use crate::limits::QuotaUnit;
use crate::run::{Completion, Identity, Member, Run};

/// How many fresh instances a run keeps ready (or being made) for its spawns.
const KEPT_PER_RUN: u32 = 2;

/// The largest linear memory whose store is left to an idle worker to drop: a
/// larger one is dropped in place, so that what it holds is given back at once
/// (no more than 16 of these wait, `SPARE_INSTANCES`).
const DROP_LATER_MAX: usize = 4 << 20;

/// How many times an instantiation made ahead of need is polled before it is
/// given up: it waits for nothing, so it ends at the first poll unless a fuel
/// yield interrupts it.
const POLLS: u32 = 64;

/// A fresh instance, never run, in a store of its own, holding one of the
/// runtime's spare instances.
struct Prepared {
    store: Store<Microthread>,
    instance: Instance,
    _spare: QuotaUnit,
}

/// Whether `run` makes instances ahead of need: a run on the workers (not a
/// deterministic one) of a program that spawns, unless its runtime says not to.
fn ahead(run: &Run, image: &dyn Image) -> bool {
    run.ahead_of_need && image.can_spawn()
}

/// A fresh instance for `member`, made ahead of need, if one is ready: its store
/// made `member`'s. Asks for another to be made.
pub(super) fn take(
    run: &Arc<Run>,
    image: &Arc<dyn Image>,
    member: &Arc<Member>,
    completion: &Option<Arc<Completion>>,
) -> Option<(Store<Microthread>, Instance)> {
    if !ahead(run, image.as_ref()) {
        return None;
    }
    let taken = run
        .prepared
        .take()
        .and_then(|kept| kept.downcast::<Prepared>().ok());
    refill(run, image);
    let Prepared {
        mut store,
        instance,
        _spare,
    } = *taken?;
    match adopt(&mut store, member.clone(), completion.clone()) {
        Ok(()) => {
            run.count_prepared_start();
            Some((store, instance))
        }
        Err(e) => {
            // Not the microthread's failure: it instantiates in place.
            tracing::debug!(target: "weft::microthread", "an instance made ahead of need is not used: {e:#}");
            None
        }
    }
}

/// Ask an idle worker to make one more instance for `run`, unless it keeps
/// enough (or is making them).
fn refill(run: &Arc<Run>, image: &Arc<dyn Image>) {
    if !run.prepared.want(KEPT_PER_RUN) {
        return;
    }
    let (weak, image) = (Arc::downgrade(run), image.clone());
    if run.chore(Box::new(move || make_and_keep(&weak, image))).is_err() {
        run.prepared.made_none();
    }
}

/// A chore: make a fresh instance for the run, and keep it on its shelf.
fn make_and_keep(run: &Weak<Run>, image: Arc<dyn Image>) {
    let Some(run) = run.upgrade() else {
        return;
    };
    match make(&run, image) {
        Some(prepared) => {
            if let Err(refused) = run.prepared.put(Box::new(prepared)) {
                // The run has ended meanwhile.
                drop(refused);
            }
        }
        None => run.prepared.made_none(),
    }
}

/// Make a fresh instance of `image` for `run`, unless the run is ending or no
/// spare instance is left.
fn make(run: &Arc<Run>, image: Arc<dyn Image>) -> Option<Prepared> {
    if run.is_cancelling() {
        return None;
    }
    let spare = run.spare.unit()?;
    let pool = run.pool.units(run.limits.footprint)?;
    let holder = Identity {
        id: u64::MAX,
        name: None,
    };
    let member = crate::run::Members::unlisted(holder, None);
    let mut store = match new_store(run, image.clone(), member, None, Some(pool)) {
        Ok(store) => store,
        Err(e) => {
            // The spawn that would have taken it makes its own, and fails with this.
            tracing::debug!(target: "weft::microthread", "no instance made ahead of need: {e:#}");
            return None;
        }
    };
    let instance = {
        let mut instantiating = pin!(image.instance_pre().instantiate_async(&mut store));
        let mut cx = Context::from_waker(Waker::noop());
        let mut done = None;
        for _ in 0..POLLS {
            if let Poll::Ready(result) = instantiating.as_mut().poll(&mut cx) {
                done = Some(result);
                break;
            }
        }
        match done {
            Some(Ok(instance)) => instance,
            Some(Err(e)) => {
                tracing::debug!(target: "weft::microthread", "no instance made ahead of need: {e:#}");
                return None;
            }
            None => return None,
        }
    };
    Some(Prepared {
        store,
        instance,
        _spare: spare,
    })
}

/// Drop an ended microthread's store: what others can see of it at once, the rest
/// (its memory and instance) on a worker with nothing to run, if its memory is
/// small ([`DROP_LATER_MAX`]) and a spare instance and a chore are free for it.
pub(super) fn drop_store(run: &Arc<Run>, mut store: Store<Microthread>) {
    store.data_mut().release();
    if !run.ahead_of_need || store.data().memory_size() > DROP_LATER_MAX {
        return;
    }
    let Some(spare) = run.spare.unit() else {
        return;
    };
    if let Err(refused) = run.chore(Box::new(move || drop((store, spare)))) {
        // Dropped here, now.
        drop(refused);
    }
}
