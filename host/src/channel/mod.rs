//! Channels: multi-producer, multi-consumer queues that live on the host, shared by
//! `Arc` across microthreads and worker threads. A guest holds its endpoints as WIT
//! resources; endpoints move between microthreads at spawn and inside messages.
//!
//! - Capacity 0 is a rendezvous: a send completes only when a receiver takes the
//!   message. Capacity n buffers n messages; a sender waits while the buffer is full.
//! - When every sender is gone, receivers drain the buffer, then see `Closed`, or
//!   the failure of a microthread that held a sender when it failed.
//! - When every receiver is gone, a send fails at once and gives the message back.
//!
//! Every blocking operation is a [`select()`] over one or more operations: a waiter is
//! registered on each channel involved and the first operation to complete wins:
//! it completes the waiter, whose `Outcome` says which one (or the timeout, or the
//! waiting microthread's cancellation).
//! - Every run's channels share its [`Budget`]: bytes buffered and channels open.
//!   A send that would go over the bytes waits as if the channel were full. What a
//!   microthread buffers in a channel of another budget (an application's channel,
//!   or another run's) counts against its own run's budget: see [`Charge`].
//!
//! This module knows nothing of guests, stores or runs: the WIT glue (`wit::channel`)
//! translates a guest's calls to it. This file holds the channel's state and its
//! non-blocking steps; `waiter.rs` the waiter a blocked operation parks; `select.rs`
//! the registration and the wait (a select that need not wait is `Complete` at
//! once, else `Registered` on its channels); `budget.rs` what a run's channels may hold;
//! `monitor.rs` a monitor's channel, whose one message the host sends; `remote.rs`
//! what a channel offers the cluster's bridges (slots reserved for remote senders,
//! a watch on its changes, a link's break).

mod budget;
pub(crate) mod bytes;
mod monitor;
mod remote;
mod select;
#[cfg(test)]
mod tests;
mod timer;
mod typed;
mod waiter;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub(crate) use budget::Budget;
pub(crate) use bytes::Bytes;
pub(crate) use monitor::MonitorEnd;
pub(crate) use remote::{Claim, Offered, RecvOr, SendOr, Taken as LinkTaken};
pub(crate) use select::{Also, Begun, Op, Ops, Selected, Unsent, begin, ended_now, select, select_blocking};
pub use typed::{
    Codec, Receiver, RecvError, SendError, SendTimeoutError, Sender, TrySendError, channel, channel_with,
};
pub(crate) use typed::{HOST_CHANNEL_IDS, is_host_channel};
pub(crate) use waiter::Progress;
pub(crate) use waiter::Waiter;

use crate::error::Failure;
use crate::net::{ListenerHandle, StreamHandle};
use crate::sync::Unpoisoned;
use waiter::Taken;

/// Counts the waits of the application's own threads: no run's deadlock detector
/// looks at it.
pub(crate) fn host_progress() -> &'static Progress {
    static PROGRESS: OnceLock<Progress> = OnceLock::new();
    PROGRESS.get_or_init(Progress::default)
}

/// What travels through a channel: bytes (copied) and endpoints (moved).
#[derive(Default)]
pub(crate) struct Message {
    pub(crate) bytes: Bytes,
    pub(crate) endpoints: Vec<Endpoint>,
    /// When a guest sent it, for one message in [`LATENCY_SAMPLE`] a sender
    /// sends: its receiver's call, when it returns it, measures the message's
    /// latency (the metrics' `weft_message_latency_seconds`). Never crosses a
    /// node.
    pub(crate) sent_at: Option<std::time::Instant>,
}

/// One message in this many a microthread sends carries the time it was sent.
pub(crate) const LATENCY_SAMPLE: u64 = 64;

/// What moves with a message or a spawn argument: a channel endpoint, or a socket.
pub(crate) enum Endpoint {
    Sender(SenderHandle),
    Receiver(ReceiverHandle),
    Listener(ListenerHandle),
    Stream(StreamHandle),
}

