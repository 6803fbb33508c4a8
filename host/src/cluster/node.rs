//! One node's membership: the NATS connection, the tasks that listen on its
//! subjects (frames for it, heartbeats, attachments by name), the routing of each
//! frame to the lease it is for, and the lease tables.
//!
//! Each lease has a task of its own (`home.rs`, `proxy.rs`) with an [`Inbox`]: the
//! router only pushes frames into it, and a node declared down pushes a
//! [`Inbound::Down`] into every lease it shared with that node.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::config::{Auth, ClusterConfig, check_token, shown, url_credentials};
use super::members::{Heard, Members, Tell};
use super::wire::{self, Attach, Attached, Envelope, Frame, Heartbeat, RegistryRequest, Side, VERSION};
use crate::channel::{Budget, Endpoint};
use crate::error::ClusterError;
use crate::error::{Failure, FailureKind};
use crate::sync::Unpoisoned;

/// What a lease's task is told.
#[derive(Debug)]
pub(super) enum Inbound {
    /// A frame from the other side.
    Frame(Frame),
    /// The other side is gone: the lease fails with this.
    Down(Failure),
    /// This node is leaving: finish (what was dropped is released already).
    Leave,
}

/// A lease's inbox: frames queue here, and one notification wakes its task.
#[derive(Default)]
pub(super) struct Inbox {
    queue: Mutex<VecDeque<Inbound>>,
    ready: Notify,
}

impl Inbox {
    pub(super) fn push(&self, what: Inbound) {
        self.queue.locked().push_back(what);
        self.ready.notify_one();
    }

    /// Everything queued, in order.
    pub(super) fn drain(&self) -> Vec<Inbound> {
        self.queue.locked().drain(..).collect()
    }

    /// Resolves once something was pushed since the last call (or before it).
    pub(super) async fn ready(&self) {
        self.ready.notified().await;
    }
}

/// A lease attached by one request ([`Node::attach_once`]).
pub(super) struct Attachment {
    pub(super) lease: u64,
    /// The home node's id.
    pub(super) home: String,
    pub(super) capacity: u64,
    /// For a name of the registry, the fingerprint of its type.
    pub(super) fingerprint: Option<String>,
    pub(super) inbox: Arc<Inbox>,
}

/// Why an attachment by one request did not happen.
pub(super) enum AttachFailed {
    /// Nobody answers on the subject.
    NoResponders,
    /// The home refused: why.
    Refused(String),
    /// No answer in time, or the request failed: why.
    Lost(String),
}

/// A failure of kind `Disconnected`: the lease with `node` is lost, and why.
pub(super) fn disconnected(node: &str, why: &str) -> Failure {
    Failure {
        id: 0,
        name: Some(format!("node {node}")),
        kind: FailureKind::Disconnected,
        message: format!("the link to node {node} is lost: {why}"),
    }
}

/// The failure of a message that carries channel ends or sockets over a link.
pub(super) fn cannot_move(node: &Node, what: &str) -> Failure {
    Failure {
        id: 0,
        name: Some(format!("node {}", node.id())),
        kind: FailureKind::Disconnected,
        message: format!(
            "{what} carries channel ends or sockets, which cannot move between nodes (yet): \
             send plain values across nodes"
        ),
    }
}

/// The failure of a message too large for the link.
pub(super) fn too_large(node: &Node, len: usize) -> Failure {
    Failure {
        id: 0,
        name: Some(format!("node {}", node.id())),
        kind: FailureKind::Disconnected,
        message: format!(
            "a message of {len} bytes is larger than a link between nodes carries ({} bytes: the NATS \
             server's max_payload less a frame's overhead)",
            node.max_message()
        ),
    }
}

