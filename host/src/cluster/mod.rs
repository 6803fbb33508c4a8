//! The cluster: weft nodes joined over NATS, and channels whose ends live on
//! different nodes. A *node* is one embedded [`Runtime`](crate::Runtime) (or one
//! `weft` process) joined to a cluster ([`RuntimeBuilder::cluster`](crate::RuntimeBuilder::cluster)).
//!
//! - A channel has one *home*, the node that made it, where its state lives (the
//!   ordinary channel). Its ends on other nodes are *proxies*: local channels whose
//!   other side a bridge carries over NATS; each holds a *lease* at the home,
//!   where it counts as one sender or one receiver.
//! - A node *exports* a channel under a name ([`Cluster::export_receiver`],
//!   [`Cluster::export_sender`]); any node *imports* an end of it by that name
//!   ([`Cluster::import_sender`], [`Cluster::import_receiver`]). The ends are the
//!   application's [`Sender`] and [`Receiver`]: it uses them, or hands them to a
//!   run by name, where a guest takes them with `host_sender` / `host_receiver`.
//! - Semantics kept across nodes: sends wait while the channel is full, order per
//!   sender, no duplicate, closing when the last sender anywhere is gone (the
//!   receivers drain first), a producer's failure carried to the receivers.
//!   Backpressure is credit: a remote sender sends only on slots reserved for it at
//!   the home, so a channel of capacity n never holds more than n messages, and
//!   NATS never holds more than the credit in flight.
//! - No silent loss: when a node goes silent past the node timeout (or its
//!   link breaks), the ends that ran over it fail with a failure of kind
//!   [`Disconnected`](crate::FailureKind::Disconnected) that names the node and
//!   the evidence: a send gives its value back, a receiver whose producer lived
//!   there gets the failure after draining, never a quiet close.
//! - A guest spawns on another node (`weft_guest::cluster::spawn_on`) of the same
//!   program (compared by content hash): the child runs there, in that node's run
//!   of the program ([`Program::start_node`](crate::Program::start_node) makes one
//!   without `main`), and its parent joins, cancels and monitors a *stand-in* here,
//!   which ends as the child ended, or with a failure of kind
//!   [`NodeDown`](crate::FailureKind::NodeDown) when its node goes down.
//!
//! Files: `config.rs` (joining), `wire.rs` (subjects and frames), `node.rs` (the
//! connection, the routing of frames to leases, and the lease tables), `members.rs`
//! (heartbeats, who is live, who is declared down), `home.rs` (exports and the
//! home side of leases), `proxy.rs` (imports: the proxy side), `names.rs` (the
//! registry of named endpoints, made the cluster's), `spawn.rs` (microthreads
//! spawned on other nodes).

pub mod config;
mod home;
mod members;
mod names;
mod node;
mod proxy;
mod spawn;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use crate::error::ClusterError;
pub use config::ClusterConfig;
pub use members::NodeInfo;
pub(crate) use names::Publish;
pub use names::Published;
pub(crate) use node::Room;
pub(crate) use spawn::{Child, Incoming, Outgoing, Started, Target};
pub(crate) use wire::Refusal;

use crate::channel::{Endpoint, Receiver, Sender};
use node::Node;

/// This node's membership of a cluster: export and import channel ends, see the
/// live nodes. Cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct Cluster {
    node: Arc<Node>,
    exports: Arc<home::Exports>,
    spawns: Arc<spawn::Spawns>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node.id()).finish()
    }
}

impl Cluster {
    /// Join the cluster `config` describes, with the node's tasks on `handle`
    /// (blocks while it connects, at most the connect timeout).
    pub(crate) fn join(
        config: &ClusterConfig,
        handle: &tokio::runtime::Handle,
    ) -> Result<Cluster, ClusterError> {
        let spawns = Arc::new(spawn::Spawns::default());
        let node = Node::join(config, handle, spawns.clone())?;
        node.set_make_proxy(|node, side, lease, home, capacity, inbox| match side {
            wire::Side::Sender => {
                Endpoint::Sender(proxy::sender_end::<()>(node, lease, home, capacity, inbox).into_handle())
            }
            wire::Side::Receiver => Endpoint::Receiver(
                proxy::receiver_end::<()>(node, lease, home, capacity, inbox).into_handle(),
            ),
        });
        Ok(Cluster {
            node,
            exports: Arc::default(),
            spawns,
        })
    }

    /// This node's id: its name and incarnation, `name.incarnation` (a new
    /// incarnation after it lost its connection to the server past the node
    /// timeout).
    pub fn node_id(&self) -> String {
        self.node.id().to_string()
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        self.node.cluster_name()
    }

