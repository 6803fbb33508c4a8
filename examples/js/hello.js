// Hello from JavaScript microthreads: main spawns a few greeters, each squares its
// number, and main joins them in order.
//
//   weft build hello.js -o hello.wasm && weft run hello.wasm [COUNT]

import * as weft from 'weft';

/** A spawnable function: registered at the module's top level. */
const greet = weft.entry(function greet(n) {
  return `hello from microthread ${weft.currentId()} (${weft.currentName()}): ${n} squared is ${n * n}`;
});

export function main(args) {
  const count = args.length > 0 ? Number(args[0]) : 4;
  const handles = [];
  for (let i = 1; i <= count; i++) handles.push(weft.spawn(greet, i));
  for (const h of handles) console.log(h.join());
}
