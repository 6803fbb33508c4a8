// The JavaScript SDK's test program: one program (a component takes long to compile),
// its mode chosen by its first argument. host/tests/js.rs builds it with `weft build`,
// runs it through `weft run` and checks what it prints and how it ends.

import * as weft from 'weft';
import { Closed, Full, Empty, Timeout, Failed, WeftError } from 'weft';
import { double, label } from './sdk-helper.js';

// ---- spawnable functions (registered at the top level) ----

const echo = weft.entry(function echo(v) {
  return v;
});

const square = weft.entry(function square(n) {
  return double(n) * n / 2;
});

/** Receives on the receiver it was given until it closes; returns what it got. */
const collect = weft.entry(function collect(rx) {
  const got = [];
  for (const v of rx) got.push(v);
  return got;
});

/** Answers a request that carries its own reply sender: endpoints inside a message. */
const server = weft.entry(function server(requests) {
  for (const { n, reply } of requests) {
    reply.send({ n, squared: n * n, by: weft.currentName() });
    reply.close();
  }
  return 'server done';
});

/** Blocks on a receive nobody feeds, until cancelled. */
const blocked = weft.entry(function blocked(rx) {
  return rx.recv();
});

/** Sends one value, then fails: its receivers see the failure. */
const failingProducer = weft.entry(function failingProducer(tx) {
  tx.send('one');
  throw new Error('the producer fails');
});

function deeper(what) {
  throw new RangeError(`child says ${what}`);
}

const thrower = weft.entry(function thrower(what) {
  deeper(what);
});

/** Receives on a channel whose sender is gone: the SDK throws Closed, uncaught. */
const closedReader = weft.entry(function closedReader() {
  const [tx, rx] = weft.channel(1);
  tx.close();
  return rx.recv();
});

/** Sends its id a few times, yielding between, into a shared channel. */
const racer = weft.entry(function racer({ tx, name }) {
  for (let i = 0; i < 5; i++) {
    tx.send(`${name}${i}`);
    weft.yieldNow();
  }
});

const sleeper = weft.entry(function sleeper(rx) {
  return rx.recv();
});

/** Echoes one connection. */
const echoOnce = weft.entry(function echoOnce(listener) {
  const stream = listener.accept({ timeout: 10000 });
  let total = 0;
  for (;;) {
    const bytes = stream.read(1024);
    if (bytes.length === 0) break;
    stream.writeAll(bytes);
    total += bytes.length;
  }
  stream.close();
  return total;
});

const trivial = weft.entry(function trivial() {});

/** An async function: its promise is awaited. */
const later = weft.entry(async function later(n) {
  return (await Promise.resolve(n)) + 1;
});

// ---- modes ----

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function throws(f, cls, what) {
  try {
    f();
  } catch (e) {
    check(e instanceof cls, `${what}: expected ${cls.name}, got ${e && e.name}: ${e && e.message}`);
    return e;
  }
  throw new Error(`check failed: ${what}: expected ${cls.name}, nothing thrown`);
}