/// Told what becomes of a failed holder's failure in a channel: a failure that a
/// receiver gets is handled there, and does not also fail the holder's parent; one
/// that a channel still holds for its receivers may yet be.
pub(crate) trait Delivery: Send + Sync {
    /// A channel holds the failure for receivers that may still take it.
    fn awaiting(&self);
    /// A receiver got the failure (once per `awaiting`).
    fn delivered(&self);
    /// A channel that held the failure lost its receivers (once per `awaiting`).
    fn discarded(&self);
}

/// The failure a channel closes with, and whether what it held for its receivers
/// has been settled (delivered or discarded).
struct Stored {
    failure: Failure,
    delivery: Option<Arc<dyn Delivery>>,
    settled: bool,
}

impl Stored {
    /// A receiver got it: settle it once, and tell the delivery (which only counts).
    fn deliver(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        if let Some(d) = &self.delivery {
            d.delivered();
        }
    }

    /// Nobody can receive it any more: settle it once. The caller tells the returned
    /// delivery ([`Discarded::tell`]) once it holds no channel lock: that may run the
    /// application's failure handler, which may use this very channel.
    #[must_use = "the delivery must be told, after unlocking"]
    fn discard(&mut self) -> Discarded {
        if self.settled {
            return Discarded(None);
        }
        self.settled = true;
        Discarded(self.delivery.clone())
    }
}

/// A failure discarded under a channel's lock, to be told after unlocking.
struct Discarded(Option<Arc<dyn Delivery>>);

impl Discarded {
    fn tell(self) {
        if let Some(d) = self.0 {
            d.discarded();
        }
    }
}

/// Whose budget a buffered message counts against: `None`, the channel's own (its
/// run's); else the sender's, whose run is not the channel's (a microthread sending
/// on an application's channel, or on another run's channel that came through one).
pub(crate) type Charge = Option<Arc<Budget>>;

/// The charge of a message that `from`'s microthread sends on `chan`.
pub(crate) fn charge(chan: &Channel, from: &Arc<Budget>) -> Charge {
    (!Arc::ptr_eq(&chan.budget, from)).then(|| from.clone())
}

/// A buffered message, and whose budget it counts against.
struct Queued {
    msg: Message,
    charge: Charge,
}

/// The microthread that holds a sender: if it fails, the channel carries its failure
/// to the receivers instead of a quiet `Closed`.
#[derive(Default)]
pub(crate) struct Holder {
    failed: OnceLock<Failure>,
    delivery: Option<Arc<dyn Delivery>>,
}

impl Holder {
    pub(crate) fn new(delivery: Option<Arc<dyn Delivery>>) -> Self {
        Holder {
            failed: OnceLock::new(),
            delivery,
        }
    }

    /// The holding microthread failed: the senders it drops carry `failure`.
    pub(crate) fn fail(&self, failure: Failure) {
        let _ = self.failed.set(failure);
    }
}

pub(crate) struct Channel {
    id: u64,
    capacity: usize,
    state: Mutex<State>,
    budget: Arc<Budget>,
    /// Senders and receivers the embedding application holds ([`HostHold`]): a
    /// microthread waiting on the channel may still be woken by the application.
    /// A timer ([`TimerEnd`]) counts as a sender the application holds.
    host: [AtomicU32; 2],
    /// Called when the channel is dropped (a timer's, to forget the timer).
    on_drop: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Told of the changes a cluster's bridge waits for (a message buffered, room
    /// freed, the last receiver or sender gone, and on a rendezvous channel a
    /// sender or receiver parked); set only on a channel with remote ends.
    watch: OnceLock<Arc<tokio::sync::Notify>>,
    /// The largest message the channel carries, if it has a limit of its own (a
    /// remote end's: what its link carries).
    max_message: OnceLock<usize>,
}

/// The application (not a microthread) holds a sender (or a receiver) of `chan`
/// while this lives.
pub(crate) struct HostHold {
    chan: Arc<Channel>,
    sender: bool,
}