pub(super) struct Node {
    /// Its name.
    name: String,
    /// Its id, `name.incarnation`: a new incarnation after this node lost its
    /// connection past the node timeout (its leases failed; the others see a new
    /// member).
    id: Mutex<Arc<str>>,
    cluster: String,
    /// `weft.<cluster>`.
    prefix: String,
    client: async_nats::Client,
    handle: tokio::runtime::Handle,
    pub(super) config: ClusterConfig,
    max_payload: usize,
    members: Members,
    next_lease: AtomicU64,
    /// Leases of channels homed here, by holder node and lease id.
    homes: Mutex<HashMap<(String, u64), Arc<Inbox>>>,
    /// Leases this node holds, by lease id: the home node, and the inbox.
    proxies: Mutex<HashMap<u64, (String, Arc<Inbox>)>>,
    /// Since when this node's connection to the server is down, if it is.
    /// What remote senders' messages buffered here count against: no budget of a
    /// run's (their credit bounds them).
    budget: Arc<Budget>,
    /// How proxies are made (`proxy.rs`), for the home side, which makes them for
    /// the channel ends carried in messages (set when the node joins).
    make_proxy: OnceLock<MakeProxy>,
    /// How much room this node has for microthreads: free slots, and live ones
    /// per worker (set by the runtime; told in heartbeats).
    room: OnceLock<Room>,
    /// What this node does of spawns (`spawn.rs`), given when it joins.
    spawning: Arc<dyn Spawning>,
}

/// What a node does of spawns across nodes (`spawn.rs`): the node routes their
/// frames to it, and tells it of nodes down, of its leaving, and of each
/// incarnation's subscription to spawn requests.
pub(super) trait Spawning: Send + Sync {
    /// A frame of a spawn (`Finished`, `Stop`) from node `from`.
    fn frame(&self, from: &str, frame: Frame);

    /// Node `id` is down (the failure says why).
    fn node_down(&self, id: &str, failure: &Failure);

    /// This node leaves the cluster.
    fn leave(&self);

    /// Answer the spawn requests `requests` brings to incarnation `me` of `node`.
    fn serve(self: Arc<Self>, node: &Arc<Node>, me: Arc<str>, requests: async_nats::Subscriber);
}

/// Tells how much room a node has: free microthread slots, and live microthreads
/// per worker.
pub(crate) type Room = Box<dyn Fn() -> (u32, f32) + Send + Sync>;

/// Makes the proxy of a remote end: the node, the lease, the home's id, the
/// channel's capacity, the lease's inbox; the side says which end.
pub(super) type MakeProxy = fn(&Arc<Node>, Side, u64, String, u64, Arc<Inbox>) -> Endpoint;

impl Node {
    /// Connect, subscribe, and start the node's tasks.
    pub(super) fn join(
        config: &ClusterConfig,
        handle: &tokio::runtime::Handle,
        spawning: Arc<dyn Spawning>,
    ) -> Result<Arc<Node>, ClusterError> {
        config.check()?;
        let name = match &config.node {
            Some(n) => n.clone(),
            None => crate::node_name::local(),
        };
        check_token("node name", &name)?;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let config2 = config.clone();
        let h = handle.clone();
        handle.spawn(async move {
            let result = connect(&config2, &name, h, spawning).await;
            let _receiver_waits = done_tx.send(result);
        });
        let wait = config.connect_timeout + Duration::from_secs(2);
        let node = match done_rx.recv_timeout(wait) {
            Ok(result) => result?,
            Err(_) => {
                return Err(ClusterError::Connect {
                    url: shown(&config.url),
                    reason: format!("no answer within {wait:?}"),
                });
            }
        };
        Ok(node)
    }

    /// Its id now (`name.incarnation`).
    pub(super) fn id(&self) -> Arc<str> {
        self.id.locked().clone()
    }

    /// Become a new incarnation: this node lost its connection past the node
    /// timeout, and failed its leases; the others will see a new member, and its
    /// old id's frames find no lease.
    async fn reincarnate(self: &Arc<Self>) {
        let id: Arc<str> = incarnation(&self.name).into();
        let subscribed = async {
            let frames = self.client.subscribe(self.node_subject(&id)).await?;
            let spawns = self.client.subscribe(self.spawn_subject(&id)).await?;
            Ok::<_, async_nats::SubscribeError>((frames, spawns))
        };
        match subscribed.await {
            Ok((frames, spawns)) => {
                tracing::warn!(node = %id, "this node lost its connection past the node timeout: it is a new incarnation");
                *self.id.locked() = id.clone();
                self.handle
                    .spawn(route_frames(Arc::downgrade(self), id.clone(), frames));
                self.spawning.clone().serve(self, id, spawns);
            }
            Err(e) => tracing::warn!("cannot subscribe as a new incarnation (kept the old one): {e}"),
        }
    }