function api() {
  // Identity.
  console.log(`main: id ${weft.currentId()} name ${weft.currentName()}`);

  // Values round-trip through spawn and join, small and large.
  const values = [
    undefined, null, true, false, 0, -1, 2 ** 40, 1.5, -0.25, NaN, 'héllo', '',
    [1, [2, 'x']], { a: 1, b: { c: [null, true] } }, new Uint8Array([0, 1, 255]), 123456789012345678901234567890n, -5n,
    'a string well over twenty-four bytes long, so it travels as a large message',
  ];
  for (const v of values) {
    const back = weft.spawn(echo, v).join();
    const same = v instanceof Uint8Array ? back instanceof Uint8Array && back.join() === v.join() : Object.is(v, back) || JSON.stringify(v, big) === JSON.stringify(back, big);
    check(same, `round trip of ${String(v)}`);
  }
  console.log(`values: ${values.length} round trips`);

  // A sibling module's code, a name, is-finished, the id.
  const h = weft.spawn(square, 7, { name: 'seven' });
  console.log(`square: ${h.join()} (${label(h.id > 0)})`);
  check(h.isFinished(), 'isFinished after join');

  // Channels: buffered, try-send full (the value comes back), try-recv empty, timeouts.
  const [tx, rx] = weft.channel(2);
  tx.send(1);
  tx.trySend(2);
  const full = throws(() => tx.trySend(3), Full, 'trySend on a full channel');
  console.log(`full: value back ${full.value}`);
  throws(() => tx.send(4, { timeout: 1 }), Timeout, 'send with a timeout on a full channel');
  console.log(`recv: ${rx.recv()} ${rx.tryRecv()}`);
  throws(() => rx.tryRecv(), Empty, 'tryRecv on an empty channel');
  throws(() => rx.recv({ timeout: 1 }), Timeout, 'recv with a timeout');

  // Iteration until closed, with a clone of the sender.
  const [tx2, rx2] = weft.channel(0);
  const c = weft.spawn(collect, rx2);
  const tx3 = tx2.clone();
  for (let i = 0; i < 3; i++) tx2.send(i);
  tx3.send('last');
  tx2.close();
  tx3[Symbol.dispose]();
  console.log(`collect: ${JSON.stringify(c.join())}`);
  throws(() => tx2.send(0), WeftError, 'send on a closed sender');

  // Endpoints moved inside messages: a request carries its reply sender.
  const [reqTx, reqRx] = weft.channel(0);
  const s = weft.spawn(server, reqRx, { name: 'squarer' });
  throws(() => reqRx.recv(), WeftError, 'a receiver moved into a spawn');
  for (const n of [3, 4]) {
    const [replyTx, replyRx] = weft.channel(1);
    reqTx.send({ n, reply: replyTx });
    throws(() => replyTx.send(0), WeftError, 'a sender moved into a message');
    console.log(`reply: ${JSON.stringify(replyRx.recv())}`);
  }
  reqTx.close();
  console.log(`server: ${s.join()}`);

  // A refused send gives its value back, endpoints and all.
  const [deadTx, deadRx] = weft.channel(1);
  deadRx.close();
  const [keptTx, keptRx] = weft.channel(1);
  const closed = throws(() => deadTx.send({ keep: keptTx }), Closed, 'send on a channel with no receiver');
  closed.value.keep.send('still mine');
  console.log(`refused: ${keptRx.recv()}`);

  // Join with a timeout, cancel, the cancelled failure.
  const [neverTx, neverRx] = weft.channel(0);
  const b = weft.spawn(blocked, neverRx);
  throws(() => b.join({ timeout: 5 }), Timeout, 'join with a timeout');
  b.cancel();
  const cancelled = throws(() => b.join(), Failed, 'join of a cancelled microthread');
  console.log(`cancelled: kind ${cancelled.failure.kind} name ${cancelled.failure.name}`);
  neverTx.close();

  // A detached microthread.
  const [dTx, dRx] = weft.channel(0);
  weft.spawnDetached(echo, 'unused');
  const d = weft.spawnDetached(sleeper, dRx, { name: 'detached-sleeper' });
  dTx.send('wake');
  console.log(`detached: ${d.join()}`);

  // Sleep, yield, atomic.
  weft.sleep(1);
  weft.yieldNow();
  console.log(`atomic: ${weft.atomic(() => 6 * 7)} cancelled ${weft.isCancelled()} async ${weft.spawn(later, 1).join()}`);

  // Select: a timer wins over a silent channel; a send; would-block; tick.
  const [silentTx, silentRx] = weft.channel(0);
  const timer = weft.after(5);
  const r = weft.select([{ recv: silentRx }, { recv: timer }]);
  console.log(`select: index ${r.index} kind ${r.kind} value ${r.value}`);
  console.log(`trySelect: ${weft.trySelect([{ recv: silentRx }])}`);
  throws(() => weft.select([{ recv: silentRx }], { timeout: 2 }), Timeout, 'select with a timeout');
  const [bufTx, bufRx] = weft.channel(1);
  const sent = weft.select([{ send: bufTx, value: 'via select' }, { recv: silentRx }]);
  console.log(`select send: ${sent.kind} ${bufRx.recv()}`);
  const ticks = weft.tick(1);
  weft.select([{ recv: ticks }]);
  weft.select([{ recv: ticks }]);
  ticks.close();
  silentTx.close();
  console.log('tick: twice');

  // A failed producer: the receiver sees its failure.
  const [ftx, frx] = weft.channel(0);
  const p = weft.spawn(failingProducer, ftx, { name: 'producer' });
  const got = [];
  const producerFailed = throws(() => {
    for (const v of frx) got.push(v);
  }, Failed, 'a receive from a failed producer');
  console.log(`producer: got ${got} then ${producerFailed.failure.kind} from ${producerFailed.failure.name}`);
  throws(() => p.join(), Failed, 'join of the failed producer');

  // Channels from the application: none given here.
  console.log(`host channels: ${weft.hostReceiver('none')} ${weft.hostSender('none')}`);
}