impl HostHold {
    pub(crate) fn new(chan: &Arc<Channel>, sender: bool) -> Self {
        chan.host[usize::from(sender)].fetch_add(1, Ordering::AcqRel);
        HostHold {
            chan: chan.clone(),
            sender,
        }
    }
}

impl Drop for HostHold {
    fn drop(&mut self) {
        self.chan.host[usize::from(self.sender)].fetch_sub(1, Ordering::AcqRel);
    }
}

/// One registered operation of a blocked `select`.
struct Entry {
    waiter: Arc<Waiter>,
    op: usize,
    /// A send's charge, should its message go into the buffer.
    charge: Charge,
}

/// A channel as the live view shows it (see `Channel::state`).
pub(crate) struct ChannelState {
    pub(crate) id: u64,
    pub(crate) capacity: usize,
    /// Messages buffered.
    pub(crate) queued: usize,
    /// Its senders and receivers, wherever they are.
    pub(crate) senders: usize,
    pub(crate) receivers: usize,
}

struct State {
    queue: VecDeque<Queued>,
    senders: usize,
    receivers: usize,
    recv_waiters: VecDeque<Entry>,
    send_waiters: VecDeque<Entry>,
    failure: Option<Stored>,
    /// Slots of the buffer promised to remote senders (their credit): they count as
    /// taken, so the buffer, the promised and what is in flight stay within the
    /// capacity.
    reserved: usize,
    /// The link this channel's remote end ran over broke: sends fail with it.
    broken: Option<Failure>,
}

/// What a non-blocking send did; the message comes back unless it was sent.
enum SendStep {
    Sent,
    Closed(Message),
    /// The channel's link to its remote end broke (see `remote.rs`).
    Broken(Message, Failure),
    NotReady(Message),
}

/// A non-blocking step that completed.
pub(crate) enum Ready {
    Received(Message),
    Sent,
    /// The channel is closed (for a send, the message is given back by the caller).
    Closed,
    Failed(Failure),
}

impl Channel {
    /// A new channel and its first sender and receiver; `None` if the budget has no
    /// room for another open channel.
    pub(crate) fn open(
        id: u64,
        capacity: usize,
        budget: &Arc<Budget>,
    ) -> Option<(SenderHandle, ReceiverHandle)> {
        let chan = Channel::new(id, capacity, budget)?;
        Some((
            SenderHandle {
                chan: chan.clone(),
                holder: None,
            },
            ReceiverHandle { chan },
        ))
    }

    /// A new timer's channel (capacity 1) and its receiver; `None` if the budget has
    /// no room for another open channel. The timer holds the channel weakly: once
    /// its receivers are gone, the channel is, and its slot in the budget with it.
    pub(crate) fn open_timer(id: u64, budget: &Arc<Budget>) -> Option<(TimerEnd, ReceiverHandle)> {
        let chan = Channel::new(id, 1, budget)?;
        // Waiting for a tick is no deadlock: the timer is a sender from outside.
        chan.host[1].fetch_add(1, Ordering::AcqRel);
        Some((
            TimerEnd {
                chan: Arc::downgrade(&chan),
            },
            ReceiverHandle { chan },
        ))
    }