    pub(super) fn cluster_name(&self) -> &str {
        &self.cluster
    }

    pub(super) fn members(&self) -> &Members {
        &self.members
    }

    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Set how proxies are made (once, when the node joins).
    pub(super) fn set_make_proxy(&self, make: MakeProxy) {
        let _set_once = self.make_proxy.set(make);
    }

    /// The proxy of a remote end (see [`MakeProxy`]).
    pub(super) fn proxy(
        self: &Arc<Self>,
        side: Side,
        lease: u64,
        home: String,
        capacity: u64,
        inbox: Arc<Inbox>,
    ) -> Endpoint {
        let make = self
            .make_proxy
            .get()
            .expect("the cluster sets how proxies are made when the node joins");
        make(self, side, lease, home, capacity, inbox)
    }

    /// Set how this node tells its room (once, when the runtime is built).
    pub(super) fn set_room(&self, room: Room) {
        let _set_once = self.room.set(room);
    }

    /// This node's room now: free microthread slots, live microthreads per worker.
    pub(super) fn room(&self) -> (u32, f32) {
        self.room.get().map_or((0, 0.0), |room| room())
    }

    pub(super) fn budget(&self) -> Arc<Budget> {
        self.budget.clone()
    }

    pub(super) fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The largest message a lease carries.
    pub(super) fn max_message(&self) -> usize {
        self.max_payload.saturating_sub(wire::FRAME_OVERHEAD)
    }

    /// The subject of node `id`'s frames.
    fn node_subject(&self, id: &str) -> String {
        format!("{}.node.{id}", self.prefix)
    }

    /// The subject where `name` is attached to.
    pub(super) fn name_subject(&self, name: &str) -> String {
        format!("{}.name.{name}", self.prefix)
    }

    /// The subject where node `id` takes spawn requests.
    pub(super) fn spawn_subject(&self, id: &str) -> String {
        format!("{}.spawn.{id}", self.prefix)
    }

    fn heartbeat_subject(&self) -> String {
        format!("{}.hb", self.prefix)
    }

    /// A new lease id of this node's.
    pub(super) fn next_lease(&self) -> u64 {
        self.next_lease.fetch_add(1, Ordering::Relaxed)
    }

    /// Send `frame` to node `to`. An error means the connection is closed for good
    /// (async-nats queues what is published while it reconnects).
    pub(super) async fn send(&self, to: &str, frame: Frame) -> Result<(), String> {
        let envelope = Envelope {
            version: VERSION,
            from: self.id().to_string(),
            frame,
        };
        // While the server is away the client queues what is published, and past
        // its queue a publish waits: a lease must not wait longer than the node
        // timeout, after which the link counts as lost anyway.
        let publish = self
            .client
            .publish(self.node_subject(to), wire::encode(&envelope));
        match tokio::time::timeout(self.config.node_timeout, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot publish to node {to}: {e}")),
            Err(_) => Err(format!(
                "the NATS client took no frame for {to} in {:?} (is the server gone?)",
                self.config.node_timeout
            )),
        }
    }

