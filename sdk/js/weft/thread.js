// thread: spawning, joining, sleeping, yielding, atomic sections, identity.

import * as thread from 'weft:runtime/thread@0.6.0';
import { attempt } from './bindings.js';
import { placement } from './cluster.js';
import { TRAMPOLINE, entryIndex } from './entry.js';
import { Cancelled, Failed, LimitReached, NoSuchNode, Timeout, TooLarge, WeftError, failureOf } from './errors.js';
import { decode, encode, restore } from './message.js';
import { nanos, timeoutOf } from './time.js';

/** A spawned microthread, to be joined or cancelled. Dropping it does not detach it. */
export class JoinHandle {
  constructor(inner) {
    this.inner = inner;
  }
  /** The microthread's id (unique within its run). */
  get id() {
    return Number(this.inner.id());
  }
  /** Wait until it has finished: its result; throws Failed (it failed or was cancelled), Timeout, Cancelled (this one was). */
  join(options) {
    const timeout = timeoutOf(options, 'join');
    const r = attempt(() => (timeout === undefined ? this.inner.join() : this.inner.joinTimeout(timeout)));
    if (!r.isErr) return decode(r.ok);
    switch (r.err.tag) {
      case 'failed':
        throw new Failed(failureOf(r.err.val));
      case 'timeout':
        throw new Timeout(`join: microthread ${this.id} had not finished after ${options.timeout} ms`);
      case 'cancelled':
        throw new Cancelled('join: this microthread was cancelled');
      default:
        throw new WeftError(`join: ${r.err.tag}`);
    }
  }
  /**
   * Cancel it: its blocking calls fail with Cancelled, so its cleanup runs. Joining
   * it then throws Failed of kind `cancelled`. `options.grace` (ms): how long its
   * cleanup may take before it is stopped (default: the run's).
   */
  cancel(options) {
    if (options?.grace === undefined) this.inner.cancel();
    else this.inner.cancelWithin(nanos(options.grace, 'cancel'));
  }
  /** The node it runs on, if another node of the cluster runs it; else null. */
  get node() {
    const n = this.inner.node();
    return n === undefined ? null : n;
  }
  /** Whether it has finished. */
  isFinished() {
    return this.inner.isFinished();
  }
}

export function spawnWith(fn, arg, options, detached, what) {
  const function_ = entryIndex(fn, what);
  let name = options && options.name !== undefined ? options.name : fn.name || undefined;
  if (name !== undefined && typeof name !== 'string') throw new TypeError(`${what}: the name is a string`);
  if (name === '') name = undefined;
  const place = placement(options, what);
  const { message, wrappers } = encode(arg);
  const r = attempt(() =>
    place !== undefined
      ? thread.spawnOn(place.node, TRAMPOLINE, function_, message, name, detached)
      : thread.spawn(TRAMPOLINE, function_, message, name, detached),
  );
  if (!r.isErr) return new JoinHandle(r.ok);
  restore(wrappers, r.err.argument);
  const e = r.err.error;
  switch (e.tag) {
    case 'limit-reached':
      throw new LimitReached(`${what}: the run already has its maximum of ${e.val} live microthreads`, e.val, arg);
    case 'argument-too-large':
      throw new TooLarge(`${what}: the argument is over the message size limit of ${e.val} bytes`, arg);
    case 'not-spawnable':
      throw new WeftError(`${what}: this program does not export weft:runtime/entry: build it with weft build`, arg);
    case 'no-such-node':
      throw new NoSuchNode(`${what}: no such node: ${e.val}`, arg);
    case 'no-such-program':
      throw new WeftError(`${what}: the node does not run this program: ${e.val}`, arg);
    case 'cannot-move':
      throw new WeftError(`${what}: cannot move to another node: ${e.val}`, arg);
    default:
      throw new WeftError(`${what}: refused: ${e.tag} ${e.val === undefined ? '' : String(e.val)}`, arg);
  }
}

/**
 * Start `fn` (registered with weft.entry) as a new microthread, a child of this
 * one, with `arg` (its endpoints move); `options.name` names it (default: the
 * function's name). In a cluster, `options.node` (a node's id, or a node of
 * `nodes()`) runs it on that node, `options.anyNode: true` on the live node with the
 * most room and the least load (this one included); `arg` may then carry senders,
 * not receivers or sockets. Throws LimitReached, TooLarge, NoSuchNode (the node is
 * not live), WeftError (another program there, a receiver in `arg`), each with
 * `.value`: `arg`, its endpoints given back.
 */
export function spawn(fn, arg, options) {
  return spawnWith(fn, arg, options, false, 'spawn');
}

/** Like spawn, but no child of this one: nobody waits for it, and it is cancelled when main ends. */
export function spawnDetached(fn, arg, options) {
  return spawnWith(fn, arg, options, true, 'spawnDetached');
}

/** Suspend this microthread (only this one) for at least `ms` milliseconds. Throws Cancelled. */
export function sleep(ms) {
  const r = attempt(() => thread.sleep(nanos(ms, 'sleep')));
  if (r.isErr) throw new Cancelled('sleep: this microthread was cancelled');
}

/** Let the other microthreads run. */
export function yieldNow() {
  thread.yieldNow();
}

/** Whether this microthread has been cancelled. */
export function isCancelled() {
  return thread.cancelled();
}

/**
 * From now on this microthread owns its shutdown, as a supervisor does: its
 * cancellation is a notice, delivered once (one blocking call throws Cancelled),
 * and it is not stopped at a fuel yield while busy, so that its cleanup runs
 * however busy it was; only its grace period bounds it.
 */
export function ownShutdown() {
  thread.ownShutdown();
}

/** Run `fn` in an atomic section: no preemption until it returns (a blocking call inside ends the section). */
export function atomic(fn) {
  thread.atomicBegin();
  try {
    return fn();
  } finally {
    thread.atomicEnd();
  }
}

/** The id of this microthread (main is 0). */
export function currentId() {
  return Number(thread.currentId());
}

/** The name of this microthread ("main" for main), or null. */
export function currentName() {
  const n = thread.currentName();
  return n === undefined ? null : n;
}

/** End the whole program with exit code `code` (0 to 255), from any microthread. Does not return. */
export function exit(code) {
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    throw new TypeError(`exit: an exit code is an integer from 0 to 255 (got ${String(code)})`);
  }
  thread.exit(code);
  throw new Error('unreachable: thread.exit returned');
}
