// select: one of several channel operations, socket readiness and timers.

import * as chan from 'weft:runtime/channel@0.6.0';
import { Receiver, Sender } from './channel.js';
import { Cancelled, Timeout, TooLarge, WeftError, failureOf } from './errors.js';
import { decode, encode, restore } from './message.js';
import { TcpListener, TcpStream } from './net.js';
import { timeoutOf } from './time.js';

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
