//! The home side: channels exported under a name, the answers to attachments, and
//! the tasks of the leases remote nodes hold on them.
//!
//! - A remote *sender*'s lease is a sender of the channel here. It sends only on
//!   credit: slots of the buffer reserved for it ([`Channel::reserve`]), granted up
//!   to a window, and granted again as receivers free them. A message arrives on
//!   its slot ([`Channel::put_reserved`]): it never waits here.
//! - A remote *receiver*'s lease is a receiver of the channel here. It receives
//!   only on demand (its proxy's free room), and delivers what it receives.
//! - Senders carried in messages between nodes ([`send_ends`], [`take_ends`]): a
//!   sender in a message that leaves this node is published under a one-time
//!   token, and the node that gets the message attaches its own before delivering
//!   it (acquire before release). Receivers and sockets cannot cross (yet).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use super::config::check_token;
use super::node::{AttachFailed, Inbound, Inbox, Node, cannot_move, disconnected, too_large};
use super::wire::{self, Attach, Attached, EndRef, Frame, Held, RegistryRequest, Side, VERSION};
use crate::channel::{
    Bytes, Channel, Claim, Endpoint, Holder, HostHold, LinkTaken, Message, Ready, ReceiverHandle, RecvOr,
    SendOr, SenderHandle,
};
use crate::error::ClusterError;
use crate::error::Failure;
use crate::sync::Unpoisoned;

/// A channel exported under a name.
pub(super) struct Export {
    chan: Arc<Channel>,
    /// For a name of the registry: the fingerprint of the type it was registered
    /// with, which the node that looks it up checks.
    fingerprint: Option<String>,
    /// The end that stands in for the remote side until its first lease attaches,
    /// so that the channel does not look closed meanwhile.
    stand_in: Mutex<Option<StandIn>>,
}

/// An end held only so that it exists (dropped, it counts no more).
enum StandIn {
    Sender { _end: SenderHandle, _hold: HostHold },
    Receiver { _end: ReceiverHandle, _hold: HostHold },
}

impl Export {
    /// This node receives (it keeps `tx`'s end as the stand-in sender). A
    /// rendezvous channel (capacity 0) is fine: remote sends complete when a
    /// receiver here takes their value.
    pub(super) fn receiver_side<T>(tx: crate::channel::Sender<T>) -> Export {
        Export {
            chan: tx.handle.channel().clone(),
            fingerprint: None,
            stand_in: Mutex::new(Some(StandIn::Sender {
                _end: tx.handle,
                _hold: tx.hold,
            })),
        }
    }

    /// This node sends (it keeps `rx`'s end as the stand-in receiver).
    pub(super) fn sender_side<T>(rx: crate::channel::Receiver<T>) -> Export {
        Export {
            chan: rx.handle.channel().clone(),
            fingerprint: None,
            stand_in: Mutex::new(Some(StandIn::Receiver {
                _end: rx.handle,
                _hold: rx.hold,
            })),
        }
    }

    /// A channel end carried in a message to another node (a sender or a
    /// receiver), held as the stand-in until that node attaches its own.
    pub(super) fn carried(end: Endpoint, hold: HostHold) -> Export {
        let (chan, stand_in) = match end {
            Endpoint::Sender(s) => (s.channel().clone(), StandIn::Sender { _end: s, _hold: hold }),
            Endpoint::Receiver(r) => (r.channel().clone(), StandIn::Receiver { _end: r, _hold: hold }),
            Endpoint::Listener(_) | Endpoint::Stream(_) => {
                unreachable!("sockets are refused before they are carried")
            }
        };
        Export {
            chan,
            fingerprint: None,
            stand_in: Mutex::new(Some(stand_in)),
        }
    }

    /// A channel a microthread registered under a name of the registry, with the
    /// fingerprint of its type: remote nodes attach senders to it.
    pub(super) fn registered(chan: Arc<Channel>, fingerprint: &str) -> Export {
        Export {
            chan,
            fingerprint: Some(fingerprint.to_string()),
            stand_in: Mutex::new(None),
        }
    }