    /// Register a lease of a channel homed here, held by `holder`.
    pub(super) fn add_home(&self, holder: &str, lease: u64) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        self.homes
            .locked()
            .insert((holder.to_string(), lease), inbox.clone());
        inbox
    }

    pub(super) fn remove_home(&self, holder: &str, lease: u64) {
        self.homes.locked().remove(&(holder.to_string(), lease));
    }

    /// Register a lease this node holds, of a channel homed on `home`.
    pub(super) fn add_proxy(&self, home: &str, lease: u64) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        self.proxies
            .locked()
            .insert(lease, (home.to_string(), inbox.clone()));
        inbox
    }

    /// Attach a lease of `side` by one request on `subject` (an exported
    /// channel's: a name's, a registry name's, a carried end's), answered within
    /// `timeout`. The lease's inbox is registered first, so that no frame of the
    /// home's comes before it; it goes again if the attachment fails.
    pub(super) async fn attach_once(
        self: &Arc<Self>,
        subject: String,
        side: Side,
        timeout: Duration,
    ) -> Result<Attachment, AttachFailed> {
        let lease = self.next_lease();
        let inbox = self.add_proxy("", lease);
        let request = wire::encode(&RegistryRequest::Attach(Attach {
            version: VERSION,
            holder: self.id().to_string(),
            lease,
            side,
        }));
        let answer = match tokio::time::timeout(timeout, self.client.request(subject, request)).await {
            Ok(Ok(reply)) => wire::decode::<Attached>(&reply.payload).map_err(AttachFailed::Refused),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                Err(AttachFailed::NoResponders)
            }
            Ok(Err(e)) => Err(AttachFailed::Lost(e.to_string())),
            Err(_) => Err(AttachFailed::Lost(format!("no answer in {timeout:?}"))),
        };
        match answer {
            Ok(Attached::Yes {
                home,
                capacity,
                fingerprint,
            }) => {
                self.set_proxy_home(lease, &home);
                Ok(Attachment {
                    lease,
                    home,
                    capacity,
                    fingerprint,
                    inbox,
                })
            }
            Ok(Attached::No(reason)) => {
                self.remove_proxy(lease);
                Err(AttachFailed::Refused(reason))
            }
            Err(failed) => {
                self.remove_proxy(lease);
                Err(failed)
            }
        }
    }

    /// The home of a lease being attached, now that it answered.
    pub(super) fn set_proxy_home(&self, lease: u64, home: &str) {
        if let Some((h, _)) = self.proxies.locked().get_mut(&lease) {
            *h = home.to_string();
        }
    }

    pub(super) fn remove_proxy(&self, lease: u64) {
        self.proxies.locked().remove(&lease);
    }

    /// Route one frame from `from`.
    async fn route(&self, from: String, frame: Frame) {
        if self.members.is_dead(&from) {
            // Declared down already: its leases have failed; it must know.
            self.forget(&from).await;
            return;
        }
        self.members.heard(&from);
        let unknown = match &frame {
            Frame::Send { lease, .. }
            | Frame::Offer { lease, .. }
            | Frame::Demand { lease, .. }
            | Frame::Ack { lease, .. }
            | Frame::Nack { lease, .. }
            | Frame::Release { lease, .. } => {
                let inbox = self.homes.locked().get(&(from.clone(), *lease)).cloned();
                match inbox {
                    Some(inbox) => {
                        inbox.push(Inbound::Frame(frame));
                        None
                    }
                    // A release of a lease that is gone needs no answer.
                    None if matches!(frame, Frame::Release { .. }) => None,
                    None => Some(*lease),
                }
            }
            Frame::Credit { lease, .. }
            | Frame::Taken { lease, .. }
            | Frame::Closed { lease }
            | Frame::Deliver { lease, .. }
            | Frame::End { lease, .. } => {
                let inbox = self
                    .proxies
                    .locked()
                    .get(lease)
                    // (An empty home: the lease is being attached; its home's first
                    // credit may come before the answer.)
                    .filter(|(home, _)| *home == from || home.is_empty())
                    .map(|(_, inbox)| inbox.clone());
                match inbox {
                    Some(inbox) => {
                        inbox.push(Inbound::Frame(frame));
                        None
                    }
                    None => Some(*lease),
                }
            }
            Frame::Unknown { lease } => {
                let failure = disconnected(&from, &format!("node {from} no longer knows lease {lease}"));
                if let Some(inbox) = self.homes.locked().get(&(from.clone(), *lease)) {
                    inbox.push(Inbound::Down(failure.clone()));
                }
                if let Some((home, inbox)) = self.proxies.locked().get(lease)
                    && *home == from
                {
                    inbox.push(Inbound::Down(failure));
                }
                None
            }
            Frame::Forgotten => {
                self.node_down(&from, &format!("node {from} declared this node down"));
                None
            }
            Frame::Finished { .. } | Frame::Stop { .. } => {
                self.spawning.frame(&from, frame);
                None
            }
        };
        if let Some(lease) = unknown {
            let _lost_anyway = self.send(&from, Frame::Unknown { lease }).await;
        }
    }

    /// Tell node `id`, declared down, which spoke again, that it is a stranger now:
    /// its leases with this node have failed (and it fails its own).
    async fn forget(&self, id: &str) {
        match self.members.tell(id) {
            Tell::First => {
                tracing::warn!(
                    node = id,
                    "node {id}, declared down, spoke again: its old leases are refused"
                )
            }
            Tell::Again => {}
            Tell::NotYet => return,
        }
        if let Err(e) = self.send(id, Frame::Forgotten).await {
            tracing::debug!("{e}");
        }
    }

    /// Node `id` is down: every lease shared with it fails.
    pub(super) fn node_down(&self, id: &str, why: &str) {
        self.members.declare_dead(id);
        tracing::warn!(node = id, "a node of the cluster is down: {why}");
        let failure = disconnected(id, why);
        for ((holder, _), inbox) in self.homes.locked().iter() {
            if holder == id {
                inbox.push(Inbound::Down(failure.clone()));
            }
        }
        for (home, inbox) in self.proxies.locked().values() {
            if home == id {
                inbox.push(Inbound::Down(failure.clone()));
            }
        }
        self.spawning.node_down(id, &failure);
    }

    /// Wait (at most `grace`) for the leases to finish, then for what was sent to
    /// reach the server.
    pub(super) fn leave(self: &Arc<Self>, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        let attached = || self.homes.locked().len() + self.proxies.locked().len();
        while Instant::now() < deadline && attached() > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let cut = attached();
        for inbox in self.homes.locked().values() {
            inbox.push(Inbound::Leave);
        }
        for (_, inbox) in self.proxies.locked().values() {
            inbox.push(Inbound::Leave);
        }
        self.spawning.leave();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let client = self.client.clone();
        self.handle.spawn(async move {
            let flushed = client.flush().await;
            let _receiver_waits = done_tx.send(flushed);
        });
        // Past the node timeout a server that does not confirm is away, and the
        // other nodes count this one as gone anyway: no point waiting on.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(self.config.node_timeout)
            .max(Duration::from_millis(200));
        match done_rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("leaving the cluster: what was sent last may not have reached the server: {e}")
            }
            Err(_) => {
                tracing::warn!("leaving the cluster: the server did not confirm the last frames in time")
            }
        }
        cut
    }
}

