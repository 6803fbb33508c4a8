//! Spawns across nodes: a microthread asks another node to start a function of
//! the same program, and gets back, as its child, a *stand-in* that ends as the
//! remote microthread ends.
//!
//! - The parent's node asks with one request on the other node's spawn subject
//!   (`weft.<cluster>.spawn.<node id>`), naming the program by its content hash, the
//!   function, and the argument with the senders it carries (published as carried
//!   ends, attached there before the child starts). The answer is `Started` or a
//!   [`Refusal`]; a refused spawn's senders are withdrawn, and the argument goes
//!   back whole.
//! - The child's node reports its end with a `Finished` frame (its result, and the
//!   senders in it, or its failure); the parent's node asks it to stop with `Stop`
//!   (its cancellation, or its grace period over).
//! - When the child's node goes down, the stand-in ends with a failure of kind
//!   [`NodeDown`](crate::FailureKind::NodeDown); when the parent's node goes down,
//!   the child is cancelled.
//!
//! What a spawn starts in is a [`Target`] (a run of the program, registered by the
//! runtime), and what it starts a [`Child`]: this module knows only the wire.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use super::home::{send_ends, send_ends_withdrawable, take_ends};
use super::node::{Inbound, Inbox, Node, Spawning, too_large};
use super::wire::{self, Frame, Refusal, SpawnReply, SpawnRequest, VERSION, WireFailure};
use crate::channel::{Endpoint, Message};
use crate::error::{Failure, FailureKind};
use crate::sync::Unpoisoned;

/// What a spawn from another node starts in: a run of the program.
pub(crate) trait Target: Send + Sync {
    /// Whether the run still takes spawns.
    fn is_live(&self) -> bool;

    /// Whether there is room for one more microthread now; if not, the maximum.
    fn room(&self) -> Result<(), u32>;

    /// Start the microthread; refused, the argument comes back.
    fn start(&self, incoming: Incoming) -> Result<Arc<dyn Child>, (Refusal, Message)>;
}

/// A spawn from another node, its carried senders attached here.
pub(crate) struct Incoming {
    pub(crate) trampoline: u32,
    pub(crate) function: u32,
    pub(crate) argument: Message,
    pub(crate) name: Option<String>,
}

/// A microthread started for another node's spawn.
pub(crate) trait Child: Send + Sync {
    /// Its id in its run.
    fn id(&self) -> u64;

    /// Cancel it with its run's grace, or stop it `now`, wherever it is.
    fn stop(&self, now: bool);

    /// Resolves with its result or its failure, once it has ended.
    fn outcome(&self) -> Pin<Box<dyn Future<Output = Result<Message, Failure>> + Send>>;
}

/// A spawn to ask another node for.
pub(crate) struct Outgoing {
    /// The program's content hash.
    pub(crate) program: String,
    pub(crate) trampoline: u32,
    pub(crate) function: u32,
    pub(crate) argument: Message,
    pub(crate) name: Option<String>,
}

/// What a node knows of spawns: what they start in here, the children started
/// here for other nodes, the stand-ins here waiting for other nodes' children.
#[derive(Default)]
pub(super) struct Spawns {
    /// The runs that take spawns, by program hash.
    targets: Mutex<HashMap<String, Vec<Arc<dyn Target>>>>,
    /// Children started here, by their parent's node and its ticket.
    children: Mutex<HashMap<(String, u64), Arc<dyn Child>>>,
    /// Stand-ins here, by ticket: the node that runs the child, and the inbox
    /// where its end arrives.
    waiting: Mutex<HashMap<u64, (String, Arc<Inbox>)>>,
    /// A run registered to take spawns.
    served: tokio::sync::Notify,
}

impl Spawns {
    /// Spawns of `program` may start in `target` (while it is live).
    pub(super) fn serve(&self, program: &str, target: Arc<dyn Target>) {
        let mut targets = self.targets.locked();
        targets.retain(|_, ts| {
            ts.retain(|t| t.is_live());
            !ts.is_empty()
        });
        targets.entry(program.to_string()).or_default().push(target);
        drop(targets);
        self.served.notify_waiters();
    }

    /// The live run of `program`; on a node that runs no program yet (it joined,
    /// and is still loading it), once it does, within `timeout`.
    async fn target_once_serving(
        &self,
        program: &str,
        timeout: std::time::Duration,
    ) -> Option<Arc<dyn Target>> {
        let serving = crate::sync::until(&self.served, || {
            self.target(program)
                .map(Some)
                .or_else(|| (!self.programs().is_empty()).then_some(None))
        });
        tokio::time::timeout(timeout, serving).await.ok().flatten()
    }

