//! The host side of `weft:runtime/channel`: a guest's channel calls, translated to
//! a select over the host's channels, within the run's limits.

use std::sync::atomic::Ordering;
use std::time::Duration;

use wasmtime::component::Resource;

use super::bindings::channel::{self as wit, OpenError, RecvError, SendError, SendRecvError};
use super::types::wit_failure;
use crate::channel::{
    Also, Begun, Channel, Message, Op, Ops, Ready, ReceiverHandle, Selected, SenderHandle, Unsent, begin,
    charge, ended_now,
};
use crate::microthread::Microthread;
use crate::net::{ListenerHandle, StreamHandle};
use crate::run::{BlockedOn, HostEndpoint, Probe};

/// How a guest's send ends: sent, or refused with its message given back.
type Sent = wasmtime::Result<Result<(), SendError>>;

/// How a guest's receive ends: a message, or why there is none.
type Received = wasmtime::Result<Result<wit::Message, RecvError>>;

/// Which call a select serves: what the deadlock detector is told it waits for.
#[derive(Clone, Copy)]
enum CallKind {
    Recv,
    Send,
    Select,
}

/// How long a blocking send or receive may wait: forever, or for a while (one
/// that may not wait is `send_now`, `recv_now`).
#[derive(Clone, Copy)]
enum Blocking {
    Forever,
    For(Duration),
}

impl Blocking {
    fn timeout(self) -> Option<Duration> {
        match self {
            Blocking::Forever => None,
            Blocking::For(d) => Some(d),
        }
    }
}

impl Microthread {
    fn message_too_large(&self, m: &wit::Message) -> bool {
        m.byte_len() > self.run.limits.max_message_size as usize
    }