/// A new id of node `name`: `name.incarnation`, the incarnation random.
fn incarnation(name: &str) -> String {
    format!("{name}.{:08x}", fastrand::u32(..))
}

/// Connect to the server and start the node's tasks.
async fn connect(
    config: &ClusterConfig,
    name: &str,
    handle: tokio::runtime::Handle,
    spawning: Arc<dyn Spawning>,
) -> Result<Arc<Node>, ClusterError> {
    let id = incarnation(name);
    let id = id.as_str();
    let fail = |reason: String| ClusterError::Connect {
        url: shown(&config.url),
        reason,
    };
    let lost: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let lost_in_callback = lost.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name(id)
        .connection_timeout(config.connect_timeout)
        .ping_interval((config.node_timeout / 3).max(Duration::from_millis(100)))
        .event_callback(move |event| {
            let lost = lost_in_callback.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        lost.locked().get_or_insert_with(Instant::now);
                    }
                    async_nats::Event::Connected => {
                        *lost.locked() = None;
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        tracing::error!(
                            subscription = sid,
                            "the NATS client dropped messages for a slow subscription (a weft bug: credit should prevent it)"
                        );
                    }
                    other => tracing::debug!("NATS: {other}"),
                }
            }
        });
    let (url, in_url) = url_credentials(&config.url);
    options = match &config.auth {
        // The client reads no credentials from the URL itself.
        Auth::Url => match in_url {
            Some((user, Some(password))) => options.user_and_password(user, password),
            Some((token, None)) => options.token(token),
            None => options,
        },
        Auth::UserPassword(u, p) => options.user_and_password(u.clone(), p.clone()),
        Auth::Token(t) => options.token(t.clone()),
        Auth::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
            fail(format!(
                "cannot read the credentials file {}: {e}",
                path.display()
            ))
        })?,
    };
    if let Some(certs) = &config.root_certificates {
        options = options.add_root_certificates(certs.clone());
    }
    let client = options
        .connect(url.as_str())
        .await
        .map_err(|e| fail(connect_reason(&e)))?;
    let max_payload = client.server_info().max_payload;
    let prefix = format!("weft.{}", config.cluster);
    let node = Arc::new(Node {
        name: name.to_string(),
        id: Mutex::new(id.into()),
        cluster: config.cluster.clone(),
        prefix,
        client,
        handle: handle.clone(),
        config: config.clone(),
        max_payload,
        members: Members::new(config.node_timeout),
        next_lease: AtomicU64::new(1),
        homes: Mutex::new(HashMap::new()),
        proxies: Mutex::new(HashMap::new()),
        budget: Arc::new(Budget::unbounded()),
        make_proxy: OnceLock::new(),
        room: OnceLock::new(),
        spawning,
    });
    let frames = node
        .client
        .subscribe(node.node_subject(id))
        .await
        .map_err(|e| fail(format!("cannot subscribe to this node's subject: {e}")))?;
    let spawns = node
        .client
        .subscribe(node.spawn_subject(id))
        .await
        .map_err(|e| fail(format!("cannot subscribe to this node's spawn subject: {e}")))?;
    let beats = node
        .client
        .subscribe(node.heartbeat_subject())
        .await
        .map_err(|e| fail(format!("cannot subscribe to the heartbeats: {e}")))?;
    // The subscriptions are in place once the server has seen them.
    node.client
        .flush()
        .await
        .map_err(|e| fail(format!("the server did not confirm the subscriptions: {e}")))?;
    handle.spawn(route_frames(Arc::downgrade(&node), node.id(), frames));
    node.spawning.clone().serve(&node, node.id(), spawns);
    if let Some((user, password)) = &config.system {
        let reports = watch_server(config, &url, id, user, password)
            .await
            .map_err(fail)?;
        handle.spawn(server_reports(Arc::downgrade(&node), reports));
    }
    handle.spawn(listen_heartbeats(Arc::downgrade(&node), beats));
    handle.spawn(beat_and_watch(Arc::downgrade(&node), lost));
    Ok(node)
}

