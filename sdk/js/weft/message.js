// message: a value to and from a WIT `message` (the SDK's own codec: a channel may
// take another, as `CBOR`), and what travels beside its bytes: the endpoints, whose
// base class (`Handle`) is here, each kind registering its case of the WIT's
// `endpoint` (`endpointKind`).

import { isBytes, ours } from './bindings.js';
import { WeftError } from './errors.js';

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
export const SMALL = 24;

export const utf8 = new TextEncoder();
export const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export class Writer {
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
export function isEndpoint(v) {
  return v instanceof Handle;
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
export function encode(value, codec) {
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
export function restore(wrappers, message) {
  if (message === undefined || message.tag !== 'large') return;
  const back = message.val.endpoints;
  for (let i = 0; i < back.length && i < wrappers.length; i++) wrappers[i].give(back[i].val);
}

/** The value a message carries; its endpoints are wrapped, and belong to the caller. */
export function decode(message, codec) {
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
  const kind = ENDPOINT_KINDS.get(e.tag);
  if (kind === undefined) throw new TypeError(`a message carries an endpoint of unknown kind ${e.tag}`);
  return new kind(e.val);
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

/** The classes of the endpoints, by their case of the WIT's `endpoint`. */
const ENDPOINT_KINDS = new Map();

/**
 * Make class `c` (a Handle) the endpoint of the WIT's `endpoint` case `tag`, named
 * `kind` in messages (a bundler may rename the class itself).
 */
export function endpointKind(c, kind, tag) {
  Object.defineProperty(c.prototype, 'kind', { value: kind });
  Object.defineProperty(c.prototype, 'endpointTag', { value: tag });
  ENDPOINT_KINDS.set(tag, c);
}

/** What the ends and sockets share: the handle they hold, until it moves or closes. */
export class Handle {
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
