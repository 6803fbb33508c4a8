// supervisor: OTP's supervisors, as the Rust SDK has them (guest/src/supervisor.rs):
// a microthread that starts children in order, watches them (monitor) and restarts
// those that end, fresh, as its strategy says, within its intensity; it stops them in
// reverse start order, each within its shutdown time. Its loop is an entry of this
// SDK (registered below, at the top level, so every instance has it).

import * as thread from 'weft:runtime/thread@0.6.0';
import { isBytes } from './bindings.js';
import { Sender, channel } from './channel.js';
import { placement } from './cluster.js';
import { entry, entryIndex, registry } from './entry.js';
import { Cancelled, Closed, Empty, Failed, Full, NoSuchNode, Timeout, WeftError } from './errors.js';
import { isEndpoint } from './message.js';
import { monitor } from './monitor.js';
import { select } from './select.js';
import { isCancelled, spawnWith } from './thread.js';
import { nanos } from './time.js';

const STRATEGIES = ['one-for-one', 'one-for-all', 'rest-for-one'];
const RESTART_TYPES = ['permanent', 'transient', 'temporary'];
/** OTP's default shutdown time of a worker, ms. */
const DEFAULT_SHUTDOWN = 5000;
/** How many requests may wait for a supervisor. */
const CONTROL_CAPACITY = 16;
/** How many of the latest ends a supervisor lists when it gives up. */
const MAX_ACCOUNTS = 32;

function checkOptions(o, allowed, what) {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new TypeError(`${what}: expected an options object, got ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}`);
  }
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new TypeError(`${what}: unknown option ${JSON.stringify(k)} (the options are ${allowed.join(', ')})`);
  }
}

function oneOf(v, allowed, fallback, what) {
  if (v === undefined) return fallback;
  if (!allowed.includes(v)) throw new TypeError(`${what} is one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(v)})`);
  return v;
}

function milliseconds(v, fallback, what) {
  if (v === undefined) return fallback;
  nanos(v, what);
  return v;
}

/** A supervisor's options, checked: what its microthread starts with (children's functions as registry indices). */
function supervisorSpec(options, what) {
  checkOptions(options, ['name', 'strategy', 'intensity', 'children'], what);
  const name = options.name;
  if (typeof name !== 'string' || name === '') throw new TypeError(`${what}: options.name is a non-empty string (the supervisor's microthread's name)`);
  const strategy = oneOf(options.strategy, STRATEGIES, 'one-for-one', `${what}: options.strategy`);
  const intensity = options.intensity ?? {};
  checkOptions(intensity, ['maxRestarts', 'within'], `${what}: options.intensity`);
  const maxRestarts = intensity.maxRestarts ?? 3;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0 || maxRestarts > 0xffffffff) {
    throw new TypeError(`${what}: options.intensity.maxRestarts is an integer, at least 0 (got ${String(maxRestarts)})`);
  }
  const within = milliseconds(intensity.within, 5000, `${what}: options.intensity.within`);
  const children = options.children ?? [];
  if (!Array.isArray(children)) throw new TypeError(`${what}: options.children is an array of children`);
  const list = children.map((c, i) => childSpec(c, `${what}: child ${i}`));
  const names = new Set();
  for (const c of list) {
    if (names.has(c.name)) throw new TypeError(`${what}: two children are named ${JSON.stringify(c.name)}: name each child apart`);
    names.add(c.name);
  }
  return { name, strategy, maxRestarts, within, children: list };
}