    /// A new channel with one sender and one receiver (counted, not made).
    fn new(id: u64, capacity: usize, budget: &Arc<Budget>) -> Option<Arc<Channel>> {
        if !budget.open() {
            return None;
        }
        let chan = Arc::new(Channel {
            id,
            capacity,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                senders: 1,
                receivers: 1,
                recv_waiters: VecDeque::new(),
                send_waiters: VecDeque::new(),
                failure: None,
                reserved: 0,
                broken: None,
            }),
            budget: budget.clone(),
            host: Default::default(),
            on_drop: Mutex::new(None),
            watch: OnceLock::new(),
            max_message: OnceLock::new(),
        });
        budget.register(&chan);
        Some(chan)
    }

    /// The budget a buffered message with `charge` counts against.
    fn budget_of<'a>(&'a self, charge: &'a Charge) -> &'a Budget {
        charge.as_deref().unwrap_or(&self.budget)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// What it holds and who holds it, now.
    pub(crate) fn state(&self) -> ChannelState {
        let st = self.lock();
        ChannelState {
            id: self.id,
            capacity: self.capacity,
            queued: st.queue.len(),
            senders: st.senders,
            receivers: st.receivers,
        }
    }

    /// Whether the application holds a sender (`sender`) or a receiver of it.
    pub(crate) fn host_holds(&self, sender: bool) -> bool {
        self.host[usize::from(sender)].load(Ordering::Acquire) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in weft; the state stays usable.
        self.state.locked()
    }

    /// Drop everything the channel holds: its buffer, and its waiters (told that the
    /// channel is closed). For the end of a run, when nobody can use it any more.
    fn empty(&self) {
        let (queue, waiters, discarded) = {
            let mut st = self.lock();
            let discarded = st.failure.as_mut().map(Stored::discard);
            let queue = std::mem::take(&mut st.queue);
            for q in &queue {
                self.budget_of(&q.charge).release(&q.msg);
            }
            let mut waiters: Vec<Entry> = st.recv_waiters.drain(..).collect();
            waiters.extend(st.send_waiters.drain(..));
            (queue, waiters, discarded)
        };
        for e in &waiters {
            e.waiter.finish(e.op, Ready::Closed);
        }
        // Outside the lock: the messages' endpoints may belong to this very channel,
        // and the failure handler may use it.
        drop(queue);
        drop(waiters);
        if let Some(d) = discarded {
            d.tell();
        }
    }

    /// The end of the run whose budget is `budget`, on a channel of another budget:
    /// drop the messages it buffered here that carry endpoints. Only microthreads
    /// can receive endpoints (the application's values carry none), and such a
    /// message may hold a receiver of this very channel: a cycle nothing else ends.
    fn drop_endpoints_charged_to(&self, budget: &Budget) {
        let dropped: VecDeque<Queued> = {
            let mut st = self.lock();
            let charged = |q: &Queued| {
                !q.msg.endpoints.is_empty() && q.charge.as_deref().is_some_and(|c| std::ptr::eq(c, budget))
            };
            if !st.queue.iter().any(charged) {
                return;
            }
            let (dropped, kept) = std::mem::take(&mut st.queue).into_iter().partition(charged);
            st.queue = kept;
            for q in &dropped {
                budget.release(&q.msg);
            }
            dropped
        };
        // Outside the lock: the endpoints may belong to this very channel.
        drop(dropped);
    }

    /// A sender that is not a [`SenderHandle`] (a timer, a monitor) went away.
    fn sender_gone(&self) {
        let mut st = self.lock();
        st.sender_gone(self);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let st = self.state.value_mut();
        for q in &st.queue {
            release_queued(&self.budget, q);
        }
        self.budget.close();
        let on_drop = self.on_drop.value_mut().take();
        if let Some(f) = on_drop {
            f();
        }
    }
}

/// Release a buffered message from the budget it counts against (`budget` is its
/// channel's).
fn release_queued(budget: &Budget, q: &Queued) {
    q.charge.as_deref().unwrap_or(budget).release(&q.msg);
}

/// How a timer's tick went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Sent (or given to a waiting receiver).
    Sent,
    /// Dropped: the previous tick is still unread.
    Skipped,
    /// The channel's receivers are gone: the timer is over.
    Gone,
}

/// A timer's sending side: it holds its channel weakly, so the channel goes (and
/// its slot in the budget) as soon as the last receiver does. It counts as one
/// sender; dropping it closes the channel.
pub(crate) struct TimerEnd {
    chan: Weak<Channel>,
}

