// monitor: watch any microthread of the program by id (the WIT's `thread.monitor`).
// One message arrives when it ends: the postcard encoding of the Rust SDK's `Down`
// (guest/src/monitor.rs), which `DOWN` decodes.

import * as thread from 'weft:runtime/thread@0.6.0';
import { attempt } from './bindings.js';
import { Receiver, openError } from './channel.js';
import { Writer, fromUtf8, utf8 } from './message.js';

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