    /// The stand-in for `side`, once a real end of that side has attached.
    fn drop_stand_in(&self, side: Side) {
        let mut stand_in = self.stand_in.locked();
        let matches = matches!(
            (&*stand_in, side),
            (Some(StandIn::Sender { .. }), Side::Sender) | (Some(StandIn::Receiver { .. }), Side::Receiver)
        );
        if matches {
            let gone = stand_in.take();
            drop(stand_in);
            drop(gone);
        }
    }
}

/// The channels this node exports, by name.
#[derive(Default)]
pub(super) struct Exports(Mutex<HashMap<String, Arc<Export>>>);

impl Exports {
    /// Export `export` under `name`: answer attachments on the name's subject.
    pub(super) fn add(&self, node: &Arc<Node>, name: &str, export: Export) -> Result<(), ClusterError> {
        check_token("exported name", name)?;
        let export = Arc::new(export);
        {
            let mut exports = self.0.locked();
            if exports.contains_key(name) {
                return Err(ClusterError::NameTaken(name.to_string()));
            }
            exports.insert(name.to_string(), export.clone());
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let node2 = node.clone();
        let subject = node.name_subject(name);
        node.handle().spawn(async move {
            match node2.client().subscribe(subject).await {
                Ok(sub) => {
                    let _receiver_waits = done_tx.send(Ok(()));
                    answer_requests(node2, export, sub).await;
                }
                Err(e) => {
                    let _receiver_waits = done_tx.send(Err(e.to_string()));
                }
            }
        });
        match done_rx.recv_timeout(node.config.connect_timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.0.locked().remove(name);
                Err(ClusterError::Lost(format!("cannot listen for {name:?}: {e}")))
            }
            Err(_) => {
                self.0.locked().remove(name);
                Err(ClusterError::Lost(format!(
                    "the server did not confirm the subscription for {name:?}"
                )))
            }
        }
    }
}

/// Answer the requests on an exported channel's subject (a name's, a registry
/// name's, a carried end's: is it held? attach an end) until the export is
/// withdrawn (this task is aborted) or the node goes.
pub(super) async fn answer_requests(
    node: Arc<Node>,
    export: Arc<Export>,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        answer(&node, &export, request).await;
    }
}

/// Answer one request on an exported channel's subject.
async fn answer(node: &Arc<Node>, export: &Export, request: async_nats::Message) {
    let Some(reply) = request.reply else {
        return;
    };
    let answer = match wire::decode::<RegistryRequest>(&request.payload) {
        Ok(RegistryRequest::Probe) => wire::encode(&Held {
            node: node.id().to_string(),
        }),
        Ok(RegistryRequest::Attach(a)) if a.version == VERSION => wire::encode(&attach(node, export, a)),
        Ok(RegistryRequest::Attach(a)) => wire::encode(&Attached::No(format!(
            "protocol version {} asked, this node speaks {VERSION}: run the same weft on every node",
            a.version
        ))),
        Err(e) => wire::encode(&Attached::No(e)),
    };
    if let Err(e) = node.client().publish(reply, answer).await {
        tracing::warn!("cannot answer a request for an exported channel: {e}");
    }
}

