"""The nodes of the cluster (`weft run --cluster`): the live ones (`nodes`), which
node this is (`node_id`, `this_node`), and a node's name (`node_name`). Spawning
on them is `spawn(..., node=...)`'s (`_thread`) and a supervisor child's
(`Child(..., node=...)`); this module only describes them."""

from wit_world.imports import cluster as _wit


class Node:
    """A live node of the cluster, as its last heartbeat described it: its `id`
    (`name.incarnation`: a restarted node has a new one), its `name` (the id
    without its incarnation: what `--node NAME` gave it), how many more
    microthreads it could run (`free`) and how busy it was (`load`: its live
    microthreads per worker thread)."""

    __slots__ = ("id", "free", "load")

    def __init__(self, id, free=0, load=0.0):
        self.id = id
        self.free = free
        self.load = load

    @property
    def name(self):
        return node_name(self.id)

    def __eq__(self, other):
        return isinstance(other, Node) and (self.id, self.free, self.load) == (other.id, other.free, other.load)

    def __repr__(self):
        return f"Node(id={self.id!r}, free={self.free}, load={self.load:g})"


def node_name(id):
    """A node id's name: the id without its `.incarnation` suffix (`b.8f3a01c2`
    is node `b`)."""
    if not isinstance(id, str):
        raise TypeError(f"a node's id is a string, not {type(id).__name__}")
    return id.rpartition(".")[0] or id


def node_id():
    """This node's id (`name.incarnation`), or None when the program runs in no
    cluster."""
    return _wit.node_id()


def this_node():
    """The node the calling microthread runs on: its id in a cluster (as
    `node_id`), else the local node's name (the host's name and the process
    id)."""
    return _wit.this_node()


def nodes():
    """The live nodes of the cluster, this one included, as a list of `Node`;
    empty when the program runs in no cluster. A node declared down (silent past
    the node timeout, or its link broken) is not among them."""
    return [Node(n.id, n.free, n.load) for n in _wit.nodes()]


def _target(node, any_node, what):
    """Where a spawn goes: `(on_node, id)`, `on_node` False for this node, `id`
    None for any node. `node` is a node's id or a `Node`; `any_node` a bool."""
    if not isinstance(any_node, bool):
        raise TypeError(f"{what}: any_node is True or False, not {any_node!r}")
    if node is None:
        return any_node, None
    if any_node:
        raise ValueError(f"{what}: give node= or any_node=True, not both")
    if isinstance(node, Node):
        node = node.id
    if not isinstance(node, str) or not node:
        raise TypeError(f"{what}: node is a node's id (a non-empty string, as weft.nodes() gives it) or a weft.Node, not {node!r}")
    return True, node