    /// Begin `ops` as a select: it ends at once, or waits, marking this
    /// microthread blocked (for the deadlock detector) while it waits with no
    /// timeout. Not itself `async`: only what waits is a future, boxed, so that
    /// the futures of the host calls, which are moved whole on every call (into
    /// the box wasmtime keeps them in, among others), stay small, and a select
    /// that ends at once allocates nothing.
    fn start_select<'a>(
        &'a self,
        ops: Ops,
        timeout: Option<Duration>,
        block: bool,
        kind: CallKind,
        also: Option<Also<'a>>,
        ended: &mut Option<(Selected, Unsent)>,
    ) -> Option<Wait<'a>> {
        // Borrowed, not cloned: most operations complete without blocking.
        let (members, member) = (&self.run.members, &self.member);
        // A deterministic run's schedule says which ready operation goes first.
        let schedule = self.run.schedule().map(|s| &**s);
        let cancel = &member.cancel;
        // A cancelled microthread's blocking calls fail at once; the messages of
        // its sends come back.
        let in_call = if block {
            self.begin_blocking();
            let Ok(in_call) = cancel.begin() else {
                let unsent = ops.into_iter().map(Op::into_unsent).collect();
                *ended = Some((Selected::Interrupted, unsent));
                return None;
            };
            Some(in_call)
        } else {
            None
        };
        let pending = match begin(ops, timeout, block, members.progress(), schedule) {
            Begun::Complete(selected, unsent) => {
                *ended = Some(ended_now(selected, unsent, also));
                return None;
            }
            Begun::Registered(pending) => pending,
        };
        Some(Box::pin(async move {
            let _in_call = in_call;
            let done = pending
                .wait(also, |waiter, timed, channels| {
                    let what = match kind {
                        CallKind::Recv => BlockedOn::Recv(channels[0].clone()),
                        CallKind::Send => BlockedOn::Send(channels[0].clone()),
                        CallKind::Select => BlockedOn::Select(channels.to_vec()),
                    };
                    members.block(member, what, Probe::Waiter(waiter.clone()), timed)
                })
                .await;
            if matches!(done.0, Selected::Interrupted) {
                // The cancellation came during the wait: it is seen now.
                cancel.deliver();
            }
            done
        }))
    }

    /// A send that never waits: it completes, or ends at once (`full`, `closed`).
    fn send_now(&mut self, sender: Resource<SenderHandle>, message: wit::Message) -> Sent {
        let op = match self.send_op(&sender, message)? {
            Ok(op) => op,
            Err(refused) => return Ok(Err(refused)),
        };
        let (selected, unsent) = self.select_now(op);
        self.sent(selected, unsent)
    }

    async fn send_one(
        &mut self,
        sender: Resource<SenderHandle>,
        message: wit::Message,
        blocking: Blocking,
    ) -> Sent {
        let op = match self.send_op(&sender, message)? {
            Ok(op) => op,
            Err(refused) => return Ok(Err(refused)),
        };
        let timeout = blocking.timeout();
        // Only the wait is held across the wait (the futures of host calls are
        // moved whole), and it borrows `self` no longer than that.
        let wait = {
            let mut ended = None;
            let Some(wait) = self.start_select(
                Ops::from_buf([op]),
                timeout,
                true,
                CallKind::Send,
                None,
                &mut ended,
            ) else {
                let (selected, unsent) = ended.expect("a select that does not wait has ended");
                return self.sent(selected, unsent);
            };
            wait
        };
        let (selected, unsent) = wait.await;
        self.sent(selected, unsent)
    }

    /// The operation that sends `message` on `sender`'s channel (its endpoints
    /// taken from the guest), or why it may not be sent.
    fn send_op(
        &mut self,
        sender: &Resource<SenderHandle>,
        message: wit::Message,
    ) -> wasmtime::Result<Result<Op, SendError>> {
        let chan = self.table.get(sender)?.channel().clone();
        if self.message_too_large(&message) || over_channel_limit(&chan, &message) {
            return Ok(Err(SendError::TooLarge(message)));
        }
        let mut message = self.take_message(message)?;
        if self
            .member
            .sent
            .load(Ordering::Relaxed)
            .is_multiple_of(crate::channel::LATENCY_SAMPLE)
        {
            message.sent_at = Some(std::time::Instant::now());
        }
        // What it buffers counts against this run's budget, whoever's channel it is.
        let charge = charge(&chan, &self.run.budget);
        Ok(Ok(Op::Send(chan, message, charge)))
    }

    /// How a send of one message ended, told to the guest.
    fn sent(&mut self, selected: Selected, mut unsent: Unsent) -> Sent {
        let mut back = || -> wasmtime::Result<wit::Message> {
            let m = unsent.get_mut(0).and_then(Option::take).unwrap_or_default();
            self.give_message(m)
        };
        Ok(match selected {
            Selected::Op(_, Ready::Sent) => {
                self.count_sent();
                Ok(())
            }
            Selected::Op(_, Ready::Failed(f)) => Err(SendError::Disconnected((back()?, wit_failure(f)))),
            Selected::Op(_, _) => Err(SendError::Closed(back()?)),
            Selected::Timeout => Err(SendError::Timeout(back()?)),
            Selected::WouldBlock => Err(SendError::Full(back()?)),
            Selected::Interrupted => Err(SendError::Cancelled(back()?)),
            Selected::Also(_) => unreachable!("a send watches nothing else"),
        })
    }

    /// A receive that never waits: a message, or `empty` (or `closed`) at once.
    fn recv_now(&mut self, receiver: Resource<ReceiverHandle>) -> Received {
        let chan = self.table.get(&receiver)?.channel().clone();
        let (selected, _) = self.select_now(Op::Recv(chan));
        self.received(selected)
    }

    async fn recv_one(&mut self, receiver: Resource<ReceiverHandle>, blocking: Blocking) -> Received {
        let chan = self.table.get(&receiver)?.channel().clone();
        let timeout = blocking.timeout();
        // Only the wait is held across the wait (the futures of host calls are
        // moved whole), and it borrows `self` no longer than that.
        let wait = {
            let mut ended = None;
            let ops = Ops::from_buf([Op::Recv(chan)]);
            let Some(wait) = self.start_select(ops, timeout, true, CallKind::Recv, None, &mut ended) else {
                let (selected, _) = ended.expect("a select that does not wait has ended");
                return self.received(selected);
            };
            wait
        };
        let (selected, _) = wait.await;
        self.received(selected)
    }

    /// How a receive of one message ended, told to the guest.
    fn received(&mut self, selected: Selected) -> Received {
        Ok(match selected {
            Selected::Op(_, Ready::Received(m)) => {
                self.observe_latency(&m);
                Ok(self.give_message(m)?)
            }
            Selected::Op(_, Ready::Failed(f)) => Err(RecvError::Failed(wit_failure(f))),
            Selected::Op(_, _) => Err(RecvError::Closed),
            Selected::Timeout => Err(RecvError::Timeout),
            Selected::WouldBlock => Err(RecvError::Empty),
            Selected::Interrupted => Err(RecvError::Cancelled),
            Selected::Also(_) => unreachable!("a receive watches nothing else"),
        })
    }

    /// Complete `op` now, or end with `WouldBlock`: a select that may not wait,
    /// which never registers with its channel, so needs no future.
    fn select_now(&self, op: Op) -> (Selected, Unsent) {
        let schedule = self.run.schedule().map(|s| &**s);
        match begin([op], None, false, self.run.members.progress(), schedule) {
            Begun::Complete(selected, unsent) => (selected, unsent),
            Begun::Registered(_) => unreachable!("a select that may not block ends without registering"),
        }
    }
}

