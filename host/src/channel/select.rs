//! `select`: complete exactly one of several channel operations, waiting if none is
//! ready. Every blocking send and receive is a `select` of one operation.
//!
//! The channels involved are locked together, in order of address (so two selects
//! never lock in opposite orders; ids are only unique within a run, and channels of
//! several runs can meet in one select); the operations are tried in a random order
//! (a shuffle, so that each ready operation is as likely to complete as any other);
//! if none is ready a waiter is registered on every channel before the locks are
//! released, so no wake-up can be missed.

use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::waiter::{Outcome, Progress, Waiter};
use super::{Channel, Charge, Message, Ready, SendStep, State};
use crate::deterministic::Schedule;

/// One operation of a select.
pub(crate) enum Op {
    Recv(Arc<Channel>),
    /// A send, and whose budget its message counts against if it is buffered
    /// ([`charge`](super::charge)).
    Send(Arc<Channel>, Message, Charge),
}

impl Op {
    fn channel(&self) -> &Arc<Channel> {
        match self {
            Op::Recv(c) | Op::Send(c, _, _) => c,
        }
    }

    /// The message of a send that did not happen (`None` for a receive).
    pub(crate) fn into_unsent(self) -> Option<Message> {
        match self {
            Op::Send(_, m, _) => Some(m),
            Op::Recv(_) => None,
        }
    }
}

/// The operations of a select. Held inline when there is one (every plain send
/// and receive), so that such a select allocates nothing for them; on the heap
/// otherwise. A `Vec` or an array of one converts into it (`Into<Ops>`).
pub(crate) type Ops = SmallVec<[Op; 1]>;

pub(crate) use super::waiter::Unsent;

/// The channels a blocked select waits on; inline for one.
type Channels = SmallVec<[Arc<Channel>; 1]>;

/// How a select ended.
pub(crate) enum Selected {
    /// Operation `index` completed (or found its channel closed or failed).
    Op(usize, Ready),
    /// The timeout ran out first.
    Timeout,
    /// Not blocking, and nothing was ready.
    WouldBlock,
    /// The waiting microthread was cancelled ([`Waiter::interrupt`]).
    Interrupted,
    /// What the select also watched (the `also` of [`Pending::wait`]) resolved first,
    /// with this value.
    Also(usize),
}

/// Something besides channels that a select waits for (a socket becoming ready):
/// resolves to a value the select returns as [`Selected::Also`].
pub(crate) type Also<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send + 'a>>;

/// Removes a blocked select's entries from its channels, however the wait ends
/// (even when the waiting future is dropped).
struct Registration {
    waiter: Arc<Waiter>,
    channels: Channels,
    /// A select of one operation completed by that operation: whoever completed it
    /// already took its one entry off the channel, so there is nothing to remove.
    settled: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        for c in &self.channels {
            c.lock().remove_waiter(&self.waiter);
        }
    }
}

/// Complete one of `ops`. Returns what completed, and the messages of the send
/// operations that did not complete, by operation index. `mark_blocked` is called
/// (and its result held) while the select waits, told whether the wait has a
/// timeout and on which channels: that is how the deadlock detector knows who waits
/// on what, and how a cancellation finds the waiter to interrupt
/// ([`Waiter::interrupt`]), which ends the wait with `Interrupted`.
/// When several operations are ready at once, each is as likely to complete.
pub(crate) async fn select<G>(
    ops: impl Into<Ops>,
    timeout: Option<Duration>,
    block: bool,
    progress: &Progress,
    mark_blocked: impl FnOnce(&Arc<Waiter>, bool, &[Arc<Channel>]) -> G,
) -> (Selected, Unsent) {
    match begin(ops, timeout, block, progress, None) {
        Begun::Complete(selected, unsent) => (selected, unsent),
        Begun::Registered(pending) => pending.wait(None, mark_blocked).await,
    }
}

/// The first half of a select, which never waits: it completes a ready operation,
/// or ends at once if it may not wait, or registers its waiter on every channel.
/// When several operations are ready at once, a deterministic run's `schedule`
/// shuffles them (`None`: a random shuffle).
pub(crate) fn begin(
    ops: impl Into<Ops>,
    timeout: Option<Duration>,
    block: bool,
    progress: &Progress,
    schedule: Option<&Schedule>,
) -> Begun {
    let ops = ops.into();
    let single = ops.len() == 1;
    match attempt(ops, timeout, block, progress, schedule) {
        Attempt::Complete(selected, unsent) => Begun::Complete(selected, unsent),
        Attempt::Registered(registration) => Begun::Registered(Pending {
            registration,
            single,
            timeout,
        }),
    }
}

/// How [`begin`] left a select.
pub(crate) enum Begun {
    /// It ended: what completed (or `WouldBlock`, `Timeout`), and the messages of
    /// its sends that did not complete. See [`ended_now`] for a select with `also`.
    Complete(Selected, Unsent),
    /// It is registered with its channels and waits: [`Pending::wait`].
    Registered(Pending),
}