function big(_k, v) {
  return typeof v === 'bigint' ? `${v}n` : v;
}

function fail() {
  const h = weft.spawn(thrower, 'boom');
  try {
    h.join();
  } catch (e) {
    check(e instanceof Failed, 'a failed child is Failed');
    console.log(`child failed: kind ${e.failure.kind} name ${e.failure.name}`);
    console.log(`child message: ${e.failure.message}`);
  }
  // An error the SDK throws: its stack starts at the program's frame.
  try {
    weft.spawn(closedReader).join();
  } catch (e) {
    console.log(`sdk error: ${e.failure.message}`);
  }
  deeper('main too');
}

function unregistered() {
  const notRegistered = function notRegistered() {};
  try {
    weft.spawn(notRegistered, 1);
  } catch (e) {
    console.log(`${e.name}: ${e.message}`);
  }
  weft.spawn((x) => x, 1);
}

function late() {
  weft.entry(function tooLate() {});
}

function echoMode() {
  const listener = weft.net.bind('127.0.0.1:0');
  const address = listener.localAddress();
  const server = weft.spawn(echoOnce, listener);
  const stream = weft.net.connect(address, { timeout: 10000 });
  stream.setNodelay(true);
  const text = 'ping over loopback';
  stream.writeAll(text);
  // Wait for the echo with a select on readability (a timer as the hang guard).
  const guard = weft.after(10000);
  let got = '';
  while (got.length < text.length) {
    const r = weft.select([{ readable: stream }, { recv: guard }]);
    check(r.index === 0, `the echo came before the guard: ${JSON.stringify(r)}`);
    got += new TextDecoder().decode(stream.read(1024));
  }
  check(weft.select([{ writable: stream }]).kind === 'ready', 'the stream is writable');
  stream.shutdown('write');
  check(stream.read(1024).length === 0, 'end of stream after the server closed');
  console.log(`echo: ${got} (${server.join()} bytes, ${stream.peerAddress() === address})`);
  // Nothing is allowed unless granted: the error says so.
  const denied = throws(() => weft.net.connect('127.0.0.2:9'), weft.NetError, 'a connect with no grant');
  console.log(`denied: ${denied.kind}`);
}

function replay() {
  const [tx, rx] = weft.channel(0);
  for (const name of ['a', 'b', 'c']) weft.spawn(racer, { tx: tx.clone(), name });
  tx.close();
  console.log(`order: ${[...rx].join(' ')} random ${Math.floor(Math.random() * 1e9)}`);
}

/** For the goal table (benches): N spawn→join one at a time, after one to warm up. */
function benchSpawn(n) {
  weft.spawn(trivial).join(); // warm: the first instance
  const start = performance.now();
  for (let i = 0; i < n; i++) weft.spawn(trivial).join();
  const ms = performance.now() - start;
  console.log(`spawn+join: ${n} in turn, ${(ms / n).toFixed(3)} ms each`);
  console.log(`elapsed_ns ${Math.round(ms * 1e6)}`);
}

const napper = weft.entry(function napper(ms) {
  weft.sleep(ms);
});

/** For the goal table: N microthreads asleep for `ms`, whose memory the bench reads. */
function benchSleepers(n, ms) {
  const handles = [];
  for (let i = 0; i < n; i++) handles.push(weft.spawn(napper, ms));
  console.log(`sleepers: ${n} asleep`);
  for (const h of handles) h.join();
}

const counter = weft.entry(function counter(tx) {
  for (let i = 0; i < 4; i++) tx.send(i);
});

const registrar = weft.entry(function registrar({ name, tx, go }) {
  weft.register(name, tx);
  go.recv();
});