impl TimerEnd {
    /// Send a tick (an empty message) if the buffer has room.
    pub(crate) fn tick(&self) -> Tick {
        let Some(chan) = self.chan.upgrade() else {
            return Tick::Gone;
        };
        let mut st = chan.lock();
        match st.try_send(&chan, Message::default(), &None) {
            SendStep::Sent => Tick::Sent,
            SendStep::NotReady(_) => Tick::Skipped,
            SendStep::Closed(_) | SendStep::Broken(..) => Tick::Gone,
        }
    }

    /// Whether the channel still has receivers.
    pub(crate) fn is_alive(&self) -> bool {
        self.chan.upgrade().is_some_and(|chan| chan.lock().receivers > 0)
    }

    /// Call `f` when the channel is dropped (at once if it already is).
    pub(crate) fn on_channel_drop(&self, f: Box<dyn FnOnce() + Send>) {
        match self.chan.upgrade() {
            Some(chan) => *chan.on_drop.locked() = Some(f),
            None => f(),
        }
    }
}

impl Drop for TimerEnd {
    fn drop(&mut self) {
        if let Some(chan) = self.chan.upgrade() {
            chan.host[1].fetch_sub(1, Ordering::AcqRel);
            chan.sender_gone();
        }
    }
}

impl State {
    /// Receive now if possible.
    fn try_recv(&mut self, chan: &Arc<Channel>) -> Option<Ready> {
        if let Some(Queued { msg, charge }) = self.queue.pop_front() {
            chan.budget_of(&charge).release(&msg);
            chan.changed();
            // The first sender waiting for room moves its message into the buffer, if
            // its budget has room for it (else it stays first in line).
            while let Some(e) = self.send_waiters.front() {
                let budget = chan.budget_of(&e.charge);
                match e.waiter.take_send_if(e.op, |m| budget.reserve(m)) {
                    Taken::Message(m) => {
                        let e = self.send_waiters.pop_front().expect("the front entry");
                        self.buffer(chan, m, e.charge);
                        break;
                    }
                    Taken::Stale => {
                        self.send_waiters.pop_front();
                    }
                    Taken::Refused => break,
                }
            }
            return Some(Ready::Received(msg));
        }
        // A rendezvous, or a sender that found the buffer full (or the budget spent)
        // while the buffer was empty: its message goes straight to the receiver.
        while let Some(e) = self.send_waiters.pop_front() {
            if let Taken::Message(m) = e.waiter.take_send_if(e.op, |_| true) {
                return Some(Ready::Received(m));
            }
        }
        if self.senders == 0 {
            return Some(self.closed_for_receiver());
        }
        None
    }

    fn closed_for_receiver(&mut self) -> Ready {
        match &mut self.failure {
            Some(stored) => {
                stored.deliver();
                Ready::Failed(stored.failure.clone())
            }
            None => Ready::Closed,
        }
    }

    /// Put a message whose bytes `charge` has reserved into the buffer. A message
    /// with endpoints charged to another run's budget is remembered by that budget,
    /// to be dropped when that run ends (see [`Channel::drop_endpoints_charged_to`]).
    fn buffer(&mut self, chan: &Arc<Channel>, msg: Message, charge: Charge) {
        if let Some(budget) = &charge
            && !msg.endpoints.is_empty()
        {
            budget.register(chan);
        }
        self.queue.push_back(Queued { msg, charge });
        chan.changed();
    }

    /// A sender went away: when it was the last, tell the waiting receivers.
    fn sender_gone(&mut self, chan: &Channel) {
        self.senders -= 1;
        if self.senders == 0 {
            chan.changed();
            // Only receivers wait when nothing is buffered: tell them.
            let waiting: Vec<Entry> = self.recv_waiters.drain(..).collect();
            for e in waiting {
                let ready = self.closed_for_receiver();
                e.waiter.finish(e.op, ready);
            }
        }
    }