    /// The live run of `program`, if there is one.
    fn target(&self, program: &str) -> Option<Arc<dyn Target>> {
        let targets = self.targets.locked();
        targets.get(program)?.iter().find(|t| t.is_live()).cloned()
    }

    /// The programs this node runs (for a refusal's words).
    fn programs(&self) -> Vec<String> {
        let targets = self.targets.locked();
        let mut programs: Vec<String> = targets
            .iter()
            .filter(|(_, ts)| ts.iter().any(|t| t.is_live()))
            .map(|(p, _)| short(p).to_string())
            .collect();
        programs.sort();
        programs
    }
}

impl Spawning for Spawns {
    fn frame(&self, from: &str, frame: Frame) {
        match frame {
            Frame::Finished { ticket, .. } => {
                let waiting = self.waiting.locked();
                if let Some((node, inbox)) = waiting.get(&ticket)
                    && node == from
                {
                    inbox.push(Inbound::Frame(frame));
                }
            }
            Frame::Stop { ticket, now } => {
                let child = self.children.locked().get(&(from.to_string(), ticket)).cloned();
                if let Some(child) = child {
                    child.stop(now);
                }
            }
            other => tracing::debug!("not a frame of a spawn: {other:?}"),
        }
    }

    /// Node `id` is down: the stand-ins of its children fail, the children of its
    /// microthreads are cancelled.
    fn node_down(&self, id: &str, failure: &Failure) {
        for (node, inbox) in self.waiting.locked().values() {
            if node == id {
                inbox.push(Inbound::Down(failure.clone()));
            }
        }
        let orphans: Vec<Arc<dyn Child>> = self
            .children
            .locked()
            .iter()
            .filter(|((parent, _), _)| parent == id)
            .map(|(_, child)| child.clone())
            .collect();
        for child in orphans {
            child.stop(false);
        }
    }

    /// This node leaves the cluster.
    fn leave(&self) {
        for (_, inbox) in self.waiting.locked().values() {
            inbox.push(Inbound::Leave);
        }
    }

    fn serve(self: Arc<Self>, node: &Arc<Node>, me: Arc<str>, requests: async_nats::Subscriber) {
        node.handle()
            .spawn(answer_spawns(self, Arc::downgrade(node), me, requests));
    }
}

/// The first characters of a program hash, as shown.
fn short(program: &str) -> &str {
    &program[..program.len().min(12)]
}

/// Answer the spawn requests that arrive for incarnation `me` of the node.
async fn answer_spawns(
    spawns: Arc<Spawns>,
    node: std::sync::Weak<Node>,
    me: Arc<str>,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        let Some(node) = node.upgrade() else { return };
        if node.id() != me {
            return;
        }
        // Attaching its senders takes round trips: the next request need not wait.
        node.handle()
            .spawn(answer_spawn(spawns.clone(), node.clone(), request));
    }
}

async fn answer_spawn(spawns: Arc<Spawns>, node: Arc<Node>, request: async_nats::Message) {
    let Some(reply) = request.reply.clone() else {
        tracing::warn!("a spawn request without a reply subject was ignored");
        return;
    };
    let answer = match wire::decode::<SpawnRequest>(&request.payload) {
        Ok(r) if r.version == VERSION => start(&spawns, &node, r).await,
        Ok(r) => SpawnReply::Refused(Refusal::NoSuchNode(format!(
            "node {} speaks protocol version {VERSION}, and node {} version {}: are all nodes the same weft?",
            node.id(),
            r.parent,
            r.version
        ))),
        Err(e) => {
            tracing::warn!("ignored a spawn request: {e}");
            return;
        }
    };
    if let Err(e) = node.client().publish(reply, wire::encode(&answer)).await {
        // Its parent's node will not know of it: it stops the child itself when
        // its request times out.
        tracing::warn!("cannot answer a spawn request: {e}");
    }
}