/** generate, parallelMap, the registry, cancel with a grace period. */
function patterns() {
  console.log(`generate ${JSON.stringify([...weft.generate(counter)])}`);
  console.log(`parallelMap ${JSON.stringify(weft.parallelMap(square, [1, 2, 3, 4, 5], { concurrency: 2 }))}`);
  try {
    weft.parallelMap(thrower, ['x', 'y']);
  } catch (e) {
    console.log(`parallelMap failed: ${e.name} ${e.failure.kind}`);
  }
  const [tx, rx] = weft.channel(1);
  const [goTx, goRx] = weft.channel(0);
  const h = weft.spawn(registrar, { name: 'service', tx, go: goRx });
  let found = weft.whereis('service');
  while (found === null) {
    weft.yieldNow();
    found = weft.whereis('service');
  }
  found.send('via the registry');
  console.log(`registry ${rx.recv()} ${weft.whereis('nobody')}`);
  try {
    weft.register('service', found);
  } catch (e) {
    console.log(`taken: ${e.message}`);
  }
  goTx.send(null);
  h.join();
  const [stopTx, stopRx] = weft.channel(0);
  const s = weft.spawn(sleeper, stopRx);
  s.cancel({ grace: 1000 });
  try {
    s.join();
    console.log('cancelled: joined');
  } catch (e) {
    console.log(`cancelled: ${e.name} ${e.failure.kind} node ${s.node}`);
  }
  stopTx.close();
}

/** The application's channels, in CBOR: objects in, objects out. */
function hostCbor() {
  const jobs = weft.hostReceiver('jobs', { codec: weft.CBOR });
  const results = weft.hostSender('results', { codec: weft.CBOR });
  for (const job of jobs) {
    results.send({
      name: job.name.toUpperCase(),
      area: job.width * job.height,
      tags: [...job.tags].sort(),
      ratio: job.width / job.height,
      raw: Uint8Array.from(job.raw).reverse(),
    });
  }
}

// ---- monitors and supervisors ----

/** Waits for one value on `rx`, then fails or returns, as told. */
const gated = weft.entry(function gated({ rx, fail }) {
  rx.recv();
  if (fail) throw new RangeError('the gated child fails as told');
  return 'done';
});

function monitorMode() {
  // A microthread that returns.
  const [goTx, goRx] = weft.channel(0);
  const h = weft.spawn(gated, { rx: goRx, fail: false }, { name: 'finisher' });
  const watch = weft.monitor(h.id);
  goTx.send('go');
  const down = watch.recv();
  console.log(`down: same id ${down.id === h.id} name ${down.name} ${down.outcome.kind} failure ${down.outcome.failure}`);
  console.log(`joined: ${h.join()}`);
  // One that fails, seen through select; then the monitor's channel is closed.
  const [go2Tx, go2Rx] = weft.channel(0);
  const f = weft.spawn(gated, { rx: go2Rx, fail: true }, { name: 'failer' });
  const watch2 = weft.monitor(f.id);
  go2Tx.send('go');
  const r = weft.select([{ recv: watch2 }]);
  const d = r.value;
  const fl = d.outcome.failure;
  console.log(`down: ${r.kind} name ${d.name} ${d.outcome.kind} kind ${fl.kind} of ${fl.name} same id ${fl.id === f.id && d.id === f.id}`);
  console.log(`message: ${fl.message.split('\n')[0]}`);
  throws(() => watch2.recv(), Closed, 'a second receive on a monitor');
  throws(() => f.join(), Failed, 'join of the failed child');
  // One that has ended, one that never was.
  const gone = weft.monitor(h.id).recv();
  const never = weft.monitor(123456789).recv();
  console.log(`no-such: ${gone.outcome.kind} name ${gone.name}; ${never.outcome.kind} id ${never.id}`);
  // The codec, both ways.
  check(JSON.stringify(weft.DOWN.decode(weft.DOWN.encode(d))) === JSON.stringify(d), 'a Down round-trips');
  const bad = throws(() => weft.monitor(-1), TypeError, 'a negative id');
  console.log(`bad: ${bad.message}`);
}

/**
 * A supervised worker: says it is up on `events`, then takes orders (without
 * `orders`, it waits to be stopped): 'fail' throws, 'return' returns. Its cleanup,
 * when it is stopped, prints. It owns its shutdown, so that a stop that comes while
 * it is still busy (between its `up` and its wait) reaches its cleanup too, rather
 * than stopping it at a fuel yield.
 */
const worker = weft.entry(function worker({ name, events, orders }) {
  weft.ownShutdown();
  events.send(`${name} up`);
  const [keep, never] = weft.channel(0);
  try {
    const order = orders === null ? never.recv() : orders.recv();
    if (order === 'fail') throw new Error(`${name} fails as ordered`);
    return order;
  } catch (e) {
    if (e instanceof weft.Cancelled) {
      console.log(`${name} cleanup`);
      return 'stopped';
    }
    throw e;
  } finally {
    keep.close();
  }
});

