//! What a channel offers the cluster's bridges, which carry a channel's operations
//! between the node that holds it (its home) and the nodes that hold its remote
//! ends:
//!
//! - **Reserved slots**: a remote sender sends only on credit, and each credit is a
//!   slot of the buffer reserved for it at the home. Reserved slots count as taken,
//!   so what is buffered, promised and in flight together stays within the
//!   capacity, however many remote senders there are.
//! - **A watch**: the bridge waits on it for the changes it acts on (a slot freed,
//!   the last receiver or the last sender gone), instead of polling.
//! - **A break**: when the link to the remote end breaks, the channel's sends fail
//!   with the link's failure (their messages come back), now and from then on.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;

use super::select::{Begun, Op, Selected, begin};
use super::{Channel, Charge, Entry, Holder, Message, Ready, ReceiverHandle, SendStep, SenderHandle};
use crate::error::Failure;

/// How [`Channel::send_or`] ended.
pub(crate) enum SendOr {
    /// The send completed (`Sent`), or found the channel's end (the message is
    /// dropped: nobody can receive it).
    Done(Ready),
    /// What it also waited for came first: the message comes back.
    Woken(Message),
}

/// How [`Channel::recv_or`] ended.
pub(crate) enum RecvOr {
    /// The receive completed: a message, or the channel's end.
    Got(Ready),
    /// What it also waited for came first: nothing was received.
    Woken,
}

/// What [`Channel::take_for_link`] found.
pub(crate) enum Taken {
    /// The first buffered message (its slot stays taken: its credit is spent).
    Message(Message),
    /// Nothing buffered now.
    Empty,
    /// Nothing buffered, and every sender is gone: closed, or the failure of a
    /// producer that failed.
    Ended(Ready),
}

/// A waiting send whose message a bridge carries to a rendezvous channel on
/// another node: the send completes when the claim is settled.
pub(crate) struct Claim {
    waiter: Arc<super::Waiter>,
    op: usize,
    /// Its message, kept to be given back should the send not happen.
    pub(crate) message: Message,
}

impl Claim {
    /// The message was taken by a receiver at the other end: the send completes.
    pub(crate) fn taken(self) {
        self.waiter.settle_claim(Ready::Sent, None);
    }

    /// The send did not happen: it completes with `ready` (closed, or the link's
    /// failure), its message given back.
    pub(crate) fn refused(self, ready: Ready) {
        self.waiter.settle_claim(ready, Some(self.message));
    }
}

/// How [`Channel::offer`] went.
pub(crate) enum Offered {
    Sent,
    /// Every receiver is gone (or the link broke).
    Closed,
    /// No room (the message is dropped).
    Full,
}

impl Channel {
    /// The watch a bridge waits on (made at the first call; until then no change is
    /// told). Register interest (`Notify::notified`) before looking at the state.
    pub(crate) fn watch(&self) -> Arc<Notify> {
        self.watch.get_or_init(|| Arc::new(Notify::new())).clone()
    }

    /// Tell the watch, if there is one, that something changed.
    pub(super) fn changed(&self) {
        if let Some(w) = self.watch.get() {
            w.notify_waiters();
        }
    }

    /// The channel's capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Reserve up to `wanted` free slots of the buffer for a remote sender's
    /// credit; returns how many it reserved (none while senders of this node wait
    /// for room: they came first, and take freed slots first).
    pub(crate) fn reserve(&self, wanted: usize) -> usize {
        let mut st = self.lock();
        if !st.send_waiters.is_empty() {
            return 0;
        }
        let free = self.capacity.saturating_sub(st.queue.len() + st.reserved);
        let n = free.min(wanted);
        st.reserved += n;
        n
    }

    /// A proxy of a remote sender: every slot is reserved until the home grants
    /// credit ([`grant`](Channel::grant)), so a send here waits for credit as it
    /// would for room.
    pub(crate) fn hold_all_slots(&self) {
        self.lock().reserved = self.capacity;
    }