/// Attach a remote end, and start its lease's task.
pub(super) fn attach(node: &Arc<Node>, export: &Export, a: Attach) -> Attached {
    if node.members().is_dead(&a.holder) {
        return Attached::No(format!("node {} was declared down", a.holder));
    }
    node.members().heard(&a.holder);
    let chan = &export.chan;
    match a.side {
        Side::Sender => {
            let holder = Arc::new(Holder::new(None));
            let Some(tx) = chan.attach_sender(Some(holder.clone())) else {
                return Attached::No("the channel is closed: its senders are all gone".into());
            };
            let hold = HostHold::new(chan, true);
            let inbox = node.add_home(&a.holder, a.lease);
            export.drop_stand_in(Side::Sender);
            node.handle().spawn(sender_lease(
                node.clone(),
                a.holder,
                a.lease,
                tx,
                hold,
                holder,
                inbox,
            ));
        }
        Side::Receiver => {
            let Some(rx) = chan.attach_receiver() else {
                return Attached::No("the channel's receivers are all gone".into());
            };
            let hold = HostHold::new(chan, false);
            let inbox = node.add_home(&a.holder, a.lease);
            export.drop_stand_in(Side::Receiver);
            if chan.capacity() == 0 {
                node.handle()
                    .spawn(rendezvous_lease(node.clone(), a.holder, a.lease, rx, hold, inbox));
            } else {
                node.handle()
                    .spawn(receiver_lease(node.clone(), a.holder, a.lease, rx, hold, inbox));
            }
        }
    }
    Attached::Yes {
        home: node.id().to_string(),
        capacity: chan.capacity() as u64,
        fingerprint: export.fingerprint.clone(),
    }
}

/// The lease of a remote sender: grant credit, put what arrives on it.
async fn sender_lease(
    node: Arc<Node>,
    holder_node: String,
    lease: u64,
    tx: SenderHandle,
    hold: HostHold,
    holder: Arc<Holder>,
    inbox: Arc<Inbox>,
) {
    let chan = tx.channel().clone();
    let window = chan.capacity().min(wire::SEND_WINDOW);
    let watch = chan.watch();
    // What the remote side's messages count against: nobody's budget here (the
    // credit bounds them).
    let charge = Some(node.budget());
    let mut granted = 0usize;
    let mut expected = 0u64;
    let failed: Option<Failure> = 'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if !chan.has_receivers() {
            let _lost_anyway = node.send(&holder_node, Frame::Closed { lease }).await;
            break None;
        }
        // Credit goes out in batches of half the window at least (or when the
        // remote side has none left): a frame per message freed would double the
        // traffic.
        let want = window - granted;
        if want > 0 && (want * 2 >= window || granted == 0) {
            let n = chan.reserve(want);
            if n > 0 {
                granted += n;
                let credit = Frame::Credit { lease, n: n as u32 };
                if let Err(e) = node.send(&holder_node, credit).await {
                    break Some(disconnected(&holder_node, &e));
                }
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Send { seq, bytes, ends, .. }) => {
                    if seq != expected || granted == 0 {
                        let why =
                            format!("its message {expected} was lost (got {seq}, with {granted} credit)");
                        break 'lease Some(disconnected(&holder_node, &why));
                    }
                    expected += 1;
                    granted -= 1;
                    let endpoints = match take_ends(&node, &holder_node, ends).await {
                        Ok(endpoints) => endpoints,
                        Err(f) => break 'lease Some(f),
                    };
                    let msg = Message {
                        sent_at: None,
                        bytes: Bytes::from(bytes),
                        endpoints,
                    };
                    if chan.put_reserved(msg, &charge).is_err() {
                        let _lost_anyway = node.send(&holder_node, Frame::Closed { lease }).await;
                        break 'lease None;
                    }
                }
                Inbound::Frame(Frame::Offer { seq, bytes, ends, .. }) => {
                    // A rendezvous channel: the remote send completes when a
                    // receiver here takes the value.
                    if seq != expected {
                        let why = format!("its offer {expected} was lost (got {seq})");
                        break 'lease Some(disconnected(&holder_node, &why));
                    }
                    expected += 1;
                    let endpoints = match take_ends(&node, &holder_node, ends).await {
                        Ok(endpoints) => endpoints,
                        Err(f) => break 'lease Some(f),
                    };
                    let mut msg = Message {
                        sent_at: None,
                        bytes: Bytes::from(bytes),
                        endpoints,
                    };
                    loop {
                        match chan.send_or(msg, charge.clone(), inbox.ready()).await {
                            SendOr::Done(Ready::Sent) => {
                                let taken = Frame::Taken { lease, seq };
                                if let Err(e) = node.send(&holder_node, taken).await {
                                    break 'lease Some(disconnected(&holder_node, &e));
                                }
                                break;
                            }
                            SendOr::Done(_) => {
                                let _lost_anyway = node.send(&holder_node, Frame::Closed { lease }).await;
                                break 'lease None;
                            }
                            // Something came while the offer waited for a receiver:
                            // only the lease's end matters now (one offer at a time).
                            SendOr::Woken(back) => {
                                for what in inbox.drain() {
                                    match what {
                                        Inbound::Frame(Frame::Release { failure, .. }) => {
                                            break 'lease failure.map(Failure::from);
                                        }
                                        Inbound::Down(f) => break 'lease Some(f),
                                        Inbound::Leave => break 'lease None,
                                        Inbound::Frame(other) => {
                                            tracing::debug!(
                                                ?other,
                                                "a frame an offer's lease does not expect"
                                            )
                                        }
                                    }
                                }
                                msg = back;
                            }
                        }
                    }
                }
                Inbound::Frame(Frame::Release { failure, .. }) => break 'lease failure.map(Failure::from),
                Inbound::Down(f) => break 'lease Some(f),
                Inbound::Leave => break 'lease None,
                Inbound::Frame(other) => tracing::debug!(?other, "a frame a sender's lease does not expect"),
            }
        }
    };
    chan.unreserve(granted);
    if let Some(f) = failed {
        holder.fail(f);
    }
    node.remove_home(&holder_node, lease);
    drop(tx);
    drop(hold);
}