function childSpec(c, what) {
  if (c !== null && typeof c === 'object' && c.supervisor !== undefined) {
    // A supervisor as a child: asked to stop through its control channel, its own
    // children first; its shutdown time is theirs together and a second more.
    if (c.node !== undefined || c.anyNode !== undefined) {
      throw new TypeError(
        `${what}: a supervisor child runs on its supervisor's node (it is asked to stop on a receiver, which cannot move to another node): give its children a node instead`,
      );
    }
    checkOptions(c, ['supervisor', 'restart', 'shutdown'], what);
    const spec = supervisorSpec(c.supervisor, `${what}: supervisor`);
    const shutdown = milliseconds(c.shutdown, spec.children.reduce((sum, x) => sum + x.shutdown, 1000), `${what}: shutdown`);
    const restart = oneOf(c.restart, RESTART_TYPES, 'permanent', `${what}: restart`);
    const [control, requests] = channel(CONTROL_CAPACITY);
    return { name: spec.name, fn: registry.indexOf(superviseEntry), arg: { spec, requests, nested: true }, restart, shutdown, control, node: null, anyNode: false };
  }
  checkOptions(c, ['name', 'fn', 'arg', 'restart', 'shutdown', 'node', 'anyNode'], what);
  const fn = entryIndex(c.fn, what);
  const name = c.name ?? c.fn.name;
  if (typeof name !== 'string' || name === '') throw new TypeError(`${what}: name is a non-empty string (or the function has a name)`);
  const restart = oneOf(c.restart, RESTART_TYPES, 'permanent', `${what} (${name}): restart`);
  const shutdown = milliseconds(c.shutdown, DEFAULT_SHUTDOWN, `${what} (${name}): shutdown`);
  const place = placement(c, `${what} (${name})`);
  if (place !== undefined) {
    const unmovable = endpointOtherThanSender(c.arg);
    if (unmovable !== null) {
      const where = place.node === undefined ? 'any node' : `node ${place.node}`;
      throw new TypeError(
        `${what} (${name}): its arg carries a ${unmovable}, and it is to run on ${where}: only senders move to another node (give it a sender to ask for what it needs, or leave it on this node)`,
      );
    }
  }
  const node = place?.node ?? null;
  const anyNode = place !== undefined && place.node === undefined;
  return { name, fn, arg: c.arg, restart, shutdown, control: null, node, anyNode };
}

/** The class name of the first endpoint in `v` that is not a Sender, or null. */
function endpointOtherThanSender(v) {
  if (v === null || typeof v !== 'object') return null;
  if (isEndpoint(v)) return v instanceof Sender ? null : v.kind;
  if (isBytes(v)) return null;
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const found = endpointOtherThanSender(x);
    if (found !== null) return found;
  }
  return null;
}

/** Close the endpoints in `v` (a copy of a child's argument that a refused start gave back). */
function closeEndpoints(v) {
  if (v === null || typeof v !== 'object' || isBytes(v)) return;
  if (isEndpoint(v)) {
    v.close();
    return;
  }
  for (const x of Array.isArray(v) ? v : Object.values(v)) closeEndpoints(x);
}

