//! The cluster the program's node belongs to (`weft run --cluster`): which node
//! this is, and which nodes are live. Channels across nodes are the ordinary
//! [`Sender`](crate::Sender) and [`Receiver`](crate::Receiver): a node exports or
//! imports them by name (`weft run --export-receiver NAME`, `--import-sender NAME`,
//! …) and the program takes them with `host_sender` / `host_receiver`.
//!
//! ```no_run
//! match weft_guest::cluster::node_id() {
//!     Some(me) => println!("node {me}; live: {:?}", weft_guest::cluster::nodes()),
//!     None => println!("not in a cluster"),
//! }
//! ```

use crate::bindings::cluster as wit;

/// This node's id (`name.incarnation`: a restarted node has a new one), or `None`
/// when the program does not run in a cluster.
pub fn node_id() -> Option<String> {
    wit::node_id()
}

/// The live nodes of the cluster, this one included, by id (sorted); empty when
/// the program does not run in a cluster. A node declared down (silent past the
/// node timeout) is not among them.
pub fn nodes() -> Vec<String> {
    wit::nodes()
}