/// The lease of a remote receiver of a rendezvous channel: on each demand (a
/// receiver waits on the holder's node), the first waiting send's message here is
/// claimed ([`Channel::claim_send`]) and delivered; the send completes when the
/// holder says a receiver took it (`Ack`), and waits on, first in line, when none
/// did (`Nack`) or the lease ends.
async fn rendezvous_lease(
    node: Arc<Node>,
    holder_node: String,
    lease: u64,
    rx: ReceiverHandle,
    hold: HostHold,
    inbox: Arc<Inbox>,
) {
    let chan = rx.channel().clone();
    let watch = chan.watch();
    let mut demand = 0u64;
    let mut seq = 0u64;
    let mut offered: Option<Claim> = None;
    'lease: loop {
        let changed = watch.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Demand { n, .. }) => demand += u64::from(n),
                Inbound::Frame(Frame::Ack { seq: acked, .. }) if acked + 1 == seq => {
                    if let Some(claim) = offered.take() {
                        claim.taken();
                    }
                }
                Inbound::Frame(Frame::Nack { seq: nacked, .. }) if nacked + 1 == seq => {
                    if let Some(claim) = offered.take() {
                        chan.unclaim(claim);
                    }
                }
                Inbound::Frame(Frame::Release { .. }) | Inbound::Down(_) | Inbound::Leave => break 'lease,
                Inbound::Frame(other) => {
                    tracing::debug!(?other, "a frame a rendezvous receiver's lease does not expect")
                }
            }
        }
        if offered.is_none() && demand > 0 {
            if let Some(mut claim) = chan.claim_send() {
                let endpoints = std::mem::take(&mut claim.message.endpoints);
                let len = claim.message.bytes.as_slice().len();
                let carried = if len > node.max_message() {
                    Err(too_large(&node, len))
                } else if endpoints.is_empty() {
                    Ok(Vec::new())
                } else {
                    // A rendezvous delivery carries no ends: the send fails alone.
                    claim.message.endpoints = endpoints;
                    Err(cannot_move(&node, "a message sent on it"))
                };
                match carried {
                    Err(f) => claim.refused(Ready::Failed(f)),
                    Ok(ends) => {
                        let deliver = Frame::Deliver {
                            lease,
                            seq,
                            bytes: claim.message.bytes.as_slice().to_vec(),
                            ends,
                        };
                        seq += 1;
                        demand -= 1;
                        offered = Some(claim);
                        if let Err(e) = node.send(&holder_node, deliver).await {
                            tracing::warn!("{e}: the lease ends");
                            break 'lease;
                        }
                    }
                }
                continue;
            }
            if let LinkTaken::Ended(ready) = chan.take_for_link() {
                let failure = match &ready {
                    Ready::Failed(f) => Some(f.into()),
                    _ => None,
                };
                let _lost_anyway = node.send(&holder_node, Frame::End { lease, failure }).await;
                break 'lease;
            }
        }
        tokio::select! {
            () = inbox.ready() => {}
            () = &mut changed => {}
        }
    }
    // An offer still out was not taken: its send waits on here.
    if let Some(claim) = offered {
        chan.unclaim(claim);
    }
    node.remove_home(&holder_node, lease);
    drop(rx);
    drop(hold);
}