    /// The live nodes, this one included, by id.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.node.members().live(&self.node.id(), self.node.room())
    }

    /// Set how this node tells its room to the others (by the runtime, once).
    pub(crate) fn set_room(&self, room: Room) {
        self.node.set_room(room);
    }

    /// Spawns from other nodes of the program whose content hash is `program`
    /// start in `target` (a run of it), while it is live.
    pub(crate) fn serve(&self, program: &str, target: std::sync::Arc<dyn Target>) {
        self.spawns.serve(program, target);
    }

    /// The live nodes a spawn without a node goes to, best first: those with room,
    /// the least loaded first (this one included).
    pub(crate) fn candidates(&self) -> Vec<String> {
        let mut nodes = self.nodes();
        nodes.sort_by(|a, b| {
            (a.free == 0)
                .cmp(&(b.free == 0))
                .then(a.load.total_cmp(&b.load))
                .then(a.id.cmp(&b.id))
        });
        nodes.into_iter().map(|n| n.id).collect()
    }

    /// Start `out` on node `to` (another node): see the `spawn` module.
    pub(crate) async fn spawn_on(
        &self,
        to: &str,
        out: Outgoing,
    ) -> Result<Started, (Refusal, crate::channel::Message)> {
        spawn::spawn_on(&self.node, &self.spawns, to, out).await
    }

    /// The largest message a remote end carries: the NATS server's `max_payload`
    /// less a frame's overhead. A larger one is refused: a guest's send fails with
    /// `too-large`, and gets its message back.
    pub fn max_message_size(&self) -> usize {
        self.node.max_message()
    }

    /// Make a channel of `capacity` homed on this node and export it under `name`:
    /// this node receives; other nodes import senders of it
    /// ([`import_sender`](Cluster::import_sender)). A rendezvous channel (capacity
    /// 0) keeps its meaning: a remote send completes once a receiver here has
    /// taken the value. The channel counts as having a
    /// sender until the first remote one attaches, so its receivers wait for them
    /// rather than see it closed; after that, it closes when the last sender
    /// anywhere is gone.
    pub fn export_receiver<T>(&self, name: &str, capacity: usize) -> Result<Receiver<T>, ClusterError> {
        let (tx, rx) = crate::channel::channel::<T>(capacity);
        self.exports
            .add(&self.node, name, home::Export::receiver_side(tx))?;
        Ok(rx)
    }

    /// Make a channel of `capacity` homed on this node and export it under `name`:
    /// this node sends; other nodes import receivers of it
    /// ([`import_receiver`](Cluster::import_receiver)). A rendezvous channel
    /// (capacity 0) keeps its meaning: a send here completes once a receiver on
    /// another node has taken the value. The channel counts as having
    /// a receiver until the first remote one attaches, so sends wait for one (once
    /// the buffer is full) rather than fail.
    pub fn export_sender<T>(&self, name: &str, capacity: usize) -> Result<Sender<T>, ClusterError> {
        let (tx, rx) = crate::channel::channel::<T>(capacity);
        self.exports
            .add(&self.node, name, home::Export::sender_side(rx))?;
        Ok(tx)
    }

    /// A sender of the channel some node exports under `name`, waiting for the
    /// name to appear (at most the import timeout): blocks the calling thread.
    pub fn import_sender<T>(&self, name: &str) -> Result<Sender<T>, ClusterError> {
        proxy::import_sender(&self.node, name)
    }

    /// A receiver of the channel some node exports under `name`, waiting for the
    /// name to appear (at most the import timeout): blocks the calling thread.
    pub fn import_receiver<T>(&self, name: &str) -> Result<Receiver<T>, ClusterError> {
        proxy::import_receiver(&self.node, name)
    }

    /// Publish `name`, registered on this node for `chan` with `fingerprint`,
    /// unless another node holds it (see `names.rs`).
    pub(crate) async fn publish_name(
        &self,
        name: &str,
        fingerprint: &str,
        chan: Arc<crate::channel::Channel>,
    ) -> Result<Publish, ClusterError> {
        names::publish(&self.node, name, fingerprint, chan).await
    }

    /// A sender of the channel registered under `name` on another node, and the
    /// fingerprint of its type; `None` if no node holds the name.
    pub(crate) async fn lookup_name(
        &self,
        name: &str,
    ) -> Result<Option<(crate::channel::SenderHandle, String)>, ClusterError> {
        names::lookup(&self.node, name).await
    }

    /// Leave the cluster: wait (at most `grace`) for the leases to finish (the
    /// remote ends already dropped tell their homes; a channel exported here drains
    /// to the nodes that receive from it, once its senders are gone), and for what
    /// was sent to reach the server. Returns how many leases were still attached
    /// when the grace ran out (their nodes see them fail).
    pub fn leave(&self, grace: Duration) -> usize {
        self.node.leave(grace)
    }
}