/// A select that ended without waiting: if nothing could wait, what `also`
/// watches counts if it is ready now.
pub(crate) fn ended_now(selected: Selected, unsent: Unsent, also: Option<Also<'_>>) -> (Selected, Unsent) {
    let (Selected::WouldBlock | Selected::Timeout, Some(mut also)) = (&selected, also) else {
        return (selected, unsent);
    };
    let now = match also
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(i) => Some(i),
        std::task::Poll::Pending => None,
    };
    (now.map_or(selected, Selected::Also), unsent)
}

/// A select registered on its channels, to be waited for.
pub(crate) struct Pending {
    registration: Registration,
    single: bool,
    timeout: Option<Duration>,
}

impl Pending {
    /// The second half of a select: wait until an operation completes, the
    /// timeout runs out, or `also` resolves first: then the select ends with
    /// [`Selected::Also`]. A select with `also` counts as one that may end by
    /// itself (`mark_blocked` is told it has a timeout).
    pub(crate) async fn wait<G>(
        self,
        also: Option<Also<'_>>,
        mark_blocked: impl FnOnce(&Arc<Waiter>, bool, &[Arc<Channel>]) -> G,
    ) -> (Selected, Unsent) {
        let Pending {
            registration,
            single,
            timeout,
        } = self;
        let waiter = &registration.waiter;
        let also_first = {
            let _blocked = mark_blocked(
                waiter,
                timeout.is_some() || also.is_some(),
                &registration.channels,
            );
            let wait = async {
                match also {
                    None => {
                        waiter.wait().await;
                        None
                    }
                    Some(also) => tokio::select! {
                        biased;
                        () = waiter.wait() => None,
                        i = also => Some(i),
                    },
                }
            };
            let first = match timeout {
                None => wait.await,
                Some(d) => super::timer::timeout(d, wait).await.unwrap_or(None),
            };
            // A claimed send (see `Waiter::claim_send`) is what ends the wait,
            // unless the claim is given up.
            if waiter.is_claimed() {
                waiter.claim_over().await;
            }
            first
        };
        let (selected, unsent) = finish(registration, single);
        match (selected, also_first) {
            // No operation completed meanwhile: the select ends with what `also` said.
            (Selected::Timeout, Some(i)) => (Selected::Also(i), unsent),
            (selected, _) => (selected, unsent),
        }
    }
}

/// Like [`select`], for a thread that is not a microthread (the application):
/// it parks until an operation completes or the time runs out.
pub(crate) fn select_blocking(
    ops: impl Into<Ops>,
    timeout: Option<Duration>,
    block: bool,
) -> (Selected, Unsent) {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let ops = ops.into();
    let single = ops.len() == 1;
    let registration = match attempt(ops, timeout, block, super::host_progress(), None) {
        Attempt::Complete(selected, unsent) => return (selected, unsent),
        Attempt::Registered(registration) => registration,
    };
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let deadline = timeout.map(|d| std::time::Instant::now() + d);
    while !registration.waiter.wake_on_complete(&waker) {
        match deadline {
            // A claimed send (see `Waiter::claim_send`) is what ends the wait.
            _ if registration.waiter.is_claimed() => std::thread::park(),
            None => std::thread::park(),
            Some(at) => match at.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => std::thread::park_timeout(left),
                _ => break,
            },
        }
    }
    finish(registration, single)
}

/// The end of a wait: how the select ended, and the messages of its sends that
/// did not complete.
fn finish(mut registration: Registration, single: bool) -> (Selected, Unsent) {
    let waiter = &registration.waiter;
    // From here on no operation can complete it; then its entries leave the channels.
    let (outcome, sends) = waiter.take_outcome();
    registration.settled = single && matches!(outcome, Outcome::Op(..));
    drop(registration);
    let selected = match outcome {
        Outcome::Op(i, ready) => Selected::Op(i, ready),
        Outcome::Timeout => Selected::Timeout,
        Outcome::Interrupted => Selected::Interrupted,
    };
    (selected, sends)
}

/// Nothing was ready: how the select ends now if it may not wait (not blocking, or
/// a zero timeout); `None` if it waits.
fn not_waiting(timeout: Option<Duration>, block: bool) -> Option<Selected> {
    if !block {
        Some(Selected::WouldBlock)
    } else if timeout == Some(Duration::ZERO) {
        Some(Selected::Timeout)
    } else {
        None
    }
}

/// How [`attempt`] left a select: complete (what completed, and the messages of
/// its sends that did not), or registered on its channels, to wait.
enum Attempt {
    Complete(Selected, Unsent),
    Registered(Registration),
}