    /// Send now if possible: to a waiting receiver, else into the buffer if it and
    /// the budget of `charge` have room.
    fn try_send(&mut self, chan: &Arc<Channel>, mut msg: Message, charge: &Charge) -> SendStep {
        if let Some(f) = &self.broken {
            return SendStep::Broken(msg, f.clone());
        }
        if self.receivers == 0 {
            return SendStep::Closed(msg);
        }
        while let Some(e) = self.recv_waiters.pop_front() {
            match e.waiter.give_recv(e.op, msg) {
                Ok(()) => return SendStep::Sent,
                Err(m) => msg = m,
            }
        }
        if self.queue.len() + self.reserved < chan.capacity && chan.budget_of(charge).reserve(&msg) {
            self.buffer(chan, msg, charge.clone());
            return SendStep::Sent;
        }
        SendStep::NotReady(msg)
    }

    /// Park operation `op` of `waiter` (a send, with its charge, or a receive) on
    /// this channel.
    fn register(&mut self, is_send: bool, waiter: &Arc<Waiter>, op: usize, charge: &Charge) {
        let e = Entry {
            waiter: waiter.clone(),
            op,
            charge: charge.clone(),
        };
        if is_send {
            self.send_waiters.push_back(e);
        } else {
            self.recv_waiters.push_back(e);
        }
    }

    fn remove_waiter(&mut self, waiter: &Arc<Waiter>) {
        self.recv_waiters.retain(|e| !Arc::ptr_eq(&e.waiter, waiter));
        self.send_waiters.retain(|e| !Arc::ptr_eq(&e.waiter, waiter));
    }
}

/// A sender, held by a guest (in its resource table) or in flight.
pub struct SenderHandle {
    chan: Arc<Channel>,
    holder: Option<Arc<Holder>>,
}

/// A receiver, held by a guest (in its resource table) or in flight.
pub struct ReceiverHandle {
    chan: Arc<Channel>,
}

impl SenderHandle {
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.chan
    }

    /// Another sender of the same channel, held by `holder`.
    pub(crate) fn clone_for(&self, holder: Option<Arc<Holder>>) -> SenderHandle {
        self.chan.lock().senders += 1;
        SenderHandle {
            chan: self.chan.clone(),
            holder,
        }
    }

    /// The microthread that now holds this sender (`None` while in flight).
    pub(crate) fn set_holder(&mut self, holder: Option<Arc<Holder>>) {
        self.holder = holder;
    }
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        let failed = self
            .holder
            .as_ref()
            .and_then(|h| Some((h.failed.get()?.clone(), h.delivery.clone())));
        let mut st = self.chan.lock();
        if let Some((failure, delivery)) = failed
            && st.failure.is_none()
        {
            // Held for the receivers, if there are any to take it.
            let settled = st.receivers == 0;
            if let (false, Some(d)) = (settled, &delivery) {
                d.awaiting();
            }
            st.failure = Some(Stored {
                failure,
                delivery,
                settled,
            });
        }
        st.sender_gone(&self.chan);
    }
}

impl ReceiverHandle {
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.chan
    }
}

impl Clone for ReceiverHandle {
    fn clone(&self) -> Self {
        self.chan.lock().receivers += 1;
        ReceiverHandle {
            chan: self.chan.clone(),
        }
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        let (dropped, discarded) = {
            let mut st = self.chan.lock();
            st.receivers -= 1;
            if st.receivers > 0 {
                return;
            }
            self.chan.changed();
            let waiting: Vec<Entry> = st.send_waiters.drain(..).collect();
            for e in waiting {
                e.waiter.finish(e.op, Ready::Closed);
            }
            let discarded = st.failure.as_mut().map(Stored::discard);
            // Nobody can receive what is buffered: drop it, outside the lock (its
            // endpoints may belong to this very channel).
            let dropped = std::mem::take(&mut st.queue);
            for q in &dropped {
                self.chan.budget_of(&q.charge).release(&q.msg);
            }
            (dropped, discarded)
        };
        drop(dropped);
        // Unlocked: a failure handler this runs may use the channel.
        if let Some(d) = discarded {
            d.tell();
        }
    }
}
