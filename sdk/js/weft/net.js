// net: TCP listeners and streams on the host's reactor (granted with
// `weft run --listen` / `--connect`).

import * as witNet from 'weft:runtime/net@0.6.0';
import { attempt, isBytes, ours } from './bindings.js';
import { Cancelled, NetError, Timeout } from './errors.js';
import { Handle, endpointKind, utf8 } from './message.js';
import { timeoutOf } from './time.js';

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

endpointKind(TcpListener, 'TcpListener', 'tcp-listener');
endpointKind(TcpStream, 'TcpStream', 'tcp-stream');

export const net = Object.freeze({ bind, connect, TcpListener, TcpStream });