/// Start what `r` asks for here.
async fn start(spawns: &Arc<Spawns>, node: &Arc<Node>, r: SpawnRequest) -> SpawnReply {
    let me = node.id();
    if node.members().is_dead(&r.parent) {
        return SpawnReply::Refused(Refusal::NoSuchNode(format!(
            "node {me} declared the parent's node {} down",
            r.parent
        )));
    }
    // The parent's node is watched from now on: should it go silent, the child is
    // cancelled.
    node.members().heard(&r.parent);
    // Within the requester's patience, so that it hears why.
    let waited = node.config.import_timeout / 2;
    let Some(target) = spawns.target_once_serving(&r.program, waited).await else {
        let runs = spawns.programs();
        let runs = match runs.is_empty() {
            true => "no program".to_string(),
            false => format!("program {}", runs.join(", ")),
        };
        return SpawnReply::Refused(Refusal::NoSuchProgram(format!(
            "node {me} does not run program {} (it runs {runs})",
            short(&r.program)
        )));
    };
    if let Err(max) = target.room() {
        return SpawnReply::Refused(Refusal::LimitReached(max));
    }
    let endpoints = match take_ends(node, &r.parent, r.ends).await {
        Ok(endpoints) => endpoints,
        Err(f) => {
            return SpawnReply::Refused(Refusal::CannotMove(format!(
                "a sender in the argument could not be attached on node {me}: {}",
                f.message
            )));
        }
    };
    let incoming = Incoming {
        trampoline: r.trampoline,
        function: r.function,
        argument: Message {
            sent_at: None,
            bytes: r.bytes.into(),
            endpoints,
        },
        name: r.name,
    };
    match target.start(incoming) {
        Err((refusal, _argument)) => SpawnReply::Refused(refusal),
        Ok(child) => {
            let id = child.id();
            spawns
                .children
                .locked()
                .insert((r.parent.clone(), r.ticket), child.clone());
            node.handle()
                .spawn(report(spawns.clone(), node.clone(), r.parent, r.ticket, child));
            SpawnReply::Started { id }
        }
    }
}

/// Wait for a child started here to end, and tell its parent's node how.
async fn report(spawns: Arc<Spawns>, node: Arc<Node>, parent: String, ticket: u64, child: Arc<dyn Child>) {
    let outcome = child.outcome().await;
    spawns.children.locked().remove(&(parent.clone(), ticket));
    let outcome = match outcome {
        Ok(m) if m.bytes.len() > node.max_message() => {
            Err(WireFailure::from(&too_large(&node, m.bytes.len())))
        }
        Ok(m) => match send_ends(&node, m.endpoints, "its result").await {
            Ok(ends) => Ok((m.bytes.into_vec(), ends)),
            Err(f) => Err(WireFailure::from(&f)),
        },
        Err(f) => Err(WireFailure::from(&f)),
    };
    if node.members().is_dead(&parent) {
        return;
    }
    if let Err(e) = node.send(&parent, Frame::Finished { ticket, outcome }).await {
        tracing::warn!("the end of a microthread spawned by node {parent} could not be told: {e}");
    }
}

/// Ask node `to` to start `out`: the stand-in's side, once it has started there.
pub(super) async fn spawn_on(
    node: &Arc<Node>,
    spawns: &Arc<Spawns>,
    to: &str,
    out: Outgoing,
) -> Result<Started, (Refusal, Message)> {
    let Outgoing {
        program,
        trampoline,
        function,
        argument,
        name,
    } = out;
    if !node.members().is_live(to) {
        let live: Vec<String> = node
            .members()
            .live(&node.id(), (0, 0.0))
            .into_iter()
            .map(|n| n.id)
            .collect();
        let why = format!(
            "{to} is not a live node of cluster {} (live: {})",
            node.cluster_name(),
            live.join(", ")
        );
        return Err((Refusal::NoSuchNode(why), argument));
    }
    let max = node.max_message();
    if argument.bytes.len() > max {
        return Err((
            Refusal::TooLarge(u32::try_from(max).unwrap_or(u32::MAX)),
            argument,
        ));
    }
    let unmovable = argument.endpoints.iter().find_map(|e| match e {
        Endpoint::Sender(_) => None,
        Endpoint::Receiver(_) => Some("a receiver"),
        Endpoint::Listener(_) => Some("a listening socket"),
        Endpoint::Stream(_) => Some("a TCP stream"),
    });
    if let Some(what) = unmovable {
        let why = format!(
            "the argument carries {what}, and only senders move to another node: keep it here, and give the child a sender"
        );
        return Err((Refusal::CannotMove(why), argument));
    }
    // Other senders of the same channels go; the argument's own stay until the
    // child has started, so that a refusal gives them back as they were.
    let carried: Vec<Endpoint> = argument
        .endpoints
        .iter()
        .map(|e| match e {
            Endpoint::Sender(s) => Endpoint::Sender(s.clone_for(None)),
            _ => unreachable!("only senders are carried (checked above)"),
        })
        .collect();
    let (ends, answering) = match send_ends_withdrawable(node, carried, "the argument").await {
        Ok(published) => published,
        Err(f) => return Err((Refusal::NoSuchNode(f.message), argument)),
    };
    let withdraw = Withdraw(answering);
    let ticket = node.next_lease();
    let inbox = spawns.wait(to, ticket);
    let request = SpawnRequest {
        version: VERSION,
        parent: node.id().to_string(),
        ticket,
        program,
        trampoline,
        function,
        name,
        bytes: argument.bytes.as_slice().to_vec(),
        ends,
    };
    let timeout = node.config.import_timeout;
    let asked = node
        .client()
        .request(node.spawn_subject(to), wire::encode(&request));
    let answer = match tokio::time::timeout(timeout, asked).await {
        Ok(Ok(reply)) => wire::decode::<SpawnReply>(&reply.payload)
            .map_err(|e| Refusal::NoSuchNode(format!("node {to} answered the spawn with {e}"))),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => Err(Refusal::NoSuchNode(
            format!("node {to} takes no spawns: it is gone"),
        )),
        Ok(Err(e)) => Err(Refusal::NoSuchNode(format!("asking node {to}: {e}"))),
        Err(_) => {
            // It may have started it: it must not run on, unwatched.
            let _lost_anyway = node.send(to, Frame::Stop { ticket, now: true }).await;
            Err(Refusal::NoSuchNode(format!(
                "node {to} did not answer the spawn within {timeout:?}"
            )))
        }
    };
    match answer {
        Ok(SpawnReply::Started { id }) => {
            // The child holds its own senders now.
            withdraw.keep();
            drop(argument);
            Ok(Started {
                node: node.clone(),
                spawns: spawns.clone(),
                to: to.to_string(),
                ticket,
                id,
                inbox,
                done: false,
            })
        }
        Ok(SpawnReply::Refused(refusal)) | Err(refusal) => {
            spawns.waiting.locked().remove(&ticket);
            drop(withdraw);
            Err((refusal, argument))
        }
    }
}