/// The lease of a remote receiver: deliver on its demand.
async fn receiver_lease(
    node: Arc<Node>,
    holder_node: String,
    lease: u64,
    rx: ReceiverHandle,
    hold: HostHold,
    inbox: Arc<Inbox>,
) {
    let chan = rx.channel().clone();
    let mut demand = 0u64;
    let mut seq = 0u64;
    'lease: loop {
        for what in inbox.drain() {
            match what {
                Inbound::Frame(Frame::Demand { n, .. }) => demand += u64::from(n),
                Inbound::Frame(Frame::Release { .. }) | Inbound::Down(_) | Inbound::Leave => break 'lease,
                Inbound::Frame(other) => {
                    tracing::debug!(?other, "a frame a receiver's lease does not expect")
                }
            }
        }
        if demand == 0 {
            inbox.ready().await;
            continue;
        }
        let frame = match chan.recv_or(inbox.ready()).await {
            RecvOr::Woken => continue,
            RecvOr::Got(Ready::Received(m)) => {
                if m.bytes.as_slice().len() > node.max_message() {
                    Frame::End {
                        lease,
                        failure: Some((&too_large(&node, m.bytes.as_slice().len())).into()),
                    }
                } else {
                    match send_ends(&node, m.endpoints, "a message it received").await {
                        Ok(ends) => {
                            seq += 1;
                            demand -= 1;
                            Frame::Deliver {
                                lease,
                                seq: seq - 1,
                                bytes: m.bytes.into_vec(),
                                ends,
                            }
                        }
                        Err(f) => Frame::End {
                            lease,
                            failure: Some((&f).into()),
                        },
                    }
                }
            }
            RecvOr::Got(Ready::Failed(f)) => Frame::End {
                lease,
                failure: Some((&f).into()),
            },
            RecvOr::Got(_) => Frame::End { lease, failure: None },
        };
        let ends = matches!(frame, Frame::End { .. });
        if let Err(e) = node.send(&holder_node, frame).await {
            tracing::warn!("{e}: the lease ends");
            break;
        }
        if ends {
            break;
        }
    }
    node.remove_home(&holder_node, lease);
    drop(rx);
    drop(hold);
}

// Channel ends carried in messages between nodes.
//
// Channel ends carried in messages between nodes. A sender in a message that
// leaves this node is published under a one-time token (`weft.<cluster>.end.<token>`);
// the node that gets the message attaches a sender of its own to it, and only
// then delivers the message: the carried sender stands in until that attachment
// (acquire before release), so the channel never looks closed in between. A
// token nobody attaches to within [`UNCLAIMED`] is withdrawn (its message was
// lost with a failed link, which said so). Receivers and sockets cannot cross
// nodes (yet): a message carrying one is refused with a failure that says so.

/// How long a carried sender waits for the node that received its message.
const UNCLAIMED: Duration = Duration::from_secs(60);

/// How long attaching to a carried sender may take.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

fn subject(node: &Node, token: &str) -> String {
    format!("weft.{}.end.{token}", node.cluster_name())
}

/// Publish the channel ends among `endpoints` for the node a message goes to:
/// their references, in order. A socket (or a receiver of a rendezvous channel)
/// refuses the message.
pub(super) async fn send_ends(
    node: &Arc<Node>,
    endpoints: Vec<Endpoint>,
    what: &str,
) -> Result<Vec<EndRef>, Failure> {
    // Not withdrawn: the tasks answer the attachments, or time out.
    Ok(send_ends_withdrawable(node, endpoints, what).await?.0)
}

