//! The cluster the program's node belongs to (`weft run --cluster`): which node
//! this is ([`node_id`], [`this_node`]), which nodes are live ([`nodes`]), and
//! running microthreads on them ([`spawn_on`], [`Builder::node`](crate::Builder::node),
//! [`parallel_map`] over the live nodes). Every node of a spawn must run the same
//! program (the same component: a node that runs another refuses with
//! [`SpawnError::NoSuchProgram`]).
//!
//! A child on another node behaves as a local one: its [`JoinHandle`] joins,
//! cancels (with that node's grace), and its parent waits for it; its argument
//! may carry [`Sender`](crate::Sender)s, which become remote senders there, but no
//! receiver or socket ([`SpawnError::CannotMove`]). When its node goes down, it
//! fails with [`FailureKind::NodeDown`], within the
//! cluster's node timeout.
//!
//! Channels across nodes are the ordinary [`Sender`](crate::Sender) and
//! [`Receiver`](crate::Receiver): a node exports or imports them by name (`weft run
//! --export-receiver NAME`, `--import-sender NAME`, …) and the program takes them
//! with `host_sender` / `host_receiver`, or they travel in messages.
//!
//! ```no_run
//! use weft_guest::cluster::{self, Node};
//!
//! fn square(x: u64) -> (u64, String) {
//!     (x * x, cluster::this_node())
//! }
//!
//! for node in cluster::nodes() {
//!     println!("{node}: {} free, load {}", node.free(), node.load());
//! }
//! let (y, on) = cluster::spawn_on(Node::any(), square, 7)?.join().unwrap();
//! println!("{y} computed on {on}");
//! let squares = cluster::parallel_map(|x: u64| x * x, 1..=100, 8).unwrap();
//! # Ok::<(), weft_guest::SpawnError>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Serialize, de::DeserializeOwned};

use crate::entry::{Trampoline, trampoline};
use crate::failure::FailureKind;
use crate::message::Encoded;
pub use crate::node::{Node, node_id, node_name, nodes, this_node};
use crate::patterns::MapError;
use crate::thread::{Builder, JoinError, JoinHandle, SpawnError, spawn_raw};

/// Spawn a microthread that runs `f(arg)` on `node` (one of [`nodes`], or
/// [`Node::any`]), a child of the caller: `Builder::new().node(node).spawn(f, arg)`.
/// Errors if that node (or, for [`Node::any`], every live node) refuses, or the
/// argument cannot go there: see [`Builder::node`](crate::Builder::node).
pub fn spawn_on<T, R>(node: Node, f: fn(T) -> R, arg: T) -> Result<JoinHandle<R>, SpawnError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    Builder::new().node(node).spawn(f, arg)
}

/// Compute `f(item)` for every item, each in its own microthread, with at most
/// `concurrency` running at once, spread over the live nodes of the cluster; the
/// results come back in the order of the items. Outside a cluster it is
/// [`crate::parallel_map`].
///
/// Each call goes to the live node with the fewest calls of this map running (this
/// node included; on a tie, the first in [`nodes`]' order): a specific node, not
/// [`Node::any`], so that the calls spread even when the nodes' heartbeats have
/// not yet told of their load. The live nodes are asked again at every call, so a
/// node that joins mid-way takes calls too.
///
/// **`f` must be safe to re-run**: a call whose node goes down (its join fails with
/// [`FailureKind::NodeDown`]) or that a node refuses as gone
/// ([`SpawnError::NoSuchNode`]) is run again on another live node, from the same
/// argument; the lost node may have run it partly, or wholly, before it went down.
/// A node that refuses a call for its limit ([`SpawnError::LimitReached`]) is
/// passed over for that call; the call fails only once every live node refused it.
///
/// Otherwise the failures are [`crate::parallel_map`]'s: if a call fails (or the
/// caller is cancelled), or a call cannot be started, no further calls are
/// started; the calls already running are drained (joined, their results
/// discarded), and the first error is returned. The arguments may carry senders
/// but no receivers or sockets ([`SpawnError::CannotMove`]).
pub fn parallel_map<T, R>(
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
) -> Result<Vec<R>, MapError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let Some(me) = node_id() else {
        return crate::patterns::parallel_map(f, items, concurrency);
    };
    let mut spread = Spread {
        me,
        trampoline: trampoline::<T, R> as Trampoline as usize as u32,
        function: f as usize as u32,
        in_flight: HashMap::new(),
        down: HashSet::new(),
    };
    let mut items = items.into_iter();
    let mut running: VecDeque<Call<R>> = VecDeque::new();
    let mut results = Vec::new();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < concurrency.max(1) {
            let Some(item) = items.next() else {
                break;
            };
            // Encoded once, to run again from it should its node go down (its
            // endpoints are cloned into the encoding; the item's own close now).
            let argument = match Encoded::new(&item) {
                Ok(argument) => argument,
                Err(e) => {
                    failure = Some(MapError::Spawn(SpawnError::Serialize(e.to_string())));
                    break;
                }
            };
            drop(item);
            match spread.start(argument) {
                Ok(call) => running.push_back(call),
                Err(e) => failure = Some(MapError::Spawn(e)),
            }
        }
        let Some(call) = running.pop_front() else {
            break;
        };
        let Call {
            handle,
            node,
            argument,
        } = call;
        let joined = handle.join();
        spread.finished(&node);
        match joined {
            Ok(r) if failure.is_none() => results.push(r),
            Ok(_) => {}
            Err(JoinError::Failed(lost)) if lost.kind == FailureKind::NodeDown && failure.is_none() => {
                // Run it again elsewhere, first in line: the order of the results
                // stays the items'.
                spread.down.insert(node);
                match spread.start(argument) {
                    Ok(again) => running.push_front(again),
                    Err(e) => failure = Some(MapError::Spawn(e)),
                }
            }
            Err(e) => {
                failure.get_or_insert(MapError::Failed(e));
            }
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(results),
    }
}