/** Receive `n` events (a generous bound as the hang guard), sorted. */
function ups(rx, n) {
  const got = [];
  for (let i = 0; i < n; i++) got.push(rx.recv({ timeout: 60000 }));
  return got.sort().join(', ');
}

function childrenOf(sup) {
  return sup
    .whichChildren()
    .map((c) => `${c.name} ${c.state} ${c.restarts}`)
    .join(', ');
}

/** A failing child restarts alone; its sibling runs on, untouched. */
function oneForOne() {
  const [events, upRx] = weft.channel(64);
  const [orders, flakyOrders] = weft.channel(8);
  const sup = weft.supervisor.start({
    name: 'workers',
    strategy: 'one-for-one',
    intensity: { maxRestarts: 10, within: 3600000 },
    children: [
      { fn: worker, name: 'steady', arg: { name: 'steady', events, orders: null } },
      { fn: worker, name: 'flaky', arg: { name: 'flaky', events, orders: flakyOrders } },
    ],
  });
  console.log(`started: ${ups(upRx, 2)}`);
  const steadyId = sup.whichChildren()[0].id;
  for (let i = 0; i < 3; i++) {
    orders.send('fail');
    console.log(`restarted: ${ups(upRx, 1)}`);
  }
  console.log(`children: ${childrenOf(sup)}`);
  console.log(`steady kept its microthread: ${sup.whichChildren()[0].id === steadyId}`);
  sup.shutdown();
  sup.join();
  console.log('joined');
}

/** Transient children: restarted after a failure, not after a return; the supervisor ends when none is left. */
function transient() {
  const [events, upRx] = weft.channel(64);
  const [onceTx, onceOrders] = weft.channel(8);
  const [twiceTx, twiceOrders] = weft.channel(8);
  const sup = weft.supervisor.start({
    name: 'transients',
    children: [
      { fn: worker, name: 'once', restart: 'transient', arg: { name: 'once', events, orders: onceOrders } },
      { fn: worker, name: 'twice', restart: 'transient', arg: { name: 'twice', events, orders: twiceOrders } },
    ],
  });
  console.log(`started: ${ups(upRx, 2)}`);
  twiceTx.send('fail');
  console.log(`restarted: ${ups(upRx, 1)}`);
  onceTx.send('return');
  twiceTx.send('return');
  // Nothing is left to run: the supervisor ends (a restart of `once` would wait for
  // orders, and this join would time out). The run's restarts count says 1.
  sup.join({ timeout: 60000 });
  console.log('joined');
}

/** one-for-all or rest-for-one: b fails once, among a, b, c. */
function strategyMode(strategy) {
  const [events, upRx] = weft.channel(64);
  const [orders, bOrders] = weft.channel(8);
  const sup = weft.supervisor.start({
    name: strategy,
    strategy,
    children: ['a', 'b', 'c'].map((name) => ({ fn: worker, name, arg: { name, events, orders: name === 'b' ? bOrders : null } })),
  });
  console.log(`started: ${ups(upRx, 3)}`);
  orders.send('fail');
  console.log(`restarted: ${ups(upRx, strategy === 'one-for-all' ? 3 : 2)}`);
  console.log(`children: ${childrenOf(sup)}`);
  sup.shutdown();
  sup.join();
  console.log('joined');
}

/** An always-failing child: the supervisor gives up, stopping its siblings. */
function intensity() {
  const [events, upRx] = weft.channel(64);
  const [orders, badOrders] = weft.channel(8);
  const sup = weft.supervisor.start({
    name: 'crashy',
    intensity: { maxRestarts: 2, within: 3600000 },
    children: [
      { fn: worker, name: 'steady', arg: { name: 'steady', events, orders: null } },
      { fn: worker, name: 'bad', arg: { name: 'bad', events, orders: badOrders } },
    ],
  });
  console.log(`started: ${ups(upRx, 2)}`);
  for (let i = 0; i < 3; i++) orders.send('fail');
  try {
    sup.join();
    console.log('joined: no failure');
  } catch (e) {
    check(e instanceof Failed, `the supervisor fails: ${e}`);
    console.log(`failed: ${e.failure.kind} name ${e.failure.name}`);
    console.log(`message: ${e.failure.message.replace(/microthread \d+/g, 'microthread N')}`);
  }
  throws(() => sup.whichChildren(), Closed, 'whichChildren of a finished supervisor');
}

