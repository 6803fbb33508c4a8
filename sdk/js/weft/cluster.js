// cluster: the nodes of the cluster (`weft run --cluster`), to spawn on.

import * as witCluster from 'weft:runtime/cluster@0.6.0';

/** A node id's name: the id without its `.incarnation` suffix (`b.8f3a01c2` is node `b`). */
export function nodeName(id) {
  if (typeof id !== 'string') throw new TypeError(`nodeName: a node's id is a string (got ${typeof id})`);
  const dot = id.lastIndexOf('.');
  return dot < 0 ? id : id.slice(0, dot);
}

/**
 * The live nodes of the cluster, this one included: `{ id, name, free, load }` each
 * (`id` is `name.incarnation`, a restarted node has a new one; `free`: how many more
 * microthreads it could run; `load`: its live microthreads per worker thread, as its
 * last heartbeat said). Empty when the program runs in no cluster.
 */
export function nodes() {
  return witCluster.nodes().map((n) => Object.freeze({ id: n.id, name: nodeName(n.id), free: n.free, load: n.load }));
}

/** This node's id (`name.incarnation`), or null when the program runs in no cluster. */
export function nodeId() {
  const id = witCluster.nodeId();
  return id === undefined ? null : id;
}

/** The node the calling microthread runs on: its id in a cluster, else the local node's name (the host's name and the process id). */
export function thisNode() {
  return witCluster.thisNode();
}

/**
 * Where `options` place a spawn: undefined for this node, else `{ node }`, `node`
 * a node's id or undefined for any node. `options.node` is a node's id or a node
 * of `nodes()`; `options.anyNode` true for the least loaded live node.
 */
export function placement(options, what) {
  const node = options?.node;
  const anyNode = options?.anyNode;
  if (anyNode !== undefined && typeof anyNode !== 'boolean') throw new TypeError(`${what}: anyNode is true or false (got ${String(anyNode)})`);
  if (node === undefined || node === null) return anyNode ? { node: undefined } : undefined;
  if (anyNode) throw new TypeError(`${what}: give node or anyNode, not both`);
  const id = typeof node === 'object' ? node.id : node;
  if (typeof id !== 'string' || id === '') {
    throw new TypeError(`${what}: node is a node's id (a non-empty string) or a node of weft.nodes() (got ${typeof node === 'object' ? 'an object without an id' : String(node)})`);
  }
  return { node: id };
}