/// One call of [`parallel_map`] running on a node.
struct Call<R> {
    handle: JoinHandle<R>,
    /// The id of the node it runs on.
    node: String,
    /// Its argument, to run it again from.
    argument: Encoded,
}

/// Where the calls of one [`parallel_map`] run.
struct Spread {
    /// This node's id.
    me: String,
    trampoline: u32,
    function: u32,
    /// How many calls of this map run on each node, by id.
    in_flight: HashMap<String, usize>,
    /// The nodes that went down under a call, or were refused as gone.
    down: HashSet<String>,
}

impl Spread {
    /// Start a call of `argument` on the live node with the fewest calls of this
    /// map running, passing over the nodes that refuse it as gone (for good) or
    /// for their limit (for this call). This node is always live: it takes the
    /// call when no other does, and its refusal is the call's.
    fn start<R>(&mut self, argument: Encoded) -> Result<Call<R>, SpawnError> {
        let mut full: HashSet<String> = HashSet::new();
        loop {
            let node = self.least_busy(&full);
            let here = node.id() == Some(self.me.as_str());
            let on = (!here).then_some(&node);
            let id = node.id().expect("a live node has an id").to_string();
            match spawn_raw(
                self.trampoline,
                self.function,
                argument.message(),
                None,
                false,
                on,
            ) {
                Ok(handle) => {
                    *self.in_flight.entry(id.clone()).or_default() += 1;
                    return Ok(Call {
                        handle,
                        node: id,
                        argument,
                    });
                }
                Err(SpawnError::NoSuchNode(_)) if !here => {
                    self.down.insert(id);
                }
                Err(SpawnError::LimitReached { .. }) if !here => {
                    full.insert(id);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The live node (this one included) with the fewest calls running, but those
    /// that went down and those in `full`; the first in [`nodes`]' order on a tie,
    /// this node last if [`nodes`] did not list it.
    fn least_busy(&self, full: &HashSet<String>) -> Node {
        let mut live = nodes();
        if !live.iter().any(|n| n.id() == Some(self.me.as_str())) {
            live.push(Node::here(self.me.clone()));
        }
        live.into_iter()
            .filter(|n| {
                let id = n.id().expect("a live node has an id");
                id == self.me || !(self.down.contains(id) || full.contains(id))
            })
            .min_by_key(|n| {
                self.in_flight
                    .get(n.id().expect("a live node has an id"))
                    .copied()
                    .unwrap_or(0)
            })
            .expect("this node is always among the candidates")
    }

    /// A call on `node` has finished.
    fn finished(&mut self, node: &str) {
        if let Some(n) = self.in_flight.get_mut(node) {
            *n = n.saturating_sub(1);
        }
    }
}