/// Try operation `op` on its channel, locked (`st`): a send takes its message from
/// `sends[op]`, and puts it back unless it went. `Some` if the operation completed
/// (or found its channel closed or broken); `None` if it would wait. The one step
/// of a select over one operation and over several.
fn try_op(
    st: &mut State,
    chan: &Arc<Channel>,
    op: usize,
    is_send: bool,
    sends: &mut Unsent,
    charge: &Charge,
) -> Option<Ready> {
    if !is_send {
        return st.try_recv(chan);
    }
    let msg = sends[op].take().expect("a send operation has its message");
    match st.try_send(chan, msg, charge) {
        SendStep::Sent => Some(Ready::Sent),
        SendStep::Closed(m) => {
            sends[op] = Some(m);
            Some(Ready::Closed)
        }
        SendStep::Broken(m, f) => {
            sends[op] = Some(m);
            Some(Ready::Failed(f))
        }
        SendStep::NotReady(m) => {
            sends[op] = Some(m);
            None
        }
    }
}

/// The waiter is registered on `channels` (their locks released): tell the
/// bridges of the rendezvous ones, and hold the registration. On a rendezvous
/// channel a bridge may wait for a parked sender or receiver (see `remote.rs`); a
/// buffered one's bridges wait for room and ends only.
fn registered(waiter: Arc<Waiter>, channels: Channels) -> Attempt {
    for c in channels.iter().filter(|c| c.capacity == 0) {
        c.changed();
    }
    Attempt::Registered(Registration {
        waiter,
        channels,
        settled: false,
    })
}

/// A select of one operation (every plain send and receive): the steps of
/// [`attempt`] ([`try_op`], [`not_waiting`], [`registered`]), without its
/// bookkeeping for several channels, and with nothing allocated unless it waits.
fn attempt_one(op: Op, timeout: Option<Duration>, block: bool, progress: &Progress) -> Attempt {
    let (chan, is_send, charge, mut sends) = match op {
        Op::Recv(c) => (c, false, None, Unsent::from_buf([None])),
        Op::Send(c, m, charge) => (c, true, charge, Unsent::from_buf([Some(m)])),
    };
    let mut st = chan.lock();
    if let Some(ready) = try_op(&mut st, &chan, 0, is_send, &mut sends, &charge) {
        return Attempt::Complete(Selected::Op(0, ready), sends);
    }
    if let Some(selected) = not_waiting(timeout, block) {
        return Attempt::Complete(selected, sends);
    }
    let waiter = Waiter::new(sends, progress.clone());
    st.register(is_send, &waiter, 0, &charge);
    drop(st);
    registered(waiter, Channels::from_buf([chan]))
}

/// With every channel locked: complete a ready operation, or register a waiter.
fn attempt(
    mut ops: Ops,
    timeout: Option<Duration>,
    block: bool,
    progress: &Progress,
    schedule: Option<&Schedule>,
) -> Attempt {
    let n = ops.len();
    if n == 1 {
        let op = ops.pop().expect("one operation");
        return attempt_one(op, timeout, block, progress);
    }
    // The distinct channels (by identity: ids are per run), in lock order.
    let address = |c: &Arc<Channel>| Arc::as_ptr(c) as usize;
    let mut channels: Channels = ops.iter().map(|o| o.channel().clone()).collect();
    channels.sort_by_key(address);
    channels.dedup_by(|a, b| Arc::ptr_eq(a, b));
    let mut is_send = Vec::with_capacity(n);
    let mut guard_of = Vec::with_capacity(n);
    let mut sends = Unsent::with_capacity(n);
    let mut charges: Vec<Charge> = Vec::with_capacity(n);
    for op in ops {
        let at = address(op.channel());
        let g = channels
            .binary_search_by_key(&at, address)
            .expect("every operation's channel is among the channels");
        guard_of.push(g);
        match op {
            Op::Recv(_) => {
                is_send.push(false);
                sends.push(None);
                charges.push(None);
            }
            Op::Send(_, m, charge) => {
                is_send.push(true);
                sends.push(Some(m));
                charges.push(charge);
            }
        }
    }

    let mut guards: Vec<std::sync::MutexGuard<'_, State>> = channels.iter().map(|c| c.lock()).collect();
    // The operations in a random order, shuffled as they are tried (Fisher-Yates):
    // the first ready one in a uniform shuffle is uniform among the ready ones.
    let mut order: Vec<usize> = (0..n).collect();
    for k in 0..n {
        let pick = match schedule {
            _ if k + 1 == n => k,
            Some(schedule) => k + schedule.choose(n - k),
            None => fastrand::usize(k..n),
        };
        order.swap(k, pick);
        let i = order[k];
        let g = guard_of[i];
        if let Some(ready) = try_op(
            &mut guards[g],
            &channels[g],
            i,
            is_send[i],
            &mut sends,
            &charges[i],
        ) {
            return Attempt::Complete(Selected::Op(i, ready), sends);
        }
    }
    if let Some(selected) = not_waiting(timeout, block) {
        return Attempt::Complete(selected, sends);
    }

    let waiter = Waiter::new(sends, progress.clone());
    for i in 0..n {
        guards[guard_of[i]].register(is_send[i], &waiter, i, &charges[i]);
    }
    drop(guards);
    // Shown in order of id (a deadlock report, the live view), not of address,
    // which changes from one run to the next.
    channels.sort_by_key(|c| c.id);
    registered(waiter, channels)
}