/** A copy of a value for a child's start: its endpoints cloned (a restart gets the same argument as the first start). */
function cloneValue(v) {
  if (v === null || typeof v !== 'object') return v;
  if (isEndpoint(v)) return v.clone();
  if (isBytes(v)) return v.slice();
  if (Array.isArray(v)) return v.map(cloneValue);
  const o = {};
  for (const k of Object.keys(v)) {
    Object.defineProperty(o, k, { value: cloneValue(v[k]), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

/** A started supervisor. */
export class SupervisorHandle {
  constructor(handle, control) {
    this.handle = handle;
    this.control = control;
  }
  /** The id of the supervisor's microthread. */
  get id() {
    return this.handle.id;
  }
  /**
   * Its children, in start order: `{ name, id, node, state, restarts }`, state
   * 'running', 'finished' (returned, not to restart) or 'failed' (failed, not to
   * restart); id is that of its microthread now, or of the last one, and node the id
   * of the node it runs (or ran) on if another node of the cluster, else null.
   * Throws Closed if the supervisor has finished, Cancelled if this microthread is
   * cancelled while it waits.
   */
  whichChildren() {
    const [reply, answer] = channel(1);
    try {
      this.control.send({ op: 'which-children', reply });
      return answer.recv();
    } catch (e) {
      if (e instanceof Closed) throw new Closed('whichChildren: the supervisor has finished: join it to see how');
      throw e;
    } finally {
      reply.close();
      answer.close();
    }
  }
  /**
   * Ask it to stop: its children stop in reverse start order, each within its
   * shutdown time, then it finishes (join returns). Asking one that has finished
   * does nothing. Throws Cancelled if this microthread is cancelled while the
   * request waits for room.
   */
  shutdown() {
    try {
      this.control.send({ op: 'shutdown' });
    } catch (e) {
      if (!(e instanceof Closed)) throw e;
    }
  }
  /**
   * Cancel it: it stops its children in reverse start order within its grace period
   * (`options.grace`, ms; default the run's), as at a shutdown, then ends (join
   * throws Failed of kind 'cancelled'; past the grace, it and its tree are stopped
   * where they are).
   */
  cancel(options) {
    this.handle.cancel(options);
  }
  /**
   * Wait until it finishes: once no child is left to run, or once shut down. Throws
   * Failed, of kind 'restart-intensity' if it gave up (the message names the child
   * and lists the recent ends), Timeout (`options.timeout`), Cancelled.
   */
  join(options) {
    this.handle.join(options);
  }
  /** Whether it has finished. */
  isFinished() {
    return this.handle.isFinished();
  }
}

/**
 * Start a supervisor as a microthread, a child of this one, which starts its
 * children in order. `options`: `name` (its microthread's), `strategy`
 * ('one-for-one', the default; 'one-for-all'; 'rest-for-one'), `intensity`
 * (`{ maxRestarts, within }`: at most maxRestarts restarts within any `within` ms;
 * 3 in 5000 by default), `children`: each `{ name, fn, arg, restart, shutdown,
 * node, anyNode }` (`fn` registered with weft.entry, `name` by default its name, `arg`
 * given afresh at each start with its endpoints cloned, `restart` 'permanent' (the
 * default), 'transient' or 'temporary', `shutdown` the grace in ms its cancellation
 * gets when it is stopped, 5000 by default; `node` (a node's id, or a node of
 * `nodes()`) or `anyNode: true` to run it on another node of the cluster, where it
 * restarts while that node is live, and on any live node once it went down), or
 * `{ supervisor: options, restart, shutdown }` for a supervisor as a child (on this
 * node). Throws TypeError for bad options, LimitReached and TooLarge as spawn does.
 */
function startSupervisor(options) {
  const spec = supervisorSpec(options, 'supervisor.start');
  const [control, requests] = channel(CONTROL_CAPACITY);
  try {
    const handle = spawnWith(superviseEntry, { spec, requests, nested: false }, { name: spec.name }, false, 'supervisor.start');
    return new SupervisorHandle(handle, control);
  } catch (e) {
    control.close();
    requests.close();
    throw e;
  }
}

export const supervisor = Object.freeze({ start: startSupervisor, SupervisorHandle });

/** How a failure reads in a supervisor's list of recent ends. */
const FAILURE_VERBS = {
  panic: 'panicked',
  trap: 'trapped',
  'out-of-memory': 'ran out of memory',
  'fuel-exhausted': 'ran out of fuel',
  cancelled: 'was cancelled',
  'child-failed': 'failed with a child',
  exited: 'exited',
  'restart-intensity': 'gave up',
  disconnected: 'lost its link',
  'node-down': 'lost its node',
};

function describeEnd(f) {
  const verb = FAILURE_VERBS[f.kind] ?? `failed (${f.kind})`;
  const message = f.kind === 'restart-intensity' ? f.message.replaceAll('\n', '\n  ') : f.message.split('\n')[0];
  return `${verb}: ${message}`;
}

/**
 * Join a child that has ended or is being stopped: `{ failure }` (null if it
 * returned), or `{ cancelled: true }` if this supervisor's grace is over. The
 * supervisor owns its shutdown: the notice of its cancellation fails one join, not
 * the next. A child whose node went down (kind 'node-down') is to start on any node
 * from then on: its node is gone for good (one that comes back has a new id).
 */
function joinEnded(handle) {
  for (let tries = 0; ; tries++) {
    try {
      handle.join();
      return { failure: null };
    } catch (e) {
      if (e instanceof Failed) return { failure: e.failure };
      if (e instanceof Cancelled && tries === 0) continue;
      if (e instanceof Cancelled) return { cancelled: true };
      throw e;
    }
  }
}

/**
 * Stop a child within its shutdown time: a supervisor child is asked to shut down
 * (its children stop in order) and cancelled only once the time is over; any other
 * child is cancelled with its shutdown time as the grace.
 */
function stopChild(child, handle, down) {
  let asked = false;
  if (child.control !== null) {
    try {
      child.control.trySend({ op: 'shutdown' });
      asked = true;
    } catch (e) {
      // Full or closed: it is cancelled instead.
      if (!(e instanceof Full || e instanceof Closed)) throw e;
    }
  }
  if (asked) {
    const deadline = performance.now() + child.shutdown;
    let noticed = false;
    for (;;) {
      try {
        down.recv({ timeout: Math.max(0, deadline - performance.now()) });
        break;
      } catch (e) {
        if (e instanceof Timeout) {
          handle.cancel({ grace: 0 });
          break;
        }
        // The notice of this supervisor's cancellation: wait on (once: a second
        // means its grace is over, and it is being stopped).
        if (e instanceof Cancelled && !noticed) {
          noticed = true;
          continue;
        }
        if (e instanceof Cancelled || e instanceof Closed) break;
        throw e;
      }
    }
  } else {
    handle.cancel({ grace: child.shutdown });
  }
  return joinEnded(handle);
}

/** A running supervisor (in its own microthread). */
class Running {
  constructor(spec) {
    this.name = spec.name;
    this.strategy = spec.strategy;
    this.maxRestarts = spec.maxRestarts;
    this.within = spec.within;
    // `node`: the node its microthread runs (or ran) on, if another; `elsewhere`:
    // its node went down, it starts on any node from now on.
    this.slots = spec.children.map((child) => ({ child, running: null, id: null, node: null, elsewhere: false, state: 'running', restarts: 0 }));
    /** When the restarts within the intensity's window were (performance.now()). */
    this.recent = [];
    /** [when, what] of the latest of those (at most MAX_ACCOUNTS). */
    this.accounts = [];
  }

  /**
   * Start the children, then supervise them until none is left to run, a shutdown
   * is asked for, or it is cancelled (null), or the intensity is exceeded (the
   * message to give up with). However it ends, the children stop in reverse order.
   */
  run(requests) {
    try {
      return this.supervise(requests);
    } finally {
      this.stopAllFrom(0);
    }
  }

  supervise(requests) {
    for (let i = 0; i < this.slots.length; i++) {
      if (isCancelled()) return null;
      // A strategy may have started it already, at an earlier child's failure.
      if (this.slots[i].running !== null) continue;
      const e = this.start(i);
      if (e !== null) {
        // As if the child had failed at once: restart it within the limits.
        const giveUp = this.ended(i, `could not be started: ${e.message}`);
        if (giveUp !== null) return giveUp;
      }
    }
    let req = requests;
    for (;;) {
      // The notice of a cancellation may have come to another call: it is seen here.
      if (isCancelled()) return null;
      const watched = [];
      for (let i = 0; i < this.slots.length; i++) if (this.slots[i].running !== null) watched.push(i);
      if (watched.length === 0) return null;
      const ops = watched.map((i) => ({ recv: this.slots[i].running.down }));
      if (req !== null) ops.push({ recv: req });
      let r;
      try {
        r = select(ops);
      } catch (e) {
        // Cancelled: the children stop in order (see run).
        if (e instanceof Cancelled) return null;
        throw e;
      }
      if (r.index === watched.length) {
        if (r.kind !== 'received') {
          // Nobody can ask anything any more: supervise on.
          req = null;
          continue;
        }
        const m = r.value;
        if (m?.op === 'shutdown') return null;
        if (m?.op !== 'which-children') throw new WeftError(`supervisor ${this.name}: a request it does not know (op ${String(m?.op)})`);
        try {
          m.reply.send(this.whichChildren());
        } catch (e) {
          // The asker gave up waiting, or this one is being cancelled (seen above).
          if (!(e instanceof Closed || e instanceof Cancelled)) throw e;
        } finally {
          m.reply.close();
        }
        continue;
      }
      // A child's Down (or its monitor's end): join it, to learn how it ended.
      const i = watched[r.index];
      const { handle, down } = this.slots[i].running;
      this.slots[i].running = null;
      down.close();
      const ended = joinEnded(handle);
      // Stopped by the end of its grace: this one is, too.
      if (ended.cancelled) return null;
      if (ended.failure?.kind === 'node-down') this.slots[i].elsewhere = true;
      // The child ended as this supervisor was being cancelled: no restart.
      if (isCancelled()) return null;
      const giveUp = this.ended(i, ended.failure === null ? null : describeEnd(ended.failure));
      if (giveUp !== null) return giveUp;
    }
  }

  /** Spawn child `i` and watch it: null, or the error of a refused spawn. */
  start(i) {
    const slot = this.slots[i];
    const c = slot.child;
    const options = { name: c.name };
    if (slot.elsewhere || c.anyNode) options.anyNode = true;
    else if (c.node !== null) options.node = c.node;
    let handle;
    try {
      handle = spawnWith(registry[c.fn], cloneValue(c.arg), options, false, `supervisor ${this.name}: start ${c.name}`);
    } catch (e) {
      if (!(e instanceof WeftError)) throw e;
      // Its node is gone: any node from now on.
      if (e instanceof NoSuchNode) slot.elsewhere = true;
      // The copy of its argument came back: its endpoints go now.
      closeEndpoints(e.value);
      return e;
    }
    const down = monitor(handle.id);
    slot.id = handle.id;
    slot.node = handle.node;
    slot.state = 'running';
    slot.running = { handle, down };
    return null;
  }

  /** Child `i` has ended (`failure` null: it returned): restart what the strategy says, within the intensity. */
  ended(i, failure) {
    // Children that could not be started again end at once, in turn.
    const ends = [[i, failure]];
    while (ends.length > 0) {
      const [j, f] = ends.shift();
      const giveUp = this.oneEnded(j, f, ends);
      if (giveUp !== null) return giveUp;
    }
    return null;
  }

  oneEnded(i, failure, ends) {
    const slot = this.slots[i];
    const restart = slot.child.restart === 'permanent' || (slot.child.restart === 'transient' && failure !== null);
    if (!restart) {
      slot.state = failure === null ? 'finished' : 'failed';
      return null;
    }
    const what = `child ${slot.child.name} (microthread ${slot.id ?? 'none'}) ${failure ?? 'returned'}`;
    const now = performance.now();
    while (this.recent.length > 0 && now - this.recent[0] > this.within) this.recent.shift();
    this.recent.push(now);
    while (this.accounts.length >= MAX_ACCOUNTS || (this.accounts.length > 0 && now - this.accounts[0][0] > this.within)) {
      this.accounts.shift();
    }
    this.accounts.push([now, what]);
    if (this.recent.length > this.maxRestarts) {
      this.stopAllFrom(0);
      return (
        `supervisor ${this.name} gave up: child ${slot.child.name} needed more than ${this.maxRestarts} restarts ` +
        `within ${this.within} ms; the recent ends:\n  ${this.accounts.map(([, w]) => w).join('\n  ')}`
      );
    }
    // Being cancelled: nothing starts again; run stops the rest.
    if (isCancelled()) return null;
    let again;
    if (this.strategy === 'one-for-all') {
      this.stopAllFrom(0);
      again = this.restartableFrom(0, i);
    } else if (this.strategy === 'rest-for-one') {
      this.stopAllFrom(i + 1);
      again = this.restartableFrom(i + 1, i);
    } else {
      again = [i];
    }
    for (const j of again) {
      // Restarted already, when an earlier one of these could not be.
      if (this.slots[j].running !== null) continue;
      // (At the first start, a strategy may start one that never ran.)
      if (this.slots[j].id !== null) {
        this.slots[j].restarts += 1;
        thread.countRestart();
      }
      const e = this.start(j);
      if (e !== null) ends.push([j, `could not be restarted: ${e.message}`]);
    }
    return null;
  }

  /** The children from `from` on that were stopped to restart and are to start again (not the temporary ones), with `i`, in start order. */
  restartableFrom(from, i) {
    const again = [];
    for (let j = 0; j < this.slots.length; j++) {
      const s = this.slots[j];
      if (j === i) again.push(j);
      else if (j >= from && s.state === 'running' && s.running === null) {
        if (s.child.restart === 'temporary') s.state = 'finished';
        else again.push(j);
      }
    }
    return again;
  }

  /** Stop the running children from `from` on, in reverse start order. One whose node went down meanwhile starts on any node from then on. */
  stopAllFrom(from) {
    for (let j = this.slots.length - 1; j >= from; j--) {
      const s = this.slots[j];
      if (s.running === null) continue;
      const { handle, down } = s.running;
      s.running = null;
      const ended = stopChild(s.child, handle, down);
      down.close();
      if (ended.failure?.kind === 'node-down') s.elsewhere = true;
    }
  }

  whichChildren() {
    return this.slots.map((s) => ({ name: s.child.name, id: s.id, node: s.node, state: s.state, restarts: s.restarts }));
  }
}

/** A supervisor's microthread (at the top, or as another's child). */
function runSupervisor({ spec, requests, nested }) {
  // A cancellation stops here: the children are stopped in order, by run.
  thread.ownShutdown();
  if (nested) {
    // Its supervisor asks only a running instance to shut down: a request still
    // queued was for an instance stopped before it read it, not for this one.
    for (;;) {
      try {
        requests.tryRecv();
      } catch (e) {
        if (e instanceof Empty || e instanceof Closed) break;
        throw e;
      }
    }
  }
  const giveUp = new Running(spec).run(requests);
  if (giveUp !== null) {
    thread.giveUp(giveUp);
    throw new Error('unreachable: thread.giveUp returned');
  }
}

// The SDK's own entry, registered before the program's (its module runs first).
const superviseEntry = entry(function supervisor(arg) {
  runSupervisor(arg);
});
