// CBOR (RFC 8949): the self-describing codec shared with the other languages' SDKs
// and the application (`weft::Codec::Cbor`). null, undefined, booleans, numbers
// (integers up to 64 bits, as BigInt past 2^53), strings, Uint8Array, arrays,
// plain objects (string keys) and Maps; no endpoints.

import { fromUtf8, utf8 } from './message.js';

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