impl wit::Host for Microthread {
    fn open(
        &mut self,
        capacity: u32,
    ) -> wasmtime::Result<Result<(Resource<SenderHandle>, Resource<ReceiverHandle>), OpenError>> {
        let max = self.run.limits.max_channel_capacity;
        if capacity > max {
            return Ok(Err(OpenError::CapacityTooLarge(max)));
        }
        let Some((mut tx, rx)) =
            Channel::open(self.run.next_channel_id(), capacity as usize, &self.run.budget)
        else {
            return Ok(Err(OpenError::TooManyChannels(self.run.budget.max_channels())));
        };
        tx.set_holder(Some(self.holder.clone()));
        Ok(Ok((self.table.push(tx)?, self.table.push(rx)?)))
    }

    fn host_sender(&mut self, name: String) -> wasmtime::Result<Option<Resource<SenderHandle>>> {
        match self.host_endpoint(&name, true) {
            Some(HostEndpoint::Sender(mut tx, _hold)) => {
                tx.set_holder(Some(self.holder.clone()));
                Ok(Some(self.table.push(tx)?))
            }
            _ => Ok(None),
        }
    }

    fn host_receiver(&mut self, name: String) -> wasmtime::Result<Option<Resource<ReceiverHandle>>> {
        match self.host_endpoint(&name, false) {
            Some(HostEndpoint::Receiver(rx, _hold)) => Ok(Some(self.table.push(rx)?)),
            _ => Ok(None),
        }
    }

    async fn select(
        &mut self,
        ops: Vec<wit::SelectOp>,
        timeout: Option<u64>,
        block: bool,
    ) -> wasmtime::Result<(wit::Selected, Vec<Option<wit::Message>>)> {
        let n = ops.len();
        let mut host_ops = Ops::with_capacity(n);
        // The index, among `ops`, of each channel operation (`host_ops`).
        let mut op_index = Vec::with_capacity(n);
        let mut sockets = Vec::new();
        let mut too_large = None;
        // The messages of one select, together, may not be over the size limit: a
        // blocked select holds them all on the host.
        let mut total = 0usize;
        let max = self.run.limits.max_message_size as usize;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                wit::SelectOp::Recv(r) => {
                    let chan = self.table.get(&r)?.channel().clone();
                    host_ops.push(Op::Recv(chan));
                    op_index.push(i);
                }
                wit::SelectOp::Send((s, m)) => {
                    total = total.saturating_add(m.byte_len());
                    let chan = self.table.get(&s)?.channel().clone();
                    if total > max || over_channel_limit(&chan, &m) {
                        too_large.get_or_insert(i);
                    }
                    let m = self.take_message(m)?;
                    let charge = charge(&chan, &self.run.budget);
                    host_ops.push(Op::Send(chan, m, charge));
                    op_index.push(i);
                }
                wit::SelectOp::Accept(l) => sockets.push((i, Readiness::Accept(self.table.get(&l)?.clone()))),
                wit::SelectOp::Readable(r) => sockets.push((i, Readiness::Read(self.table.get(&r)?.clone()))),
                wit::SelectOp::Writable(w) => {
                    sockets.push((i, Readiness::Write(self.table.get(&w)?.clone())))
                }
            }
        }
        if let Some(i) = too_large {
            let unsent = host_ops.into_iter().map(Op::into_unsent).collect();
            return Ok((
                wit::Selected::TooLarge(i as u32),
                self.give_messages(by_op(unsent, &op_index, n))?,
            ));
        }
        let also = (!sockets.is_empty()).then(|| first_ready(sockets));
        let timeout = timeout.map(Duration::from_nanos);
        // Only the wait is held across the wait (the futures of host calls are
        // moved whole), and it borrows `self` no longer than that.
        let wait = {
            let mut ended = None;
            let Some(wait) = self.start_select(host_ops, timeout, block, CallKind::Select, also, &mut ended)
            else {
                let (selected, unsent) = ended.expect("a select that does not wait has ended");
                return self.select_ended(selected, unsent, &op_index, n);
            };
            wait
        };
        let (selected, unsent) = wait.await;
        self.select_ended(selected, unsent, &op_index, n)
    }

    fn timer(
        &mut self,
        after: u64,
        every: Option<u64>,
    ) -> wasmtime::Result<Result<Resource<ReceiverHandle>, OpenError>> {
        let Some((end, rx)) = Channel::open_timer(self.run.next_channel_id(), &self.run.budget) else {
            return Ok(Err(OpenError::TooManyChannels(self.run.budget.max_channels())));
        };
        // The period is at least `run::MIN_TICK_PERIOD` (the timers see to it).
        self.run
            .start_timer(end, Duration::from_nanos(after), every.map(Duration::from_nanos));
        Ok(Ok(self.table.push(rx)?))
    }
}

