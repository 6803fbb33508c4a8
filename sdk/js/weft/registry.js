// registry: the run's registry of named senders (`register`, `whereis`).

import * as witRegistry from 'weft:runtime/registry@0.6.0';
import { attempt } from './bindings.js';
import { Sender, codecOf } from './channel.js';
import { LimitReached, WeftError } from './errors.js';

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
