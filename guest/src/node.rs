//! The nodes of the cluster, the WIT `cluster` interface: a [`Node`] (a live node
//! as its last heartbeat described it, or "any node"), the live ones
//! ([`nodes`]), and which node this is ([`node_id`], [`this_node`]). Spawning on
//! them is [`cluster`](crate::cluster)'s; this module only describes them, so that
//! [`Builder::node`](crate::Builder::node) and the supervisor can name a node.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bindings::cluster as wit;

/// Where a microthread is to run: a node of the cluster (its id, and how much room
/// it had when [`nodes`] described it), or [`Node::any`], the least loaded live
/// node at the time of the spawn (this one included), which the host chooses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Its id (`name.incarnation`); `None` for any node.
    id: Option<String>,
    free: u32,
    load: f32,
}

impl Node {
    /// Any live node, this one included: the host picks the least loaded one that
    /// takes the spawn (a node that refuses for its limit is passed over).
    pub fn any() -> Self {
        Node {
            id: None,
            free: 0,
            load: 0.0,
        }
    }

    /// The node of id `id`, its room and load unknown (0): this node, when
    /// [`nodes`] does not list it.
    pub(crate) fn here(id: String) -> Self {
        Node {
            id: Some(id),
            free: 0,
            load: 0.0,
        }
    }

    /// Its id (`name.incarnation`: a restarted node has a new one), as
    /// [`nodes`] gives it; `None` for [`Node::any`].
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Its name: the id without its `.incarnation` suffix (the name its
    /// `weft run --node NAME` gave it); `None` for [`Node::any`].
    pub fn name(&self) -> Option<&str> {
        self.id.as_deref().map(node_name)
    }

    /// How many more microthreads it could run when [`nodes`] described it: its
    /// runtime's maximum less its live ones (0 for [`Node::any`]).
    pub fn free(&self) -> u32 {
        self.free
    }

    /// How busy it was when [`nodes`] described it: its live microthreads per
    /// worker thread (0 for [`Node::any`]).
    pub fn load(&self) -> f32 {
        self.load
    }

    /// Whether it is [`Node::any`].
    pub fn is_any(&self) -> bool {
        self.id.is_none()
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => f.write_str(id),
            None => f.write_str("any node"),
        }
    }
}

/// A node id's name: the id without its `.incarnation` suffix (`b.8f3a01c2` is
/// node `b`), as [`this_node`] gives it or a remote child's
/// [`JoinHandle::node`](crate::JoinHandle::node).
pub fn node_name(id: &str) -> &str {
    id.rsplit_once('.').map_or(id, |(name, _)| name)
}

/// This node's id (`name.incarnation`: a restarted node has a new one), or `None`
/// when the program does not run in a cluster.
pub fn node_id() -> Option<String> {
    wit::node_id()
}

/// The node the calling microthread runs on: its id in a cluster (as
/// [`node_id`]), else the local node's name (the host's name and the process id).
pub fn this_node() -> String {
    wit::this_node()
}

/// The live nodes of the cluster, this one included, with their
/// room and load as their last heartbeats told; empty when the program does not
/// run in a cluster. A node declared down (silent past the node timeout, or its
/// link broken) is not among them.
pub fn nodes() -> Vec<Node> {
    wit::nodes()
        .into_iter()
        .map(|n| Node {
            id: Some(n.id),
            free: n.free,
            load: n.load,
        })
        .collect()
}
