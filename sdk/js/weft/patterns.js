// patterns: generate, parallelMap, built from spawn and channels.

import { channel } from './channel.js';
import { spawnWith } from './thread.js';

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