    /// `n` more credit from the home: free `n` reserved slots, and let senders
    /// waiting for room into them.
    pub(crate) fn grant(self: &Arc<Self>, n: usize) {
        let mut st = self.lock();
        st.reserved = st.reserved.saturating_sub(n);
        while st.queue.len() + st.reserved < self.capacity {
            let Some(e) = st.send_waiters.front() else { break };
            let budget = self.budget_of(&e.charge);
            match e.waiter.take_send_if(e.op, |m| budget.reserve(m)) {
                super::waiter::Taken::Message(m) => {
                    let e = st.send_waiters.pop_front().expect("the front entry");
                    st.buffer(self, m, e.charge);
                }
                super::waiter::Taken::Stale => {
                    st.send_waiters.pop_front();
                }
                super::waiter::Taken::Refused => break,
            }
        }
        drop(st);
        self.changed();
    }

    /// Take the first buffered message to send it over the link, keeping its slot
    /// taken (its credit is spent: only the home's next grant frees it).
    pub(crate) fn take_for_link(self: &Arc<Self>) -> Taken {
        let mut st = self.lock();
        match st.queue.pop_front() {
            Some(q) => {
                self.budget_of(&q.charge).release(&q.msg);
                st.reserved += 1;
                Taken::Message(q.msg)
            }
            None if st.senders == 0 => Taken::Ended(st.closed_for_receiver()),
            None => Taken::Empty,
        }
    }

    /// Give back `n` reserved slots that will not be used (a remote sender went
    /// away with credit left).
    pub(crate) fn unreserve(&self, n: usize) {
        let mut st = self.lock();
        st.reserved = st.reserved.saturating_sub(n);
        drop(st);
        self.changed();
    }

    /// A remote sender's message, sent on a slot reserved for it: to a waiting
    /// receiver, or into that slot. `charge` is the budget its bytes count against.
    /// `Err` gives the message back if every receiver is gone.
    pub(crate) fn put_reserved(self: &Arc<Self>, mut msg: Message, charge: &Charge) -> Result<(), Message> {
        let mut st = self.lock();
        st.reserved = st.reserved.saturating_sub(1);
        if st.receivers == 0 {
            return Err(msg);
        }
        while let Some(e) = st.recv_waiters.pop_front() {
            match e.waiter.give_recv(e.op, msg) {
                Ok(()) => return Ok(()),
                Err(m) => msg = m,
            }
        }
        if let Some(budget) = charge {
            budget.reserve_anyway(&msg);
        } else {
            self.budget.reserve_anyway(&msg);
        }
        st.buffer(self, msg, charge.clone());
        Ok(())
    }

    /// Claim the message of the first sender waiting on this (rendezvous) channel,
    /// for a bridge to carry it to the channel's home; `None` if nobody waits.
    pub(crate) fn claim_send(&self) -> Option<Claim> {
        let mut st = self.lock();
        while let Some(e) = st.send_waiters.pop_front() {
            if let Some(message) = e.waiter.claim_send(e.op) {
                return Some(Claim {
                    waiter: e.waiter,
                    op: e.op,
                    message,
                });
            }
        }
        None
    }

    /// Give `claim` up: its send waits on this channel again, first in line (or
    /// ends, cancelled, if its microthread was cancelled meanwhile).
    pub(crate) fn unclaim(&self, claim: Claim) {
        let Claim { waiter, op, message } = claim;
        if waiter.unclaim(message) {
            let mut st = self.lock();
            st.send_waiters.push_front(Entry {
                waiter,
                op,
                charge: None,
            });
            drop(st);
            self.changed();
        }
    }

    /// Whether a receiver of this channel waits.
    pub(crate) fn has_recv_waiters(&self) -> bool {
        !self.lock().recv_waiters.is_empty()
    }