/// What the server or the network said, in words a user can act on.
fn connect_reason(e: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as K;
    match e.kind() {
        K::AuthorizationViolation => {
            format!(
                "the server refused the credentials ({e}): check the user, password, token or credentials file"
            )
        }
        K::Authentication => format!("authentication failed ({e}): check the credentials file"),
        K::TimedOut => format!("timed out ({e}): is a NATS server running there?"),
        K::Io => format!("{e}: is a NATS server running there?"),
        K::Tls => format!("TLS failed ({e}): check the server's certificate and --nats-ca"),
        K::ServerParse => format!("{e}: the address should look like nats://HOST:PORT"),
        _ => e.to_string(),
    }
}

/// Route the frames that arrive for incarnation `me` of the node, until it is
/// another incarnation (then what comes for the old one is dropped with its
/// subscription: its leases have failed).
async fn route_frames(node: std::sync::Weak<Node>, me: Arc<str>, mut frames: async_nats::Subscriber) {
    while let Some(msg) = frames.next().await {
        let Some(node) = node.upgrade() else { return };
        if node.id() != me {
            return;
        }
        match wire::decode::<Envelope>(&msg.payload) {
            Ok(env) if env.version == VERSION => node.route(env.from, env.frame).await,
            Ok(env) => tracing::warn!(
                from = env.from,
                "a frame of protocol version {} was ignored (this node speaks {VERSION}): are all nodes the same weft?",
                env.version
            ),
            Err(e) => tracing::warn!("ignored {e}"),
        }
    }
}