/** Shutdown stops the children in reverse start order, a nested supervisor's own first; so does a cancellation. */
function superviseShutdown() {
  const [events, upRx] = weft.channel(64);
  const w = (name) => ({ fn: worker, name, arg: { name, events: events.clone(), orders: null }, shutdown: 10000 });
  const sup = weft.supervisor.start({
    name: 'tree',
    children: [w('a'), { supervisor: { name: 'inner', strategy: 'rest-for-one', children: [w('x'), w('y')] } }, w('c')],
  });
  console.log(`started: ${ups(upRx, 4)}`);
  console.log(`children: ${childrenOf(sup)}`);
  sup.shutdown();
  sup.join();
  console.log('shut down');
  const sup2 = weft.supervisor.start({ name: 'cancelled', children: [w('p'), w('q'), w('r')] });
  console.log(`started: ${ups(upRx, 3)}`);
  sup2.cancel({ grace: 30000 });
  try {
    sup2.join();
    console.log('joined: no failure');
  } catch (e) {
    console.log(`cancelled: ${e.name} ${e.failure.kind} name ${e.failure.name}`);
  }
}

/**
 * A temporary child is not restarted after its failure; a nested supervisor that
 * gives up is a failed child of its supervisor, which restarts it.
 */
function nested() {
  const [events, upRx] = weft.channel(64);
  const [tempTx, tempOrders] = weft.channel(8);
  const [badTx, badOrders] = weft.channel(8);
  const sup = weft.supervisor.start({
    name: 'outer',
    children: [
      { fn: worker, name: 'temp', restart: 'temporary', arg: { name: 'temp', events, orders: tempOrders } },
      {
        supervisor: {
          name: 'inner',
          intensity: { maxRestarts: 0, within: 3600000 },
          children: [{ fn: worker, name: 'bad', arg: { name: 'bad', events, orders: badOrders } }],
        },
      },
    ],
  });
  console.log(`started: ${ups(upRx, 2)}`);
  tempTx.send('fail');
  // Wait until the supervisor has seen it end (each ask is a round trip to it).
  let temp = sup.whichChildren()[0];
  for (let asked = 1; temp.state === 'running'; asked++) {
    check(asked < 100000, 'the supervisor sees the temporary child end');
    weft.yieldNow();
    temp = sup.whichChildren()[0];
  }
  badTx.send('fail');
  console.log(`restarted: ${ups(upRx, 1)}`);
  console.log(`children: ${childrenOf(sup)}`);
  sup.shutdown();
  sup.join();
  console.log('joined');
}

/** Bad options: a clear error each, at start. */
function superviseBad() {
  const notRegistered = function notRegistered() {};
  const cases = [
    { name: 'x', strategy: 'one-for-some' },
    { name: 'x', children: [{ fn: worker, restart: 'sometimes' }] },
    { name: 'x', children: [{ fn: notRegistered }] },
    { name: 'x', children: [{ fn: worker }, { fn: worker }] },
    { name: 'x', intensity: { maxRestarts: -1 } },
    { name: 'x', childs: [] },
    { children: [] },
  ];
  for (const options of cases) {
    const e = throws(() => weft.supervisor.start(options), TypeError, `bad options ${JSON.stringify(options)}`);
    console.log(e.message);
  }
}

export function main(args) {
  const mode = args[0];
  switch (mode) {
    case 'host-cbor':
      return hostCbor();
    case 'patterns':
      return patterns();
    case 'api':
      return api();
    case 'monitor':
      return monitorMode();
    case 'one-for-one':
      return oneForOne();
    case 'transient':
      return transient();
    case 'one-for-all':
    case 'rest-for-one':
      return strategyMode(mode);
    case 'intensity':
      return intensity();
    case 'supervise-shutdown':
      return superviseShutdown();
    case 'supervise-bad':
      return superviseBad();
    case 'nested':
      return nested();
    case 'fail':
      return fail();
    case 'unregistered':
      return unregistered();
    case 'late':
      return late();
    case 'echo':
      return echoMode();
    case 'replay':
      return replay();
    case 'exit':
      console.log('exiting with 7');
      weft.exit(7);
      return undefined;
    case 'bench-spawn':
      return benchSpawn(Number(args[1] || 200));
    case 'bench-sleepers':
      return benchSleepers(Number(args[1] || 1000), Number(args[2] || 5000));
    default:
      throw new Error(`unknown mode ${mode}: api, monitor, one-for-one, transient, one-for-all, rest-for-one, intensity, supervise-shutdown, supervise-bad, nested, fail, unregistered, late, echo, replay, exit, bench-spawn, bench-sleepers`);
  }
}
