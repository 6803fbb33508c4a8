// Spawning on another node from JavaScript (`weft run --cluster ...`), the mode
// chosen by the first argument; host/tests/languages_cluster.rs runs it with a
// `weft node` of the same program beside it. Every mode but `alone` first finds "the
// other node": the first of `weft.nodes()` that is not this one, waiting for one
// (asking every 50 ms, for at most 10 s). Nodes are printed by name. Each outcome is
// one line on stdout:
// - `spawn`: `square` on the other node, which prints `square 7 on NODE` there and
//   returns its node's name and the square: `joined 49 from NODE (handle on NODE)`.
// - `fail`: a child on the other node throws: `failed panic on NODE`, then the
//   message the parent got (the error and its stack).
// - `supervised`: a supervisor's child pinned to the other node: `child on NODE` and
//   `which: NODE` (its whichChildren node, `this node` for none) at each of its first
//   two starts (the test kills the other node after the first), then `supervisor
//   shut down`.
// - `alone` (no cluster): what the cluster calls say outside one, and the refusals of
//   bad placements.

import * as weft from 'weft';

function here() {
  return weft.nodeName(weft.thisNode());
}

const square = weft.entry(function square(x) {
  console.log(`square ${x} on ${here()}`);
  return { where: here(), result: x * x };
});

function deeper(x) {
  throw new RangeError(`boom ${x} on ${here()}`);
}

const boom = weft.entry(function boom(x) {
  deeper(x);
});

/** Says where it runs at each start, then waits until its supervisor stops it. */
const pinned = weft.entry(function pinned(starts) {
  starts.send(here());
  const [keep, rx] = weft.channel(1);
  rx.recv();
  keep.close();
  throw new Error('nothing is sent to a pinned child');
});

function other() {
  const me = weft.thisNode();
  const deadline = performance.now() + 10000;
  while (performance.now() < deadline) {
    const found = weft.nodes().find((n) => n.id !== me);
    if (found !== undefined) return found;
    weft.sleep(50);
  }
  console.log(`no other node joined within 10 s; live: ${JSON.stringify(weft.nodes())}`);
  weft.exit(1);
  return undefined;
}

function spawnMode() {
  const node = other();
  const handle = weft.spawn(square, 7, { node: node.id });
  const { where, result } = handle.join();
  console.log(`joined ${result} from ${where} (handle on ${weft.nodeName(handle.node)})`);
}

function failMode() {
  const node = other();
  const handle = weft.spawn(boom, 3, { node });
  try {
    handle.join();
    console.log('the child returned');
  } catch (e) {
    if (!(e instanceof weft.Failed)) throw e;
    console.log(`failed ${e.failure.kind} on ${weft.nodeName(handle.node)}`);
    console.log(e.failure.message);
  }
}

function supervisedMode() {
  const node = other();
  const [tx, starts] = weft.channel(4);
  const sup = weft.supervisor.start({
    name: 'pinned',
    intensity: { maxRestarts: 3, within: 60000 },
    children: [{ name: 'remote', fn: pinned, arg: tx, node }],
  });
  for (let i = 0; i < 2; i++) {
    console.log(`child on ${starts.recv()}`);
    const [child] = sup.whichChildren();
    console.log(`which: ${child.node === null ? 'this node' : weft.nodeName(child.node)}`);
  }
  sup.shutdown();
  sup.join();
  console.log('supervisor shut down');
}

function refused(make) {
  try {
    make();
    console.log('accepted');
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof weft.WeftError)) throw e;
    console.log(`${e.name} ${e.message}`);
  }
}

function alone() {
  console.log(`nodes ${JSON.stringify(weft.nodes())} nodeId ${weft.nodeId()} thisNode is a string ${typeof weft.thisNode() === 'string'}`);
  refused(() => weft.spawn(square, 1, { node: 'nowhere.1' }).join());
  refused(() => weft.spawn(square, 1, { node: 'b', anyNode: true }));
  refused(() => weft.spawn(square, 1, { node: 7 }));
  const [tx, rx] = weft.channel();
  const start = (child) => weft.supervisor.start({ name: 'x', children: [child] });
  refused(() => start({ fn: pinned, arg: { rx }, node: 'b.1' }));
  refused(() => start({ fn: pinned, arg: rx, anyNode: true }));
  refused(() => start({ supervisor: { name: 'inner' }, node: 'b.1' }));
  tx.close();
  rx.close();
}

export function main(args) {
  switch (args[0]) {
    case 'spawn':
      return spawnMode();
    case 'fail':
      return failMode();
    case 'supervised':
      return supervisedMode();
    case 'alone':
      return alone();
    default:
      console.error(`unknown mode ${JSON.stringify(args[0])}: spawn, fail, supervised, alone`);
      weft.exit(2);
      return undefined;
  }
}