/// The subject of the server's reports of clients that disconnect, in any account.
const DISCONNECTS: &str = "$SYS.ACCOUNT.*.DISCONNECT";

/// Connect as a user of the system account, and subscribe to the server's reports
/// of disconnections.
async fn watch_server(
    config: &ClusterConfig,
    url: &str,
    id: &str,
    user: &str,
    password: &str,
) -> Result<async_nats::Subscriber, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("{id}-system"))
        .connection_timeout(config.connect_timeout)
        .user_and_password(user.to_string(), password.to_string());
    if let Some(certs) = &config.root_certificates {
        options = options.add_root_certificates(certs.clone());
    }
    let client = options
        .connect(url)
        .await
        .map_err(|e| format!("as the system account's user: {}", connect_reason(&e)))?;
    let reports = client
        .subscribe(DISCONNECTS)
        .await
        .map_err(|e| format!("cannot watch the server's reports: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("the server did not confirm the watch of its reports: {e}"))?;
    Ok(reports)
}

/// Declare down each live node whose connection the server reports closed.
async fn server_reports(node: std::sync::Weak<Node>, mut reports: async_nats::Subscriber) {
    while let Some(msg) = reports.next().await {
        let Some(node) = node.upgrade() else { return };
        let report: serde_json::Value = match serde_json::from_slice(&msg.payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("a server report that is not JSON: {e}");
                continue;
            }
        };
        let Some(client) = report["client"]["name"].as_str() else {
            continue;
        };
        if client != &*node.id() && node.members.is_live(client) {
            let reason = report["reason"].as_str().unwrap_or("no reason given");
            node.node_down(
                client,
                &format!("the server reports its connection closed ({reason})"),
            );
        }
    }
}

async fn listen_heartbeats(node: std::sync::Weak<Node>, mut beats: async_nats::Subscriber) {
    while let Some(msg) = beats.next().await {
        let Some(node) = node.upgrade() else { return };
        let Ok(beat) = wire::decode::<Heartbeat>(&msg.payload) else {
            continue;
        };
        if *beat.node == *node.id() {
            continue;
        }
        if let Heard::Dead = node.members.beat(&beat.node, beat.free, beat.load) {
            node.forget(&beat.node).await;
        }
    }
}

/// Send this node's heartbeat, declare down the nodes that went silent, and make
/// this node a new incarnation once its own connection has been lost too long.
async fn beat_and_watch(node: std::sync::Weak<Node>, lost: Arc<Mutex<Option<Instant>>>) {
    let (period, timeout) = match node.upgrade() {
        Some(n) => (n.config.node_timeout / 3, n.config.node_timeout),
        None => return,
    };
    let mut tick = tokio::time::interval(period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat = Instant::now() - period;
    // This loss of the connection made this node a new incarnation already.
    let mut reincarnated = false;
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        if last_beat.elapsed() >= period {
            last_beat = Instant::now();
            let (free, load) = node.room();
            let beat = Heartbeat {
                version: VERSION,
                node: node.id().to_string(),
                free,
                load,
            };
            // Never held up by a server that is away: the watch below must run.
            let publish = node.client.publish(node.heartbeat_subject(), wire::encode(&beat));
            match tokio::time::timeout(period / 2, publish).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("cannot publish the heartbeat: {e}"),
                Err(_) => tracing::debug!("the NATS client took no heartbeat (is the server gone?)"),
            }
        }
        for (id, silent) in node.members.expired() {
            node.node_down(&id, &format!("no heartbeat for {silent:?}"));
        }
        let lost_for = lost.locked().map(|at| at.elapsed());
        match lost_for {
            // The others went silent meanwhile (they are declared down above, their
            // leases failed): this node comes back as a new member.
            Some(d) if d >= timeout && !reincarnated => {
                node.reincarnate().await;
                reincarnated = true;
            }
            None => reincarnated = false,
            Some(_) => {}
        }
    }
}