/// The wait of a guest's select that waits ([`Microthread::start_select`]): how it
/// ended, and the messages of its sends that did not complete.
type Wait<'a> = std::pin::Pin<Box<dyn Future<Output = (Selected, Unsent)> + Send + 'a>>;

/// The messages of a select's sends that did not complete (`unsent`, by channel
/// operation), by index among its `n` operations (`op_index`: that of each channel
/// operation).
fn by_op(unsent: Unsent, op_index: &[usize], n: usize) -> Vec<Option<Message>> {
    let mut all: Vec<Option<Message>> = (0..n).map(|_| None).collect();
    for (j, m) in unsent.into_iter().enumerate() {
        all[op_index[j]] = m;
    }
    all
}

/// What a select watches a socket for.
enum Readiness {
    Accept(ListenerHandle),
    Read(StreamHandle),
    Write(StreamHandle),
}

/// Resolves to the index (among the select's operations) of the first socket that
/// is ready.
fn first_ready(sockets: Vec<(usize, Readiness)>) -> Also<'static> {
    let mut watches: Vec<Also<'static>> = sockets
        .into_iter()
        .map(|(i, r)| -> Also<'static> {
            Box::pin(async move {
                match r {
                    Readiness::Accept(l) => l.acceptable().await,
                    Readiness::Read(s) => s.readable().await,
                    Readiness::Write(s) => s.writable().await,
                }
                i
            })
        })
        .collect();
    Box::pin(std::future::poll_fn(move |cx| {
        for w in &mut watches {
            if let std::task::Poll::Ready(i) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    }))
}

impl Microthread {
    /// How a guest's select ended (`op_index`: the index among its `n` operations
    /// of each channel operation), told to the guest.
    fn select_ended(
        &mut self,
        selected: Selected,
        unsent: Unsent,
        op_index: &[usize],
        n: usize,
    ) -> wasmtime::Result<(wit::Selected, Vec<Option<wit::Message>>)> {
        let at = |j: usize| op_index[j] as u32;
        let selected = match selected {
            Selected::Op(j, Ready::Received(m)) => {
                self.observe_latency(&m);
                wit::Selected::Received((at(j), self.give_message(m)?))
            }
            Selected::Op(j, Ready::Sent) => {
                self.count_sent();
                wit::Selected::Sent(at(j))
            }
            Selected::Op(j, Ready::Closed) => wit::Selected::Closed(at(j)),
            Selected::Op(j, Ready::Failed(f)) => wit::Selected::Failed((at(j), wit_failure(f))),
            Selected::Timeout => wit::Selected::Timeout,
            Selected::WouldBlock => wit::Selected::WouldBlock,
            Selected::Interrupted => wit::Selected::Cancelled,
            Selected::Also(i) => wit::Selected::Ready(i as u32),
        };
        Ok((selected, self.give_messages(by_op(unsent, op_index, n))?))
    }