impl Spawns {
    /// A stand-in waits for ticket `ticket`, run on node `to`.
    fn wait(&self, to: &str, ticket: u64) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        self.waiting
            .locked()
            .insert(ticket, (to.to_string(), inbox.clone()));
        inbox
    }
}

/// Withdraws carried ends (aborts the tasks that would answer their attachments)
/// when dropped, unless kept.
struct Withdraw(Vec<tokio::task::AbortHandle>);

impl Withdraw {
    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A microthread started on another node: what its stand-in waits on. Dropped
/// before that microthread's end came (its stand-in was stopped), it stops it.
pub(crate) struct Started {
    node: Arc<Node>,
    spawns: Arc<Spawns>,
    to: String,
    ticket: u64,
    id: u64,
    inbox: Arc<Inbox>,
    done: bool,
}

impl Started {
    /// The node it runs on.
    pub(crate) fn node(&self) -> &str {
        &self.to
    }

    /// Its id in its run there.
    pub(crate) fn remote_id(&self) -> u64 {
        self.id
    }

    /// Wait for its end: its result (with the senders in it attached here) or its
    /// failure. When `cancelled` resolves, it is asked to stop (with its node's
    /// grace); its end still comes. A node that goes down ends it with a failure
    /// of kind [`NodeDown`](FailureKind::NodeDown).
    pub(crate) async fn outcome(mut self, cancelled: impl Future<Output = ()>) -> Result<Message, Failure> {
        let mut cancelled = std::pin::pin!(cancelled);
        let mut asked = false;
        loop {
            for what in self.inbox.drain() {
                match what {
                    Inbound::Frame(Frame::Finished { outcome, .. }) => {
                        self.done = true;
                        return match outcome {
                            Ok((bytes, ends)) => {
                                let endpoints = take_ends(&self.node, &self.to, ends).await?;
                                Ok(Message {
                                    sent_at: None,
                                    bytes: bytes.into(),
                                    endpoints,
                                })
                            }
                            Err(f) => Err(f.into()),
                        };
                    }
                    Inbound::Frame(_) => {}
                    Inbound::Down(f) => {
                        self.done = true;
                        return Err(Failure {
                            kind: FailureKind::NodeDown,
                            message: format!(
                                "it ran on node {} (as microthread {}), which went down: {}",
                                self.to, self.id, f.message
                            ),
                            ..f
                        });
                    }
                    Inbound::Leave => {
                        return Err(Failure {
                            id: self.id,
                            name: None,
                            kind: FailureKind::NodeDown,
                            message: format!(
                                "it ran on node {} (as microthread {}), and this node left the cluster",
                                self.to, self.id
                            ),
                        });
                    }
                }
            }
            tokio::select! {
                () = self.inbox.ready() => {}
                () = &mut cancelled, if !asked => {
                    asked = true;
                    if let Err(e) = self.node.send(&self.to, Frame::Stop { ticket: self.ticket, now: false }).await {
                        tracing::debug!("{e}");
                    }
                }
            }
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.spawns.waiting.locked().remove(&self.ticket);
        if !self.done {
            let (node, to, ticket) = (self.node.clone(), self.to.clone(), self.ticket);
            self.node.handle().spawn(async move {
                if let Err(e) = node.send(&to, Frame::Stop { ticket, now: true }).await {
                    tracing::debug!("{e}");
                }
            });
        }
    }
}
