//! The proxy side: importing an end of a channel another node exports, and the
//! tasks of the leases this node holds.
//!
//! A proxy is a local channel. An imported *sender* is a sender of a channel whose
//! only receiver is the lease's task, and whose slots open only as the home grants
//! credit: a send here completes when its message has a slot reserved for it at the
//! home (or waits, as on a full channel), and the task sends it on. An imported *receiver* is a
//! receiver of a channel whose only sender is the lease's task: the home delivers
//! into it on demand, as much as it has room for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::home::{send_ends, take_ends};
use super::node::{AttachFailed, Attachment, Inbound, Inbox, Node, cannot_move, disconnected, too_large};
use super::wire::{Frame, Side};
use crate::channel::{
    Bytes, Claim, Holder, HostHold, LinkTaken, Message, Offered, Ready, ReceiverHandle, SenderHandle,
};
use crate::channel::{Receiver, Sender};
use crate::error::ClusterError;
use crate::error::Failure;

/// Messages a remote receiver's proxy holds at most, received ahead.
const RECV_WINDOW: usize = 64;

/// How long an attachment request may take before it is asked again.
const ATTACH_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Run `f` on the node's tokio thread and wait for it here.
fn on_node<T: Send + 'static>(
    node: &Arc<Node>,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ClusterError> {
    let (tx, rx) = std::sync::mpsc::channel();
    node.handle().spawn(async move {
        let _receiver_waits = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| ClusterError::Lost("the node's tasks stopped (the runtime is shutting down)".into()))
}

/// Attach a lease of `side` to the channel exported as `name`, asking again
/// (every 50 ms, and whenever an answer does not come) until a node answers or
/// the import timeout is over: nodes start in any order.
async fn attach(node: Arc<Node>, name: String, side: Side) -> Result<Attachment, ClusterError> {
    let wait = node.config.import_timeout;
    let started = Instant::now();
    loop {
        match node
            .attach_once(node.name_subject(&name), side, ATTACH_REQUEST_TIMEOUT)
            .await
        {
            Ok(a) => return Ok(a),
            Err(AttachFailed::Refused(reason)) => return Err(ClusterError::Refused { name, reason }),
            // Nobody exports it yet, or the server may be reconnecting: ask again.
            Err(AttachFailed::NoResponders | AttachFailed::Lost(_)) => {}
        }
        if started.elapsed() >= wait {
            let cluster = node.cluster_name().to_string();
            return Err(ClusterError::NoSuchName {
                name,
                cluster,
                waited: wait,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn import_sender<T>(node: &Arc<Node>, name: &str) -> Result<Sender<T>, ClusterError> {
    let a = on_node(node, attach(node.clone(), name.to_string(), Side::Sender))??;
    Ok(sender_end(node, a.lease, a.home, a.capacity, a.inbox))
}

/// The proxy of a remote sender whose lease `lease` the home `home` granted, on a
/// channel of `capacity`: a channel with room for as much credit as the home
/// grants at most, every slot held until it does, whose receiver is the lease's
/// task (started here).
pub(super) fn sender_end<T>(
    node: &Arc<Node>,
    lease: u64,
    home: String,
    capacity: u64,
    inbox: Arc<Inbox>,
) -> Sender<T> {
    if capacity == 0 {
        // A rendezvous channel: each waiting send is offered to the home's
        // receivers, and completes when one of them took it.
        let (tx, rx) = crate::channel::channel::<T>(0);
        rx.handle.channel().limit_message(node.max_message());
        node.handle().spawn(rendezvous_proxy(
            node.clone(),
            home,
            lease,
            rx.handle,
            rx.hold,
            inbox,
        ));
        return tx;
    }
    let window = (capacity as usize).clamp(1, super::wire::SEND_WINDOW);
    let (tx, rx) = crate::channel::channel::<T>(window);
    let chan = rx.handle.channel();
    chan.limit_message(node.max_message());
    chan.hold_all_slots();
    node.handle()
        .spawn(sender_proxy(node.clone(), home, lease, rx.handle, rx.hold, inbox));
    tx
}

pub(super) fn import_receiver<T>(node: &Arc<Node>, name: &str) -> Result<Receiver<T>, ClusterError> {
    let a = on_node(node, attach(node.clone(), name.to_string(), Side::Receiver))??;
    Ok(receiver_end(node, a.lease, a.home, a.capacity, a.inbox))
}

/// The proxy of a remote receiver whose lease `lease` the home `home` granted, on
/// a channel of `capacity` (at least 1): a channel of up to a window's room, whose
/// sender is the lease's task (started here).
pub(super) fn receiver_end<T>(
    node: &Arc<Node>,
    lease: u64,
    home: String,
    capacity: u64,
    inbox: Arc<Inbox>,
) -> Receiver<T> {
    if capacity == 0 {
        // A rendezvous channel: one delivery at a time, asked for while a receiver
        // waits here, and acknowledged when one took it.
        let (tx, rx) = crate::channel::channel::<T>(0);
        let holder = Arc::new(Holder::new(None));
        let mut handle = tx.handle;
        handle.set_holder(Some(holder.clone()));
        node.handle().spawn(rendezvous_receiver_proxy(
            node.clone(),
            home,
            lease,
            handle,
            tx.hold,
            holder,
            inbox,
        ));
        return rx;
    }
    let window = (capacity as usize).clamp(1, RECV_WINDOW);
    // The proxy: a channel of the window's room, whose sender is the lease's task.
    let (tx, rx) = crate::channel::channel::<T>(window);
    let holder = Arc::new(Holder::new(None));
    let mut handle = tx.handle;
    handle.set_holder(Some(holder.clone()));
    node.handle().spawn(receiver_proxy(
        node.clone(),
        home,
        lease,
        window,
        handle,
        tx.hold,
        holder,
        inbox,
    ));
    rx
}

/// An imported receiver's lease on a rendezvous channel: while a receiver waits
/// here, one delivery is asked for; what comes is handed to a waiting receiver
/// (`Ack`: the home's send completes) or, if none waits any more, refused
/// (`Nack`: the home's send waits on).
async fn rendezvous_receiver_proxy(
    node: Arc<Node>,
    home: String,
    lease: u64,
    tx: SenderHandle,
    hold: HostHold,
    holder: Arc<Holder>,
    inbox: Arc<Inbox>,
) {
    let chan = tx.channel().clone();
    let watch = chan.watch();
    let mut asked = false;
    let mut expected = 0u64;
    let failed: Option<Failure> = 'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if !chan.has_receivers() {
            let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
            break None;
        }
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Deliver { seq, bytes, ends, .. }) => {
                    if seq != expected || !asked {
                        let why = format!("its delivery {expected} was lost (got {seq})");
                        break 'lease Some(disconnected(&home, &why));
                    }
                    expected += 1;
                    asked = false;
                    let endpoints = match take_ends(&node, &home, ends).await {
                        Ok(endpoints) => endpoints,
                        Err(f) => break 'lease Some(f),
                    };
                    let msg = Message {
                        sent_at: None,
                        bytes: Bytes::from(bytes),
                        endpoints,
                    };
                    let answer = match chan.offer(msg) {
                        Offered::Sent => Frame::Ack { lease, seq },
                        Offered::Full | Offered::Closed => Frame::Nack { lease, seq },
                    };
                    if let Err(e) = node.send(&home, answer).await {
                        break 'lease Some(disconnected(&home, &e));
                    }
                }
                Inbound::Frame(Frame::End { failure, .. }) => break 'lease failure.map(Failure::from),
                Inbound::Down(f) => break 'lease Some(f),
                Inbound::Leave => {
                    let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
                    break 'lease None;
                }
                Inbound::Frame(other) => {
                    tracing::debug!(?other, "a frame a rendezvous receiver's proxy does not expect")
                }
            }
        }
        if !asked && chan.has_recv_waiters() {
            asked = true;
            if let Err(e) = node.send(&home, Frame::Demand { lease, n: 1 }).await {
                break Some(disconnected(&home, &e));
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
    };
    if let Some(f) = failed {
        holder.fail(f);
    }
    node.remove_proxy(lease);
    drop(tx);
    drop(hold);
}

/// An imported sender's lease: the home's credit opens slots of the proxy's
/// buffer ([`Channel::grant`]); what is sent into them is taken and sent on, its
/// slot staying taken until more credit comes.
async fn sender_proxy(
    node: Arc<Node>,
    home: String,
    lease: u64,
    rx: ReceiverHandle,
    hold: HostHold,
    inbox: Arc<Inbox>,
) {
    let chan = rx.channel().clone();
    let watch = chan.watch();
    let mut seq = 0u64;
    'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Credit { n, .. }) => chan.grant(n as usize),
                // Every receiver at the home is gone: sends here fail `closed`.
                Inbound::Frame(Frame::Closed { .. }) => break 'lease,
                Inbound::Down(f) => {
                    chan.break_link(f);
                    break 'lease;
                }
                Inbound::Leave => {
                    let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
                    break 'lease;
                }
                Inbound::Frame(other) => tracing::debug!(?other, "a frame a sender's proxy does not expect"),
            }
        }
        loop {
            let frame = match chan.take_for_link() {
                LinkTaken::Empty => break,
                LinkTaken::Message(m) => {
                    let carried = if m.bytes.as_slice().len() > node.max_message() {
                        Err(too_large(&node, m.bytes.as_slice().len()))
                    } else {
                        send_ends(&node, m.endpoints, "a message sent on it").await
                    };
                    match carried {
                        // Its send completed: the program's later sends fail with why.
                        Err(f) => {
                            tracing::warn!("{}", f.message);
                            chan.break_link(f.clone());
                            Frame::Release {
                                lease,
                                failure: Some((&f).into()),
                            }
                        }
                        Ok(ends) => {
                            seq += 1;
                            Frame::Send {
                                lease,
                                seq: seq - 1,
                                bytes: m.bytes.into_vec(),
                                ends,
                            }
                        }
                    }
                }
                LinkTaken::Ended(Ready::Failed(f)) => Frame::Release {
                    lease,
                    failure: Some((&f).into()),
                },
                LinkTaken::Ended(_) => Frame::Release { lease, failure: None },
            };
            let ends = matches!(frame, Frame::Release { .. });
            if let Err(e) = node.send(&home, frame).await {
                chan.break_link(disconnected(&home, &e));
                break 'lease;
            }
            if ends {
                break 'lease;
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
    }
    node.remove_proxy(lease);
    drop(rx);
    drop(hold);
}

/// An imported sender's lease on a rendezvous channel: the first waiting send's
/// message is claimed ([`Channel::claim_send`]) and offered to the home; the send
/// completes when the home says a receiver took it, or fails (its message back)
/// when the home's receivers are gone or the link breaks. One offer at a time.
async fn rendezvous_proxy(
    node: Arc<Node>,
    home: String,
    lease: u64,
    rx: ReceiverHandle,
    hold: HostHold,
    inbox: Arc<Inbox>,
) {
    let chan = rx.channel().clone();
    let watch = chan.watch();
    let mut seq = 0u64;
    let mut offered: Option<Claim> = None;
    // How an offer still out ends if the lease does.
    let ends_offer: Ready = 'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Taken { seq: taken, .. }) => match offered.take() {
                    Some(claim) if taken + 1 == seq => claim.taken(),
                    other => {
                        offered = other;
                        let why = format!("it acknowledged offer {taken}, not {}", seq.wrapping_sub(1));
                        let f = disconnected(&home, &why);
                        chan.break_link(f.clone());
                        break 'lease Ready::Failed(f);
                    }
                },
                // Every receiver at the home is gone.
                Inbound::Frame(Frame::Closed { .. }) => break 'lease Ready::Closed,
                Inbound::Down(f) => {
                    chan.break_link(f.clone());
                    break 'lease Ready::Failed(f);
                }
                Inbound::Leave => {
                    let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
                    break 'lease Ready::Closed;
                }
                Inbound::Frame(other) => {
                    tracing::debug!(?other, "a frame a rendezvous proxy does not expect")
                }
            }
        }
        if offered.is_none() {
            if let Some(claim) = chan.claim_send() {
                let len = claim.message.bytes.as_slice().len();
                let refused = if !claim.message.endpoints.is_empty() {
                    Some(cannot_move(&node, "a message sent on it"))
                } else if len > node.max_message() {
                    Some(too_large(&node, len))
                } else {
                    None
                };
                match refused {
                    // This send fails, its message back; the link stays.
                    Some(f) => claim.refused(Ready::Failed(f)),
                    None => {
                        let offer = Frame::Offer {
                            lease,
                            seq,
                            bytes: claim.message.bytes.as_slice().to_vec(),
                            // A rendezvous send carries no ends (refused above).
                            ends: Vec::new(),
                        };
                        seq += 1;
                        if let Err(e) = node.send(&home, offer).await {
                            let f = disconnected(&home, &e);
                            chan.break_link(f.clone());
                            claim.refused(Ready::Failed(f));
                            break 'lease Ready::Closed;
                        }
                        offered = Some(claim);
                    }
                }
                continue;
            }
            if let LinkTaken::Ended(ready) = chan.take_for_link() {
                let failure = match &ready {
                    Ready::Failed(f) => Some(f.into()),
                    _ => None,
                };
                let _lost_anyway = node.send(&home, Frame::Release { lease, failure }).await;
                break 'lease Ready::Closed;
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
    };
    if let Some(claim) = offered {
        claim.refused(ends_offer);
    }
    node.remove_proxy(lease);
    drop(rx);
    drop(hold);
}