    /// Send `msg` (charged to `charge`), waiting until it is taken (or the
    /// channel's end), or until `wake` resolves first: then the message comes back.
    pub(crate) async fn send_or(
        self: &Arc<Self>,
        msg: Message,
        charge: Charge,
        wake: impl Future<Output = ()> + Send,
    ) -> SendOr {
        let progress = super::host_progress();
        let (selected, mut unsent) =
            match begin([Op::Send(self.clone(), msg, charge)], None, true, progress, None) {
                Begun::Complete(selected, unsent) => (selected, unsent),
                Begun::Registered(pending) => {
                    let also: super::Also<'_> = Box::pin(async move {
                        wake.await;
                        0
                    });
                    pending.wait(Some(also), |_, _, _| ()).await
                }
            };
        let back = unsent.pop().flatten();
        match selected {
            Selected::Op(_, ready) => SendOr::Done(ready),
            Selected::Also(_) => SendOr::Woken(back.expect("a send that did not happen keeps its message")),
            Selected::Timeout | Selected::WouldBlock | Selected::Interrupted => {
                unreachable!("a blocking send without a timeout, that nothing interrupts, ends so")
            }
        }
    }

    /// How many messages the buffer holds now.
    pub(crate) fn buffered(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether the channel still has receivers (of this node's: a remote
    /// receiver's lease counts as one).
    pub(crate) fn has_receivers(&self) -> bool {
        self.lock().receivers > 0
    }

    /// The link this channel's remote end ran over broke: the sends waiting fail
    /// with `failure` (their messages come back), and so does every send from now
    /// on.
    pub(crate) fn break_link(&self, failure: Failure) {
        let waiting: Vec<Entry> = {
            let mut st = self.lock();
            if st.broken.is_some() {
                return;
            }
            st.broken = Some(failure.clone());
            st.send_waiters.drain(..).collect()
        };
        for e in waiting {
            e.waiter.finish(e.op, Ready::Failed(failure.clone()));
        }
        self.changed();
    }

    /// One more sender (a remote one's lease), held by `holder`; `None` if the
    /// channel is closed (its senders are all gone).
    pub(crate) fn attach_sender(self: &Arc<Self>, holder: Option<Arc<Holder>>) -> Option<SenderHandle> {
        let mut st = self.lock();
        if st.senders == 0 {
            return None;
        }
        st.senders += 1;
        Some(SenderHandle {
            chan: self.clone(),
            holder,
        })
    }

    /// One more receiver (a remote one's lease); `None` if its receivers are all
    /// gone.
    pub(crate) fn attach_receiver(self: &Arc<Self>) -> Option<ReceiverHandle> {
        let mut st = self.lock();
        if st.receivers == 0 {
            return None;
        }
        st.receivers += 1;
        Some(ReceiverHandle { chan: self.clone() })
    }

    /// Carry no message larger than `max` bytes (a guest's larger send fails with
    /// `too-large`). Set once.
    pub(crate) fn limit_message(&self, max: usize) {
        let _set_once = self.max_message.set(max);
    }

    /// The largest message the channel carries, if it has a limit of its own.
    pub(crate) fn max_message(&self) -> Option<usize> {
        self.max_message.get().copied()
    }

    /// Send `msg` if that needs no waiting (charged to the channel's own budget).
    pub(crate) fn offer(self: &Arc<Self>, msg: Message) -> Offered {
        let mut st = self.lock();
        match st.try_send(self, msg, &None) {
            SendStep::Sent => Offered::Sent,
            SendStep::Closed(_) | SendStep::Broken(..) => Offered::Closed,
            SendStep::NotReady(_) => Offered::Full,
        }
    }

    /// Receive, waiting until a message comes (or the channel ends), or until
    /// `wake` resolves first. No message is lost when `wake` wins: a receive that
    /// completed meanwhile is what is returned.
    pub(crate) async fn recv_or(self: &Arc<Self>, wake: impl Future<Output = ()> + Send) -> RecvOr {
        let progress = super::host_progress();
        let pending = match begin([Op::Recv(self.clone())], None, true, progress, None) {
            Begun::Complete(selected, _) => return recv_ended(selected),
            Begun::Registered(pending) => pending,
        };
        let also: super::Also<'_> = Box::pin(async move {
            wake.await;
            0
        });
        let (selected, _) = pending.wait(Some(also), |_, _, _| ()).await;
        recv_ended(selected)
    }
}

fn recv_ended(selected: Selected) -> RecvOr {
    match selected {
        Selected::Op(_, ready) => RecvOr::Got(ready),
        Selected::Also(_) => RecvOr::Woken,
        Selected::Timeout | Selected::WouldBlock | Selected::Interrupted => {
            unreachable!("a blocking receive without a timeout, that nothing interrupts, ends so")
        }
    }
}
