// The JavaScript guest SDK of weft: what a program built with `weft build app.js`
// imports as 'weft'. The same semantics and words as the Rust SDK (guest/src/lib.rs),
// in JavaScript's idiom: blocking calls that suspend only the calling microthread,
// errors as exceptions of the classes below, timeouts in milliseconds.
//
// One file, in the Rust SDK's layers (each section uses only those above it):
// bindings (the WIT imports), time, failure and errors, message (the codec),
// entry (the registry, `main`, how a microthread starts and fails), cluster (the
// nodes), thread, channel, net, select. See README.md beside this file.

import * as thread from 'weft:runtime/thread@0.6.0';
import * as chan from 'weft:runtime/channel@0.6.0';
import * as witNet from 'weft:runtime/net@0.6.0';
import * as witRegistry from 'weft:runtime/registry@0.6.0';
import * as witCluster from 'weft:runtime/cluster@0.6.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';

// ---------------------------------------------------------------------------
// bindings: a call whose WIT result is an error throws the generated bindings'
// error, whose `payload` is the WIT error value.

const hasOwn = Object.prototype.hasOwnProperty;

// The bindings run in a realm of their own: their Uint8Arrays are not instances of
// this realm's. `ours` views the same bytes as one of ours.
function ours(bytes) {
  return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isBytes(v) {
  return v instanceof Uint8Array || Object.prototype.toString.call(v) === '[object Uint8Array]';
}

/** Call `f`: `{ ok }` with its value, or `{ err }` with the WIT error it returned. */
function attempt(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e !== null && typeof e === 'object' && hasOwn.call(e, 'payload')) {
      return { err: e.payload, isErr: true };
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// time: milliseconds (JavaScript's unit) to the nanoseconds every WIT timeout,
// sleep and timer takes.

function nanos(ms, what) {
  if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity) {
    throw new TypeError(`${what}: a duration is a finite number of milliseconds, at least 0 (got ${String(ms)})`);
  }
  return BigInt(Math.round(ms * 1e6));
}

/** The timeout of `options` in nanoseconds, or undefined for none. */
function timeoutOf(options, what) {
  if (options === undefined || options === null || options.timeout === undefined || options.timeout === null) {
    return undefined;
  }
  if (options.timeout === Infinity) return undefined;
  return nanos(options.timeout, what);
}

// ---------------------------------------------------------------------------
// failure and errors

/** A failure: how a microthread finished when it did not return. */
function failureOf(f) {
  return Object.freeze({
    id: Number(f.id),
    name: f.name === undefined ? null : f.name,
    kind: f.kind,
    message: f.message,
  });
}

function describeFailure(f) {
  const who = f.name === null ? `microthread ${f.id}` : `microthread ${f.id} (${f.name})`;
  return `${who} failed (${f.kind}): ${f.message}`;
}

/** The base class of every error of this SDK. */
export class WeftError extends Error {
  constructor(message, value) {
    super(message);
    // A refused send or spawn gives its value back: its endpoints are live again.
    if (arguments.length > 1) this.value = value;
  }
}

/** The channel is closed: every receiver is gone (a send), or every sender is gone and its buffer is drained (a receive). */
export class Closed extends WeftError {}
/** `trySend`: the channel is full (on a rendezvous channel: no receiver waits). */
export class Full extends WeftError {}
/** `tryRecv`: nothing to receive now. */
export class Empty extends WeftError {}
/** The operation's timeout ran out. */
export class Timeout extends WeftError {}
/** This microthread was cancelled: every blocking call of it fails so, and its cleanup runs. */
export class Cancelled extends WeftError {}
/** The value is over the program's message size limit. */
export class TooLarge extends WeftError {}
/** A limit of the run was reached: its microthreads, or its channels; `.limit` is that maximum. */
export class LimitReached extends WeftError {
  constructor(message, limit, ...value) {
    super(message, ...value);
    this.limit = limit;
  }
}
/** A microthread failed: `.failure` says how (`kind`, `message`, `id`, `name`). */
export class Failed extends WeftError {
  constructor(failure, ...value) {
    super(describeFailure(failure), ...value);
    this.failure = failure;
  }
}
/** A network operation failed: `.kind` is the WIT's `net-error` case, or for an I/O error its `io-error-kind`. */
export class NetError extends WeftError {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.kind = kind;
  }
}

/**
 * A spawn on another node was refused: the node is not a live node of the cluster,
 * or it went down before it answered, or this program runs in no cluster (the
 * message says which).
 */
export class NoSuchNode extends WeftError {}