/// An imported receiver's lease: ask for as much as there is room for, and put
/// what the home delivers into the proxy.
#[allow(clippy::too_many_arguments)]
async fn receiver_proxy(
    node: Arc<Node>,
    home: String,
    lease: u64,
    window: usize,
    tx: SenderHandle,
    hold: HostHold,
    holder: Arc<Holder>,
    inbox: Arc<Inbox>,
) {
    let chan = tx.channel().clone();
    let watch = chan.watch();
    let mut asked = 0usize;
    let mut expected = 0u64;
    let failed: Option<Failure> = 'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if !chan.has_receivers() {
            let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
            break None;
        }
        // Ask for the room there is, in batches of half the window (or when none
        // is asked for at all).
        let free = window.saturating_sub(chan.buffered() + asked);
        if free > 0 && (free * 2 >= window || asked == 0) {
            asked += free;
            if let Err(e) = node
                .send(
                    &home,
                    Frame::Demand {
                        lease,
                        n: free as u32,
                    },
                )
                .await
            {
                break Some(disconnected(&home, &e));
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Deliver { seq, bytes, ends, .. }) => {
                    if seq != expected || asked == 0 {
                        let why = format!("its message {expected} was lost (got {seq})");
                        break 'lease Some(disconnected(&home, &why));
                    }
                    expected += 1;
                    asked -= 1;
                    let endpoints = match take_ends(&node, &home, ends).await {
                        Ok(endpoints) => endpoints,
                        Err(f) => break 'lease Some(f),
                    };
                    let msg = Message {
                        sent_at: None,
                        bytes: Bytes::from(bytes),
                        endpoints,
                    };
                    match chan.offer(msg) {
                        Offered::Sent => {}
                        Offered::Closed => {
                            let _lost_anyway =
                                node.send(&home, Frame::Release { lease, failure: None }).await;
                            break 'lease None;
                        }
                        Offered::Full => {
                            let why = "it delivered more than was asked for";
                            break 'lease Some(disconnected(&home, why));
                        }
                    }
                }
                Inbound::Frame(Frame::End { failure, .. }) => break 'lease failure.map(Failure::from),
                Inbound::Down(f) => break 'lease Some(f),
                Inbound::Leave => {
                    let _lost_anyway = node.send(&home, Frame::Release { lease, failure: None }).await;
                    break 'lease None;
                }
                Inbound::Frame(other) => {
                    tracing::debug!(?other, "a frame a receiver's proxy does not expect")
                }
            }
        }
    };
    if let Some(f) = failed {
        holder.fail(f);
    }
    node.remove_proxy(lease);
    // The receivers drain what it delivered, then see the end (or the failure).
    drop(tx);
    drop(hold);
}