    /// A message received: its latency, if it carries the time it was sent.
    fn observe_latency(&self, m: &Message) {
        if let Some(sent) = m.sent_at {
            self.run.observe_message_latency(sent.elapsed());
        }
    }

    /// One more message sent (only this microthread writes its count).
    fn count_sent(&self) {
        let sent = &self.member.sent;
        sent.store(sent.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn host_endpoint(&mut self, name: &str, sender: bool) -> Option<crate::run::HostEndpoint> {
        self.run.take_endpoint(name, sender)
    }
}

impl wit::HostSender for Microthread {
    fn clone(&mut self, sender: Resource<SenderHandle>) -> wasmtime::Result<Resource<SenderHandle>> {
        let copy = self.table.get(&sender)?.clone_for(Some(self.holder.clone()));
        Ok(self.table.push(copy)?)
    }

    fn id(&mut self, sender: Resource<SenderHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&sender)?.channel().id())
    }

    async fn send(&mut self, sender: Resource<SenderHandle>, message: wit::Message) -> Sent {
        self.send_one(sender, message, Blocking::Forever).await
    }

    fn try_send(&mut self, sender: Resource<SenderHandle>, message: wit::Message) -> Sent {
        self.send_now(sender, message)
    }

    async fn send_timeout(
        &mut self,
        sender: Resource<SenderHandle>,
        message: wit::Message,
        timeout: u64,
    ) -> Sent {
        self.send_one(sender, message, Blocking::For(Duration::from_nanos(timeout)))
            .await
    }

    async fn send_then_recv(
        &mut self,
        sender: Resource<SenderHandle>,
        message: wit::Message,
        receiver: Resource<ReceiverHandle>,
        timeout: Option<u64>,
    ) -> wasmtime::Result<Result<wit::Message, SendRecvError>> {
        // On tokio's clock: a deterministic run's is virtual.
        let deadline = timeout.map(|t| tokio::time::Instant::now() + Duration::from_nanos(t));
        let blocking = || match deadline {
            None => Blocking::Forever,
            Some(d) => Blocking::For(d.saturating_duration_since(tokio::time::Instant::now())),
        };
        if let Err(e) = self.send_one(sender, message, blocking()).await? {
            return Ok(Err(SendRecvError::Send(e)));
        }
        Ok(self
            .recv_one(receiver, blocking())
            .await?
            .map_err(SendRecvError::Recv))
    }

    fn drop(&mut self, sender: Resource<SenderHandle>) -> wasmtime::Result<()> {
        self.table.delete(sender)?;
        Ok(())
    }
}

impl wit::HostReceiver for Microthread {
    fn clone(&mut self, receiver: Resource<ReceiverHandle>) -> wasmtime::Result<Resource<ReceiverHandle>> {
        Ok(self.table.share(&receiver)?)
    }

    fn id(&mut self, receiver: Resource<ReceiverHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&receiver)?.channel().id())
    }

    async fn recv(&mut self, receiver: Resource<ReceiverHandle>) -> Received {
        self.recv_one(receiver, Blocking::Forever).await
    }

    fn try_recv(&mut self, receiver: Resource<ReceiverHandle>) -> Received {
        self.recv_now(receiver)
    }

    async fn recv_timeout(&mut self, receiver: Resource<ReceiverHandle>, timeout: u64) -> Received {
        self.recv_one(receiver, Blocking::For(Duration::from_nanos(timeout)))
            .await
    }

    fn drop(&mut self, receiver: Resource<ReceiverHandle>) -> wasmtime::Result<()> {
        self.table.delete(receiver)?;
        Ok(())
    }
}

/// Whether `m` is larger than `chan` carries (a remote end's limit: what its link
/// carries).
fn over_channel_limit(chan: &Channel, m: &wit::Message) -> bool {
    chan.max_message().is_some_and(|max| m.byte_len() > max)
}
