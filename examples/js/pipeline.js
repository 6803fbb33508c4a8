// The concurrent prime sieve: a generator of 2, 3, 4, … feeds a chain of filter
// microthreads, each dropping the multiples of its prime. Prints the first N primes
// (first argument, default 100).
//
//   weft build pipeline.js -o pipeline.wasm && weft run pipeline.wasm [N]

import { channel, entry, spawn, Closed } from 'weft';

/** Send 2, 3, 4, … until the sieve has all it needs (the channel closes). */
const numbers = entry(function numbers(tx) {
  try {
    for (let n = 2; ; n++) tx.send(n);
  } catch (e) {
    if (!(e instanceof Closed)) throw e;
  }
});

/** Pass on what `prime` does not divide. */
const filter = entry(function filter({ prime, input, output }) {
  try {
    for (const n of input) if (n % prime !== 0) output.send(n);
  } catch (e) {
    if (!(e instanceof Closed)) throw e; // the next filter is gone: so is the need
  }
});

export function main(args) {
  const count = args.length > 0 ? Number(args[0]) : 100;
  if (!Number.isInteger(count) || count < 1) throw new Error(`pipeline: N is a positive integer (got ${args[0]})`);
  let [tx, input] = channel(0);
  spawn(numbers, tx);
  const primes = [];
  for (let i = 0; i < count; i++) {
    const prime = input.recv();
    primes.push(prime);
    const [next, rx] = channel(0);
    spawn(filter, { prime, input, output: next });
    input = rx;
  }
  input.close(); // the chain unwinds: every filter sees its output closed
  console.log(primes.join(' '));
}