// Their names, which a bundler's renaming must not change.
for (const [name, c] of Object.entries({ WeftError, Closed, Full, Empty, Timeout, Cancelled, TooLarge, LimitReached, Failed, NetError, NoSuchNode })) {
  Object.defineProperty(c.prototype, 'name', { value: name, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------
// message: a value to and from a WIT `message`. The codec lives here alone, so
// that it can be swapped (for the cross-language CBOR codec, later).
//
// A value is JSON-compatible (null, booleans, numbers, strings, arrays, plain
// objects), plus undefined, BigInt and Uint8Array, with endpoints (a Sender, a
// Receiver, a TcpListener, a TcpStream) anywhere inside: they travel beside the
// bytes, and move. The bytes: one tag byte per value, then
//   0 undefined, 1 null, 2 false, 3 true,
//   4 integer (|n| < 2^31): zigzag varint,   5 other number: float64 little-endian,
//   6 string: varint byte length, UTF-8,     7 Uint8Array: varint length, bytes,
//   8 array: varint count, the items,        9 object: varint count, (string, value) pairs,
//   10 endpoint: varint index into the message's endpoints,
//   11 BigInt: 0 or 1 (negative), varint magnitude.
// A varint is unsigned LEB128. An empty message is undefined.

const T_UNDEFINED = 0, T_NULL = 1, T_FALSE = 2, T_TRUE = 3, T_INT = 4, T_FLOAT = 5, T_STRING = 6;
const T_BYTES = 7, T_ARRAY = 8, T_OBJECT = 9, T_ENDPOINT = 10, T_BIGINT = 11;
const SMALL = 24;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  constructor() {
    this.buf = new Uint8Array(64);
    this.len = 0;
  }
  room(n) {
    if (this.len + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
  }
  byte(b) {
    this.room(1);
    this.buf[this.len++] = b;
  }
  varint(n) {
    // n: a non-negative integer Number (exact), or a BigInt.
    if (typeof n === 'bigint') {
      while (n >= 0x80n) {
        this.byte(Number(n & 0x7fn) | 0x80);
        n >>= 7n;
      }
      this.byte(Number(n));
      return;
    }
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }
  bytes(b) {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  float(x) {
    this.room(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, x, true);
    this.len += 8;
  }
  done() {
    return this.buf.subarray(0, this.len);
  }
}

/** Whether `v` is an end or a socket of this SDK, which travels beside the bytes. */
function isEndpoint(v) {
  return v instanceof Sender || v instanceof Receiver || v instanceof TcpListener || v instanceof TcpStream;
}

function encodeValue(w, v, ends, path, seen) {
  switch (typeof v) {
    case 'undefined':
      return w.byte(T_UNDEFINED);
    case 'boolean':
      return w.byte(v ? T_TRUE : T_FALSE);
    case 'number':
      if (Number.isInteger(v) && Math.abs(v) < 2 ** 31 && !Object.is(v, -0)) {
        w.byte(T_INT);
        return w.varint(v >= 0 ? v * 2 : -v * 2 - 1);
      }
      w.byte(T_FLOAT);
      return w.float(v);
    case 'string': {
      const b = utf8.encode(v);
      w.byte(T_STRING);
      w.varint(b.length);
      return w.bytes(b);
    }
    case 'bigint':
      w.byte(T_BIGINT);
      w.byte(v < 0n ? 1 : 0);
      return w.varint(v < 0n ? -v : v);
    case 'object':
      break;
    default:
      throw new TypeError(`cannot send ${path}: a ${typeof v} is not a value (values are JSON-compatible, plus undefined, BigInt, Uint8Array and endpoints)`);
  }
  if (v === null) return w.byte(T_NULL);
  if (isEndpoint(v)) {
    v.live(); // a closed or moved endpoint cannot travel
    let index = ends.get(v);
    if (index === undefined) {
      index = ends.size;
      ends.set(v, index);
    }
    w.byte(T_ENDPOINT);
    return w.varint(index);
  }
  if (isBytes(v)) {
    w.byte(T_BYTES);
    w.varint(v.length);
    return w.bytes(v);
  }
  if (seen.has(v)) throw new TypeError(`cannot send ${path}: the value is cyclic`);
  seen.add(v);
  if (Array.isArray(v)) {
    w.byte(T_ARRAY);
    w.varint(v.length);
    for (let i = 0; i < v.length; i++) encodeValue(w, v[i], ends, `${path}[${i}]`, seen);
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (v.constructor && v.constructor.name) || 'object';
      throw new TypeError(`cannot send ${path}: a ${kind} is not a plain object (values are JSON-compatible, plus undefined, BigInt, Uint8Array and endpoints)`);
    }
    const keys = Object.keys(v);
    w.byte(T_OBJECT);
    w.varint(keys.length);
    for (const k of keys) {
      const b = utf8.encode(k);
      w.varint(b.length);
      w.bytes(b);
      encodeValue(w, v[k], ends, `${path}.${k}`, seen);
    }
  }
  seen.delete(v);
}

/**
 * Encode `value` as a WIT message. Its endpoints are taken out of their wrappers
 * (they move with the message); `restore` puts those a refused message brings back.
 * Returns `{ message, wrappers }`.
 */
function encode(value, codec) {
  const w = new Writer();
  const ends = new Map();
  let bytes;
  if (codec === undefined) {
    encodeValue(w, value, ends, 'the value', new Set());
    bytes = w.done();
  } else {
    bytes = codec.encode(value);
  }
  if (ends.size === 0 && bytes.length <= SMALL) {
    const words = [0n, 0n, 0n];
    for (let i = 0; i < bytes.length; i++) {
      words[i >> 3] |= BigInt(bytes[i]) << BigInt((i & 7) * 8);
    }
    return { message: { tag: 'small', val: { len: bytes.length, w0: words[0], w1: words[1], w2: words[2] } }, wrappers: [] };
  }
  const wrappers = [...ends.keys()];
  const endpoints = wrappers.map((e) => ({ tag: e.endpointTag, val: e.take() }));
  return { message: { tag: 'large', val: { bytes: bytes.slice(), endpoints } }, wrappers };
}

/** Give the endpoints of a message that came back (a refused send or spawn) to the wrappers they left. */
function restore(wrappers, message) {
  if (message === undefined || message.tag !== 'large') return;
  const back = message.val.endpoints;
  for (let i = 0; i < back.length && i < wrappers.length; i++) wrappers[i].give(back[i].val);
}

/** The value a message carries; its endpoints are wrapped, and belong to the caller. */
function decode(message, codec) {
  let bytes;
  let endpoints = [];
  if (message.tag === 'small') {
    const s = message.val;
    bytes = new Uint8Array(s.len);
    const words = [s.w0, s.w1, s.w2];
    for (let i = 0; i < s.len; i++) bytes[i] = Number((words[i >> 3] >> BigInt((i & 7) * 8)) & 0xffn);
  } else {
    bytes = ours(message.val.bytes);
    endpoints = message.val.endpoints.map(wrapEndpoint);
  }
  if (codec !== undefined) return codec.decode(bytes);
  if (bytes.length === 0) return undefined;
  const r = { bytes, at: 0, endpoints };
  const v = decodeValue(r);
  if (r.at !== bytes.length) throw new TypeError(`a message has ${bytes.length - r.at} bytes past its value: not this SDK's encoding`);
  return v;
}

function wrapEndpoint(e) {
  switch (e.tag) {
    case 'sender':
      return new Sender(e.val);
    case 'receiver':
      return new Receiver(e.val);
    case 'tcp-listener':
      return new TcpListener(e.val);
    case 'tcp-stream':
      return new TcpStream(e.val);
    default:
      throw new TypeError(`a message carries an endpoint of unknown kind ${e.tag}`);
  }
}

function readByte(r) {
  if (r.at >= r.bytes.length) throw new TypeError('a message ends inside its value: not this SDK\'s encoding');
  return r.bytes[r.at++];
}

function readVarint(r) {
  let n = 0;
  let scale = 1;
  for (;;) {
    const b = readByte(r);
    n += (b & 0x7f) * scale;
    if (b < 0x80) return n;
    scale *= 0x80;
  }
}

function readBigVarint(r) {
  let n = 0n;
  let shift = 0n;
  for (;;) {
    const b = readByte(r);
    n |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return n;
    shift += 7n;
  }
}

function readBytes(r, n) {
  if (r.at + n > r.bytes.length) throw new TypeError('a message ends inside its value: not this SDK\'s encoding');
  const b = r.bytes.slice(r.at, r.at + n);
  r.at += n;
  return b;
}

function decodeValue(r) {
  const tag = readByte(r);
  switch (tag) {
    case T_UNDEFINED:
      return undefined;
    case T_NULL:
      return null;
    case T_FALSE:
      return false;
    case T_TRUE:
      return true;
    case T_INT: {
      const z = readVarint(r);
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
    case T_FLOAT: {
      const b = readBytes(r, 8);
      return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
    }
    case T_STRING:
      return fromUtf8.decode(readBytes(r, readVarint(r)));
    case T_BYTES:
      return readBytes(r, readVarint(r));
    case T_ARRAY: {
      const n = readVarint(r);
      const a = new Array(n);
      for (let i = 0; i < n; i++) a[i] = decodeValue(r);
      return a;
    }
    case T_OBJECT: {
      const n = readVarint(r);
      const o = {};
      for (let i = 0; i < n; i++) {
        const k = fromUtf8.decode(readBytes(r, readVarint(r)));
        Object.defineProperty(o, k, { value: decodeValue(r), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
    case T_ENDPOINT: {
      const i = readVarint(r);
      if (i >= r.endpoints.length) throw new TypeError(`a message names endpoint ${i} of ${r.endpoints.length}`);
      return r.endpoints[i];
    }
    case T_BIGINT: {
      const negative = readByte(r) === 1;
      const n = readBigVarint(r);
      return negative ? -n : n;
    }
    default:
      throw new TypeError(`a message has an unknown tag ${tag}: not this SDK's encoding`);
  }
}

// ---------------------------------------------------------------------------
// entry: the registry of spawnable functions, `main`, and how a microthread
// starts and fails.
//
// `spawn` names a function by two numbers (WIT `entry`): trampoline 0, and the
// function's index in the registry. The registry is filled at the module's top
// level, which componentize-js runs once, ahead of time (Wizer), so every instance
// of the component starts with the same registry.

const TRAMPOLINE = 0;
const registry = [];
let started = false;
/** What this instance runs: 'main', or 'entry' (a spawned function). */
let role = null;

/**
 * Register `fn` as a function that `spawn` can start; returns `fn`. Call it at the
 * top level of a module: a microthread starts in a fresh instance of the program,
 * which knows only what the top level registered.
 */
export function entry(fn) {
  if (typeof fn !== 'function') throw new TypeError(`weft.entry: expected a function, got ${typeof fn}`);
  if (started) {
    throw new WeftError(
      `weft.entry(${fn.name || 'anonymous function'}): too late, the program is running: ` +
        'register spawnable functions at the top level of a module, where every instance of the program registers them alike',
    );
  }
  if (!registry.includes(fn)) registry.push(fn);
  return fn;
}

function entryIndex(fn, what) {
  if (typeof fn !== 'function') throw new TypeError(`${what}: expected a function registered with weft.entry, got ${typeof fn}`);
  const index = registry.indexOf(fn);
  if (index < 0) {
    const name = fn.name || 'this function';
    throw new TypeError(
      `${what}: ${name} is not registered: register it with weft.entry(${fn.name || 'fn'}) at the top level of its module ` +
        '(a microthread starts in a fresh instance of the program, which knows only the functions its top level registered)',
    );
  }
  return index;
}

/**
 * A stack with the bundle's lines turned into the program's own files and lines,
 * by the map `weft build` appends to the bundle.
 */
function programStack(stack) {
  // The frames below the program's (the SDK's start, the bindings) say nothing.
  const frames = stack.split('\n');
  const start = frames.findIndex((f) => /^(async\*)?__run(Main|Entry)@/.test(f));
  const end = start > 0 ? start : frames.length;
  // Nor do the SDK's own frames above the program's (where the error was made).
  let first = 0;
  while (first < end - 1 && /^[^@]*@weft\.js:/.test(programFrame(frames[first]))) first++;
  stack = frames.slice(first, end).join('\n');
  return programFrame(stack);
}

/** `text` with the bundle's lines turned into the program's files and lines. */
function programFrame(text) {
  const map = globalThis[Symbol.for('weft.lines')];
  if (map === undefined) return text;
  return text.replace(/[^@\s]*\.bundle\.js:(\d+)(:\d+)?/g, (whole, line) => {
    const n = Number(line);
    for (const [first, count, source, sourceLine] of map.runs) {
      if (n >= first && n < first + count) return `${map.sources[source]}:${sourceLine + (n - first)}`;
    }
    return whole;
  });
}

/** Whether `e` is an Error (of any realm: the bindings' errors are of another). */
function isError(e) {
  return e instanceof Error || Object.prototype.toString.call(e) === '[object Error]';
}

function describeThrown(e) {
  if (isError(e)) {
    const stack = typeof e.stack === 'string' && e.stack.length > 0 ? `\n${programStack(e.stack.trimEnd())}` : '';
    return `${String(e)}${stack}`;
  }
  let text;
  try {
    text = typeof e === 'string' ? e : `${String(e)} ${JSON.stringify(e)}`;
  } catch {
    text = String(e);
  }
  const kind = e !== null && typeof e === 'object' && e.constructor ? `${e.constructor.name} ` : '';
  return `uncaught exception: ${kind}${text}`;
}

/**
 * End this microthread failed, with kind `panic` and the message of `e` (the JS
 * error's message and stack). Does not return.
 */
function fail(e) {
  const message = describeThrown(e);
  thread.setPanicMessage(message);
  // JavaScript cannot trap; the host traps a call that breaks the WIT's contract,
  // and a small message of more than 24 bytes does (the argument is checked before
  // anything is spawned). The failure then carries the panic message above.
  attempt(() => thread.spawn(TRAMPOLINE, 0, { tag: 'small', val: { len: SMALL + 1, w0: 0n, w1: 0n, w2: 0n } }, undefined, false));
  // Only a message size limit under 25 bytes refuses it before the check. An
  // exception escaping the `entry` export aborts the engine, a trap (the failure
  // keeps the message above); one escaping `wasi:cli/run` would be a quiet exit
  // code 1: a failed main ends the program with 134 instead, as weft's own does.
  if (role === 'main') {
    console.error(`weft: main failed: ${message}`);
    thread.exit(134);
  }
  throw new Error(message);
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

/**
 * What the program's `wasi:cli/run` export calls (the wrapper `weft build` makes):
 * `main(args)`, args being the arguments after the program. Not for programs.
 */
export function __runMain(main) {
  started = true;
  role = 'main';
  if (typeof main !== 'function') {
    fail(new TypeError('the program exports no function main: add `export function main(args) { ... }` to the file given to weft build'));
  }
  let r;
  try {
    r = main(getArguments().slice(1));
  } catch (e) {
    fail(e);
  }
  if (isThenable(r)) {
    return r.then(
      () => undefined,
      (e) => fail(e),
    );
  }
  return undefined;
}

/** What the program's `entry` export calls: start the registered function `fn`. Not for programs. */
export function __runEntry(trampoline, fn, argument) {
  started = true;
  role = 'entry';
  let r;
  try {
    if (trampoline !== TRAMPOLINE || fn >= registry.length) {
      throw new Error(
        `entry (${trampoline}, ${fn}) names no function registered with weft.entry (there are ${registry.length}): ` +
          'was it spawned by another program?',
      );
    }
    r = registry[fn](decode(argument));
  } catch (e) {
    fail(e);
  }
  const result = (v) => {
    try {
      return encode(v).message;
    } catch (e) {
      return fail(e);
    }
  };
  if (isThenable(r)) return r.then(result, (e) => fail(e));
  return result(r);
}

// ---------------------------------------------------------------------------
// cluster: the nodes of the cluster (`weft run --cluster`), to spawn on.

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
function placement(options, what) {
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

// ---------------------------------------------------------------------------
// thread: spawning, joining, sleeping, yielding, atomic sections, identity.

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

function spawnWith(fn, arg, options, detached, what) {
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

// ---------------------------------------------------------------------------
// channel: the ends, timers, the application's channels.

/** What the ends and sockets share: the handle they hold, until it moves or closes. */
class Handle {
  /** `codec`: a channel end's (undefined: the SDK's own). */
  constructor(inner, codec) {
    this.inner = inner;
    this.gone = null;
    this.codec = codec;
  }
  /** The handle, or an error saying where it went. */
  live() {
    if (this.inner === null) {
      throw new WeftError(`this ${this.kind} was ${this.gone}: it can no longer be used`);
    }
    return this.inner;
  }
  /** The handle, leaving this wrapper (it moves into a message). */
  take() {
    const h = this.live();
    this.inner = null;
    this.gone = 'moved into a message';
    return h;
  }
  /** A handle coming back (a refused message). */
  give(h) {
    this.inner = h;
    this.gone = null;
  }
  /** Drop it now (the handle goes at the microthread's end otherwise). Closing twice does nothing. */
  close() {
    if (this.inner !== null) {
      const h = this.inner;
      this.inner = null;
      this.gone = 'closed';
      h[Symbol.dispose]();
    }
  }
  [Symbol.dispose]() {
    this.close();
  }
}

function sendError(e, value, wrappers, what) {
  const back = e.tag === 'disconnected' ? e.val[0] : e.val;
  restore(wrappers, back);
  switch (e.tag) {
    case 'closed':
      return new Closed(`${what}: the channel is closed: every receiver is gone`, value);
    case 'full':
      return new Full(`${what}: the channel is full`, value);
    case 'timeout':
      return new Timeout(`${what}: the time ran out`, value);
    case 'too-large':
      return new TooLarge(`${what}: the value is over the message size limit`, value);
    case 'cancelled':
      return new Cancelled(`${what}: this microthread was cancelled`, value);
    case 'disconnected':
      return new Failed(failureOf(e.val[1]), value);
    default:
      return new WeftError(`${what}: ${e.tag}`, value);
  }
}

function recvError(e, what) {
  switch (e.tag) {
    case 'closed':
      return new Closed(`${what}: the channel is closed: every sender is gone`);
    case 'empty':
      return new Empty(`${what}: nothing to receive now`);
    case 'timeout':
      return new Timeout(`${what}: the time ran out`);
    case 'failed':
      return new Failed(failureOf(e.val));
    case 'cancelled':
      return new Cancelled(`${what}: this microthread was cancelled`);
    default:
      return new WeftError(`${what}: ${e.tag}`);
  }
}

/** The sending end of a channel. */
export class Sender extends Handle {
  /**
   * Send `value` (its endpoints move), waiting (only this microthread) while the
   * channel is full, at most `options.timeout` ms if given. Throws Closed, Timeout,
   * Cancelled, TooLarge, with the value given back as `.value`.
   */
  send(value, options) {
    const timeout = timeoutOf(options, 'send');
    const h = this.live();
    const { message, wrappers } = encode(value, this.codec);
    const r = attempt(() => (timeout === undefined ? h.send(message) : h.sendTimeout(message, timeout)));
    if (r.isErr) throw sendError(r.err, value, wrappers, 'send');
  }
  /** Send only if that needs no waiting; throws Full (or Closed, TooLarge) with `.value`. */
  trySend(value) {
    const h = this.live();
    const { message, wrappers } = encode(value, this.codec);
    const r = attempt(() => h.trySend(message));
    if (r.isErr) throw sendError(r.err, value, wrappers, 'trySend');
  }
  /** Another sender of the same channel. */
  clone() {
    return new Sender(this.live().clone(), this.codec);
  }
}

/** The receiving end of a channel; iterating it receives until the channel is closed. */
export class Receiver extends Handle {
  /**
   * Receive, waiting (only this microthread) until a value arrives, at most
   * `options.timeout` ms if given. Throws Closed, Timeout, Cancelled, Failed (a
   * producer failed).
   */
  recv(options) {
    const timeout = timeoutOf(options, 'recv');
    const h = this.live();
    const r = attempt(() => (timeout === undefined ? h.recv() : h.recvTimeout(timeout)));
    if (r.isErr) throw recvError(r.err, 'recv');
    return decode(r.ok, this.codec);
  }
  /** Receive only if that needs no waiting; throws Empty (or Closed, Failed). */
  tryRecv() {
    const h = this.live();
    const r = attempt(() => h.tryRecv());
    if (r.isErr) throw recvError(r.err, 'tryRecv');
    return decode(r.ok, this.codec);
  }
  /** Another receiver of the same channel. */
  clone() {
    return new Receiver(this.live().clone(), this.codec);
  }
  *[Symbol.iterator]() {
    for (;;) {
      let v;
      try {
        v = this.recv();
      } catch (e) {
        if (e instanceof Closed) return;
        throw e;
      }
      yield v;
    }
  }
}

function openError(e, what) {
  switch (e.tag) {
    case 'capacity-too-large':
      return new LimitReached(`${what}: the capacity is over the program's limit of ${e.val}`, e.val);
    case 'too-many-channels':
      return new LimitReached(`${what}: the run already has its maximum of ${e.val} open channels`, e.val);
    default:
      return new WeftError(`${what}: ${e.tag}`);
  }
}

/**
 * Open a channel of `capacity` buffered values (0, the default: rendezvous). Returns
 * `[sender, receiver]`. `options.codec`: how values are encoded (`weft.CBOR` for a
 * channel shared with other languages; by default the SDK's own, which carries
 * endpoints).
 */
export function channel(capacity = 0, options) {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > 0xffffffff) {
    throw new TypeError(`channel: a capacity is an integer, at least 0 (got ${String(capacity)})`);
  }
  const r = attempt(() => chan.open(capacity));
  if (r.isErr) throw openError(r.err, 'channel');
  const codec = codecOf(options, 'channel');
  return [new Sender(r.ok[0], codec), new Receiver(r.ok[1], codec)];
}

/** A receiver that gets one undefined after `ms` milliseconds (for select). */
export function after(ms) {
  const r = attempt(() => chan.timer(nanos(ms, 'after'), undefined));
  if (r.isErr) throw openError(r.err, 'after');
  return new Receiver(r.ok);
}

/** A receiver that gets an undefined every `ms` milliseconds (a tick that finds the previous one unread is dropped). */
export function tick(ms) {
  const every = nanos(ms, 'tick');
  if (every === 0n) throw new TypeError('tick: the period is more than 0 ms');
  const r = attempt(() => chan.timer(every, every));
  if (r.isErr) throw openError(r.err, 'tick');
  return new Receiver(r.ok);
}

/**
 * The receiver the application gave the run under `name`, or null (the first call
 * takes it). `options.codec`: `weft.CBOR` for the application's CBOR channels
 * (`weft::Codec::Cbor`).
 */
export function hostReceiver(name, options) {
  const codec = codecOf(options, 'hostReceiver');
  const h = chan.hostReceiver(name);
  return h === undefined ? null : new Receiver(h, codec);
}

/** The sender the application gave the run under `name`, or null (the first call takes it); `options.codec` as for hostReceiver. */
export function hostSender(name, options) {
  const codec = codecOf(options, 'hostSender');
  const h = chan.hostSender(name);
  return h === undefined ? null : new Sender(h, codec);
}

function codecOf(options, what) {
  const codec = options?.codec;
  if (codec !== undefined && codec !== CBOR) throw new TypeError(`${what}: options.codec is weft.CBOR, or left out`);
  return codec;
}

// ---------------------------------------------------------------------------
// CBOR (RFC 8949): the self-describing codec shared with the other languages' SDKs
// and the application (`weft::Codec::Cbor`). null, undefined, booleans, numbers
// (integers up to 64 bits, as BigInt past 2^53), strings, Uint8Array, arrays,
// plain objects (string keys) and Maps; no endpoints.

function cborHead(out, major, n) {
  const m = major << 5;
  const big = BigInt(n);
  if (big < 24n) out.push(m | Number(big));
  else if (big < 0x100n) out.push(m | 24, Number(big));
  else if (big < 0x10000n) out.push(m | 25, Number(big >> 8n), Number(big & 0xffn));
  else if (big < 0x100000000n) {
    out.push(m | 26);
    for (let s = 24n; s >= 0n; s -= 8n) out.push(Number((big >> s) & 0xffn));
  } else if (big < 1n << 64n) {
    out.push(m | 27);
    for (let s = 56n; s >= 0n; s -= 8n) out.push(Number((big >> s) & 0xffn));
  } else throw new RangeError(`CBOR: ${n} does not fit 64 bits`);
}

function cborPut(out, v) {
  if (v === null) out.push(0xf6);
  else if (v === undefined) out.push(0xf7);
  else if (v === false) out.push(0xf4);
  else if (v === true) out.push(0xf5);
  else if (typeof v === 'bigint') v >= 0n ? cborHead(out, 0, v) : cborHead(out, 1, -1n - v);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) v >= 0 ? cborHead(out, 0, v) : cborHead(out, 1, -1 - v);
    else {
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, v);
      out.push(0xfb, ...new Uint8Array(b.buffer));
    }
  } else if (typeof v === 'string') {
    const b = utf8.encode(v);
    cborHead(out, 3, b.length);
    for (const x of b) out.push(x);
  } else if (v instanceof Uint8Array) {
    cborHead(out, 2, v.length);
    for (const x of v) out.push(x);
  } else if (Array.isArray(v)) {
    cborHead(out, 4, v.length);
    for (const x of v) cborPut(out, x);
  } else if (v instanceof Map) {
    cborHead(out, 5, v.size);
    for (const [k, x] of v) {
      cborPut(out, k);
      cborPut(out, x);
    }
  } else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const entries = Object.entries(v);
    cborHead(out, 5, entries.length);
    for (const [k, x] of entries) {
      cborPut(out, k);
      cborPut(out, x);
    }
  } else {
    throw new TypeError(`CBOR carries null, booleans, numbers, strings, Uint8Array, arrays, plain objects and Maps, not ${Object.prototype.toString.call(v)}`);
  }
}

function cborGet(r) {
  if (r.at >= r.bytes.length) throw new TypeError('CBOR: the message ends inside a value');
  const first = r.bytes[r.at++];
  const major = first >> 5;
  const info = first & 0x1f;
  if (major === 7) {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    if (info === 23) return undefined;
    const size = { 25: 2, 26: 4, 27: 8 }[info];
    if (size === undefined) throw new TypeError(`CBOR: simple value ${info} is not supported`);
    if (r.at + size > r.bytes.length) throw new TypeError('CBOR: the message ends inside a float');
    const d = new DataView(r.bytes.buffer, r.bytes.byteOffset + r.at, size);
    r.at += size;
    return size === 2 ? halfFloat(d.getUint16(0)) : size === 4 ? d.getFloat32(0) : d.getFloat64(0);
  }
  if (info === 31) throw new TypeError('CBOR: indefinite lengths are not supported');
  let n;
  if (info < 24) n = BigInt(info);
  else if (info <= 27) {
    const size = 1 << (info - 24);
    if (r.at + size > r.bytes.length) throw new TypeError('CBOR: the message ends inside a length');
    n = 0n;
    for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(r.bytes[r.at++]);
  } else throw new TypeError(`CBOR: reserved additional information ${info}`);
  const small = (x) => (x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
  switch (major) {
    case 0:
      return small(n);
    case 1:
      return small(-1n - n);
    case 2:
    case 3: {
      const len = Number(n);
      if (r.at + len > r.bytes.length) throw new TypeError('CBOR: the message ends inside a string');
      const b = r.bytes.slice(r.at, r.at + len);
      r.at += len;
      return major === 2 ? b : fromUtf8.decode(b);
    }
    case 4:
      return Array.from({ length: Number(n) }, () => cborGet(r));
    case 5: {
      const pairs = Array.from({ length: Number(n) }, () => [cborGet(r), cborGet(r)]);
      return pairs.every(([k]) => typeof k === 'string') ? Object.fromEntries(pairs) : new Map(pairs);
    }
    default:
      // A tag: its value is taken as it is.
      return cborGet(r);
  }
}

function halfFloat(h) {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** The CBOR codec: `channel(n, { codec: weft.CBOR })`, `hostReceiver(name, { codec: weft.CBOR })`. */
export const CBOR = Object.freeze({
  name: 'cbor',
  encode(value) {
    const out = [];
    cborPut(out, value);
    return Uint8Array.from(out);
  },
  decode(bytes) {
    const r = { bytes, at: 0 };
    const v = cborGet(r);
    if (r.at !== bytes.length) throw new TypeError(`CBOR: ${bytes.length - r.at} bytes left over after the value`);
    return v;
  },
});

// ---------------------------------------------------------------------------
// net: TCP listeners and streams on the host's reactor (granted with
// `weft run --listen` / `--connect`).

function netError(e, what) {
  switch (e.tag) {
    case 'timed-out':
      return new Timeout(`${what}: the time ran out`);
    case 'cancelled':
      return new Cancelled(`${what}: this microthread was cancelled`);
    case 'io':
      return new NetError(e.val[0], `${what}: ${e.val[1]}`);
    case 'too-many-sockets':
      return new NetError(e.tag, `${what}: the run already has its maximum of ${e.val} open sockets`);
    default:
      return new NetError(e.tag, `${what}: ${e.val}`);
  }
}

/** A socket listening for TCP connections; iterating it accepts until this microthread is cancelled. */
export class TcpListener extends Handle {
  /** The address it listens on (with the port the system chose, for port 0). */
  localAddress() {
    return this.live().localAddress();
  }
  /** Wait (only this microthread) for a connection, at most `options.timeout` ms if given. */
  accept(options) {
    const timeout = timeoutOf(options, 'accept');
    const h = this.live();
    const r = attempt(() => h.accept(timeout));
    if (r.isErr) throw netError(r.err, 'accept');
    return new TcpStream(r.ok);
  }
  /** Another handle to the same listener. */
  clone() {
    return new TcpListener(this.live().share());
  }
  *[Symbol.iterator]() {
    for (;;) {
      let s;
      try {
        s = this.accept();
      } catch (e) {
        if (e instanceof Cancelled) return;
        throw e;
      }
      yield s;
    }
  }
}

const SHUTDOWN = new Set(['read', 'write', 'both']);

/** A TCP connection. */
export class TcpStream extends Handle {
  localAddress() {
    return this.live().localAddress();
  }
  peerAddress() {
    return this.live().peerAddress();
  }
  /** Read up to `max` bytes (default 65536), waiting until some arrive: a Uint8Array, empty at the end of the stream. */
  read(max = 65536, options) {
    if (!Number.isInteger(max) || max < 1 || max > 0xffffffff) throw new TypeError(`read: max is an integer, at least 1 (got ${String(max)})`);
    const timeout = timeoutOf(options, 'read');
    const h = this.live();
    const r = attempt(() => h.read(max, timeout));
    if (r.isErr) throw netError(r.err, 'read');
    return ours(r.ok);
  }
  /** Write some of `data` (a Uint8Array, or a string as UTF-8): how many bytes the socket took. */
  write(data, options) {
    const bytes = typeof data === 'string' ? utf8.encode(data) : data;
    if (!isBytes(bytes)) throw new TypeError('write: data is a Uint8Array or a string');
    const timeout = timeoutOf(options, 'write');
    const h = this.live();
    const r = attempt(() => h.write(bytes, timeout));
    if (r.isErr) throw netError(r.err, 'write');
    return r.ok;
  }
  /** Write all of `data`, waiting as needed. */
  writeAll(data, options) {
    let bytes = typeof data === 'string' ? utf8.encode(data) : data;
    while (bytes.length > 0) bytes = bytes.subarray(this.write(bytes, options));
  }
  /** Close one direction ('read', 'write') or both. */
  shutdown(how = 'both') {
    if (!SHUTDOWN.has(how)) throw new TypeError(`shutdown: 'read', 'write' or 'both' (got ${String(how)})`);
    const r = attempt(() => this.live().shutdown(how));
    if (r.isErr) throw netError(r.err, 'shutdown');
  }
  /** Turn Nagle's algorithm off (true) or on. */
  setNodelay(on) {
    const r = attempt(() => this.live().setNodelay(Boolean(on)));
    if (r.isErr) throw netError(r.err, 'setNodelay');
  }
  /** Another handle to the same connection. */
  clone() {
    return new TcpStream(this.live().share());
  }
}

/** Listen on `address` (e.g. '127.0.0.1:0'). */
function bind(address) {
  const r = attempt(() => witNet.bind(address));
  if (r.isErr) throw netError(r.err, `bind ${address}`);
  return new TcpListener(r.ok);
}

/** Connect to `address`, waiting at most `options.timeout` ms if given. */
function connect(address, options) {
  const timeout = timeoutOf(options, 'connect');
  const r = attempt(() => witNet.connect(address, timeout));
  if (r.isErr) throw netError(r.err, `connect ${address}`);
  return new TcpStream(r.ok);
}

export const net = Object.freeze({ bind, connect, TcpListener, TcpStream });

// Their names, and their case of the WIT's `endpoint`.
for (const [kind, c, endpointTag] of [
  ['Sender', Sender, 'sender'],
  ['Receiver', Receiver, 'receiver'],
  ['TcpListener', TcpListener, 'tcp-listener'],
  ['TcpStream', TcpStream, 'tcp-stream'],
]) {
  Object.defineProperty(c.prototype, 'kind', { value: kind });
  Object.defineProperty(c.prototype, 'endpointTag', { value: endpointTag });
}

// ---------------------------------------------------------------------------
// select: one of several channel operations, socket readiness and timers.

/**
 * Complete exactly one of `ops`, each one of
 * `{ recv: receiver }`, `{ send: sender, value }`, `{ accept: listener }`,
 * `{ readable: stream }`, `{ writable: stream }` (a timer is a receiver: `after`,
 * `tick`), waiting (only this microthread), at most `options.timeout` ms if given.
 * Among several ready, one is chosen at random. Returns `{ index, kind }` with kind
 * 'received' (and `value`), 'sent', 'closed', 'failed' (and `failure`) or 'ready'.
 * Throws Timeout, Cancelled, TooLarge (`.index`). A send that did not complete
 * keeps its value's endpoints.
 */
export function select(ops, options) {
  return selectWith(ops, timeoutOf(options, 'select'), true, options);
}

/** Like select, without waiting: null if no operation is ready. */
export function trySelect(ops) {
  return selectWith(ops, undefined, false, undefined);
}

function selectWith(ops, timeout, block, options) {
  if (!Array.isArray(ops) || ops.length === 0) throw new TypeError('select: ops is a non-empty array');
  const wrappers = [];
  const wit = [];
  try {
    for (const op of ops) {
      if (op.recv instanceof Receiver) {
        wit.push({ tag: 'recv', val: op.recv.live() });
      } else if (op.send instanceof Sender) {
        const h = op.send.live();
        const e = encode(op.value, op.send.codec);
        wit.push({ tag: 'send', val: [h, e.message] });
        wrappers[wit.length - 1] = e.wrappers;
      } else if (op.accept instanceof TcpListener) {
        wit.push({ tag: 'accept', val: op.accept.live() });
      } else if (op.readable instanceof TcpStream) {
        wit.push({ tag: 'readable', val: op.readable.live() });
      } else if (op.writable instanceof TcpStream) {
        wit.push({ tag: 'writable', val: op.writable.live() });
      } else {
        throw new TypeError(
          `select: operation ${wit.length} is none of { recv: Receiver }, { send: Sender, value }, ` +
            '{ accept: TcpListener }, { readable: TcpStream }, { writable: TcpStream }',
        );
      }
    }
  } catch (e) {
    // The sends encoded so far give their endpoints back.
    wit.forEach((op, i) => op.tag === 'send' && restore(wrappers[i], op.val[1]));
    throw e;
  }
  const [selected, unsent] = chan.select(wit, timeout, block);
  unsent.forEach((m, i) => m !== undefined && restore(wrappers[i], m));
  const s = selected;
  switch (s.tag) {
    case 'received':
      return { index: s.val[0], kind: 'received', value: decode(s.val[1], ops[s.val[0]].recv.codec) };
    case 'sent':
      return { index: s.val, kind: 'sent' };
    case 'closed':
      return { index: s.val, kind: 'closed' };
    case 'failed':
      return { index: s.val[0], kind: 'failed', failure: failureOf(s.val[1]) };
    case 'ready':
      return { index: s.val, kind: 'ready' };
    case 'timeout':
      throw new Timeout(`select: no operation completed within ${options.timeout} ms`);
    case 'would-block':
      return null;
    case 'too-large': {
      const e = new TooLarge(`select: the value of operation ${s.val} is over the message size limit`);
      e.index = s.val;
      throw e;
    }
    case 'cancelled':
      throw new Cancelled('select: this microthread was cancelled');
    default:
      throw new WeftError(`select: ${s.tag}`);
  }
}

// ---------------------------------------------------------------------------
// patterns and names: generate, parallelMap (built from spawn and channels), and
// the run's registry of named senders.

/**
 * Run `producer(sender)` (an entry) in a new microthread and return the receiving
 * end of its channel: a lazy stream of what it sends, which ends when the producer
 * returns. If it fails, the reader's recv throws Failed. `options.capacity`: the
 * channel's (default 0).
 */
export function generate(producer, options) {
  const [tx, rx] = channel(options?.capacity ?? 0);
  spawnWith(producer, tx, undefined, false, 'generate');
  return rx;
}

/**
 * `items.map(fn)`, each call in its own microthread (`fn` is an entry), at most
 * `options.concurrency` at once (default: all); the results in the order of the
 * items. If a call fails, no further ones start, those running are joined, and
 * the first failure is thrown.
 */
export function parallelMap(fn, items, options) {
  const list = [...items];
  const concurrency = options?.concurrency ?? Math.max(1, list.length);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('parallelMap: options.concurrency is an integer, 1 or more');
  const results = new Array(list.length);
  const running = [];
  let next = 0;
  let error = null;
  while (next < list.length || running.length > 0) {
    while (error === null && next < list.length && running.length < concurrency) {
      running.push([next, spawnWith(fn, list[next], undefined, false, 'parallelMap')]);
      next += 1;
    }
    if (error !== null) next = list.length;
    if (running.length === 0) break;
    const [i, handle] = running.shift();
    try {
      results[i] = handle.join();
    } catch (e) {
      if (error === null) error = e;
    }
  }
  if (error !== null) throw error;
  return results;
}

/**
 * Register another sender of `sender`'s channel under `name` in the run's
 * registry, until this microthread ends. Throws WeftError if a live microthread
 * holds the name.
 */
export function register(name, sender) {
  if (!(sender instanceof Sender)) throw new TypeError('register: a Sender is registered');
  const r = attempt(() => witRegistry.register(name, `js/${sender.codec?.name ?? 'weft'}`, sender.live()));
  if (!r.isErr) return;
  const e = r.err;
  switch (e.tag) {
    case 'taken':
      throw new WeftError(`register: the name ${JSON.stringify(name)} is registered by microthread ${e.val}`);
    case 'taken-on':
      throw new WeftError(`register: the name ${JSON.stringify(name)} is registered on node ${e.val}`);
    case 'too-many-handles':
      throw new LimitReached(`register: the run's microthreads already hold its maximum of ${e.val} handles`, e.val);
    default:
      throw new TypeError(`register: the name ${JSON.stringify(name)} is longer than the host keeps (${e.val} bytes)`);
  }
}

/** The sender registered under `name` (another sender of its channel), or null. `options.codec` as for channel. */
export function whereis(name, options) {
  const codec = codecOf(options, 'whereis');
  const found = witRegistry.whereis(name);
  return found === undefined ? null : new Sender(found[0], codec);
}


// ---------------------------------------------------------------------------
// monitor: watch any microthread of the program by id (the WIT's `thread.monitor`).
// One message arrives when it ends: the postcard encoding of the Rust SDK's `Down`
// (guest/src/monitor.rs), which `DOWN` decodes.

/** The cases of WIT's `failure-kind`, in the order declared: a Down names a kind by its index. */
const FAILURE_KINDS = [
  'panic', 'trap', 'out-of-memory', 'fuel-exhausted', 'cancelled',
  'child-failed', 'exited', 'restart-intensity', 'disconnected', 'node-down',
];
/** The cases of a Down's outcome, in the Rust SDK's order. */
const DOWN_OUTCOMES = ['finished', 'failed', 'no-such'];

function downEnds() {
  return new TypeError("a monitor's message ends inside its Down: is the host of another weft version than this SDK?");
}

function pcByte(r) {
  if (r.at >= r.bytes.length) throw downEnds();
  return r.bytes[r.at++];
}

/** A postcard varint (unsigned LEB128, at most 64 bits), as a Number. */
function pcVarint(r) {
  let n = 0n;
  let shift = 0n;
  for (;;) {
    const b = pcByte(r);
    n |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7n;
    if (shift >= 70n) throw new TypeError("a monitor's Down has a varint longer than 64 bits: it is not a Down");
  }
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new TypeError(`a monitor's Down has the number ${n}, past what a Number holds exactly`);
  return Number(n);
}

function pcString(r) {
  const n = pcVarint(r);
  if (r.at + n > r.bytes.length) throw downEnds();
  const s = fromUtf8.decode(r.bytes.subarray(r.at, r.at + n));
  r.at += n;
  return s;
}

function pcOptionString(r) {
  const tag = pcByte(r);
  if (tag === 0) return null;
  if (tag === 1) return pcString(r);
  throw new TypeError(`a monitor's Down has an option tagged ${tag} (0 or 1 expected): it is not a Down`);
}

function pcPutString(w, s) {
  const b = utf8.encode(s);
  w.varint(b.length);
  w.bytes(b);
}

function pcPutOptionString(w, s) {
  if (s === null || s === undefined) return w.byte(0);
  w.byte(1);
  return pcPutString(w, s);
}

function downId(v, what) {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${what} is an integer, at least 0 (got ${String(v)})`);
  return v;
}

/**
 * The codec of a monitor's receiver: a Down `{ id, name, outcome: { kind, failure } }`
 * (kind 'finished', 'failed' with `failure` `{ id, name, kind, message }`, or
 * 'no-such'; `failure` null otherwise) to and from the postcard encoding of the Rust
 * SDK's `Down`, as wit/runtime.wit describes it at `monitor`.
 */
export const DOWN = Object.freeze({
  name: 'down',
  encode(down) {
    const w = new Writer();
    w.varint(downId(down?.id, 'a Down\'s id'));
    pcPutOptionString(w, down.name);
    const kind = DOWN_OUTCOMES.indexOf(down.outcome?.kind);
    if (kind < 0) throw new TypeError(`a Down's outcome.kind is one of ${DOWN_OUTCOMES.join(', ')} (got ${String(down.outcome?.kind)})`);
    w.varint(kind);
    if (down.outcome.kind === 'failed') {
      const f = down.outcome.failure;
      w.varint(downId(f?.id, "a Down's failure.id"));
      pcPutOptionString(w, f.name);
      const k = FAILURE_KINDS.indexOf(f.kind);
      if (k < 0) throw new TypeError(`a Down's failure.kind is one of ${FAILURE_KINDS.join(', ')} (got ${String(f.kind)})`);
      w.varint(k);
      pcPutString(w, String(f.message));
    }
    return w.done().slice();
  },
  decode(bytes) {
    const r = { bytes, at: 0 };
    const id = pcVarint(r);
    const name = pcOptionString(r);
    const o = pcVarint(r);
    const kind = DOWN_OUTCOMES[o];
    if (kind === undefined) throw new TypeError(`the Down of microthread ${id} has outcome ${o}, which this SDK does not know (it knows 0 to 2): is the host of another weft version?`);
    let failure = null;
    if (kind === 'failed') {
      const fid = pcVarint(r);
      const fname = pcOptionString(r);
      const k = pcVarint(r);
      const fkind = FAILURE_KINDS[k];
      if (fkind === undefined) {
        throw new TypeError(
          `the Down of microthread ${id} has failure kind ${k}, which this SDK does not know (it knows 0 to ${FAILURE_KINDS.length - 1}): ` +
            'is the host of another weft version?',
        );
      }
      failure = Object.freeze({ id: fid, name: fname, kind: fkind, message: pcString(r) });
    }
    if (r.at !== bytes.length) throw new TypeError(`the Down of microthread ${id} has ${bytes.length - r.at} bytes past its end: it is not a Down`);
    return { id, name, outcome: { kind, failure } };
  },
});

/**
 * Watch microthread `id` of this program (`JoinHandle.id`, `currentId()`; an id is a
 * value, it travels in messages): a Receiver on which exactly one Down arrives when
 * it ends (at once, with outcome 'no-such', if it is not live: it ended already, or
 * never was). `close()` on the receiver ends the monitor. A monitor makes nobody a
 * parent: it joins nothing, cancels nothing, keeps nothing alive. Throws
 * LimitReached when the run has its maximum of open channels.
 */
export function monitor(id) {
  let wid;
  if (typeof id === 'bigint' && id >= 0n && id < 1n << 64n) wid = id;
  else if (Number.isSafeInteger(id) && id >= 0) wid = BigInt(id);
  else throw new TypeError(`monitor: a microthread's id is an integer, at least 0 (got ${String(id)})`);
  const r = attempt(() => thread.monitor(wid));
  if (r.isErr) throw openError(r.err, 'monitor');
  return new Receiver(r.ok, DOWN);
}

// ---------------------------------------------------------------------------
// supervisor: OTP's supervisors, as the Rust SDK has them (guest/src/supervisor.rs):
// a microthread that starts children in order, watches them (monitor) and restarts
// those that end, fresh, as its strategy says, within its intensity; it stops them in
// reverse start order, each within its shutdown time. Its loop is an entry of this
// SDK (registered below, at the top level, so every instance has it).

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
  if (isEndpoint(v)) return v instanceof Sender ? null : v.constructor.name;
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
