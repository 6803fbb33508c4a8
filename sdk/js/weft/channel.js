// channel: the ends, timers, the application's channels.

import * as chan from 'weft:runtime/channel@0.6.0';
import { attempt } from './bindings.js';
import { CBOR } from './cbor.js';
import { Cancelled, Closed, Empty, Failed, Full, LimitReached, Timeout, TooLarge, WeftError, failureOf } from './errors.js';
import { Handle, decode, encode, endpointKind, restore } from './message.js';
import { nanos, timeoutOf } from './time.js';

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

export function openError(e, what) {
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

export function codecOf(options, what) {
  const codec = options?.codec;
  if (codec !== undefined && codec !== CBOR) throw new TypeError(`${what}: options.codec is weft.CBOR, or left out`);
  return codec;
}

endpointKind(Sender, 'Sender', 'sender');
endpointKind(Receiver, 'Receiver', 'receiver');