/// [`send_ends`], with the tasks that answer the ends' attachments: aborting them
/// withdraws the ends (what a refused spawn does).
pub(super) async fn send_ends_withdrawable(
    node: &Arc<Node>,
    endpoints: Vec<Endpoint>,
    what: &str,
) -> Result<(Vec<EndRef>, Vec<tokio::task::AbortHandle>), Failure> {
    let movable = |e: &Endpoint| match e {
        Endpoint::Sender(_) | Endpoint::Receiver(_) => true,
        Endpoint::Listener(_) | Endpoint::Stream(_) => false,
    };
    if endpoints.is_empty() {
        // Most messages carry none: nothing to publish, nothing to wait for.
        return Ok((Vec::new(), Vec::new()));
    }
    if !endpoints.iter().all(movable) {
        return Err(cannot_move(node, what));
    }
    let mut refs = Vec::with_capacity(endpoints.len());
    let mut answering = Vec::with_capacity(endpoints.len());
    for end in endpoints {
        let (chan, side) = match &end {
            Endpoint::Sender(s) => (s.channel().clone(), Side::Sender),
            Endpoint::Receiver(r) => (r.channel().clone(), Side::Receiver),
            Endpoint::Listener(_) | Endpoint::Stream(_) => unreachable!("checked above"),
        };
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let requests = node
            .client()
            .subscribe(subject(node, &token))
            .await
            .map_err(|e| {
                disconnected(
                    node.id().as_ref(),
                    &format!("cannot publish a carried sender: {e}"),
                )
            })?;
        let hold = HostHold::new(&chan, side == Side::Sender);
        let capacity = chan.capacity() as u64;
        let export = Arc::new(Export::carried(end, hold));
        answering.push(
            node.handle()
                .spawn(answer_once(node.clone(), export, requests))
                .abort_handle(),
        );
        refs.push(EndRef {
            token,
            capacity,
            side,
        });
    }
    // The subscriptions are in place before the message that names them leaves
    // (within the node timeout: past it, the link counts as lost anyway).
    let me = node.id();
    match tokio::time::timeout(node.config.node_timeout, node.client().flush()).await {
        Ok(Ok(())) => Ok((refs, answering)),
        Ok(Err(e)) => Err(disconnected(
            &me,
            &format!("cannot publish a carried sender: {e}"),
        )),
        Err(_) => Err(disconnected(
            &me,
            "the server did not confirm a carried sender in time (is it gone?)",
        )),
    }
}

/// Answer the one attachment to a carried sender (the stand-in goes then), or
/// withdraw it after [`UNCLAIMED`].
async fn answer_once(node: Arc<Node>, export: Arc<Export>, mut requests: async_nats::Subscriber) {
    match tokio::time::timeout(UNCLAIMED, requests.next()).await {
        Ok(Some(request)) => answer(&node, &export, request).await,
        _ => tracing::debug!("a carried end was not attached to within {UNCLAIMED:?}: withdrawn"),
    }
}

/// Attach a sender of this node's to each carried sender `ends` names, in order.
pub(super) async fn take_ends(
    node: &Arc<Node>,
    from: &str,
    ends: Vec<EndRef>,
) -> Result<Vec<Endpoint>, Failure> {
    let mut endpoints = Vec::with_capacity(ends.len());
    for end in ends {
        let why = match node
            .attach_once(subject(node, &end.token), end.side, ATTACH_TIMEOUT)
            .await
        {
            Ok(a) => {
                endpoints.push(node.proxy(end.side, a.lease, a.home, a.capacity, a.inbox));
                continue;
            }
            Err(AttachFailed::NoResponders) => "it is gone".to_string(),
            Err(AttachFailed::Refused(reason) | AttachFailed::Lost(reason)) => reason,
        };
        return Err(disconnected(
            from,
            &format!("an end carried in its message: {why}"),
        ));
    }
    Ok(endpoints)
}
