// entry: the registry of spawnable functions, `main`, and how a microthread
// starts and fails.
//
// `spawn` names a function by two numbers (WIT `entry`): trampoline 0, and the
// function's index in the registry. The registry is filled at the module's top
// level, which componentize-js runs once, ahead of time (Wizer), so every instance
// of the component starts with the same registry.

import * as thread from 'weft:runtime/thread@0.6.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';
import { attempt } from './bindings.js';
import { WeftError } from './errors.js';
import { SMALL, decode, encode } from './message.js';

export const TRAMPOLINE = 0;
export const registry = [];
let started = false;
/** What this instance runs: 'main', or 'entry' (a spawned function). */
let role = null;

/**
 * Register `fn` as a function that `spawn` can start; returns `fn`. Call it at the
 * top level of a module: a microthread starts in a fresh instance of the program,
 * which knows only what the top level registered.
 */
export function entry(fn) {
  if (typeof fn !== 'function') throw new TypeError(`weft.entry: expected a function, got ${typeof fn}`);
  if (started) {
    throw new WeftError(
      `weft.entry(${fn.name || 'anonymous function'}): too late, the program is running: ` +
        'register spawnable functions at the top level of a module, where every instance of the program registers them alike',
    );
  }
  if (!registry.includes(fn)) registry.push(fn);
  return fn;
}

export function entryIndex(fn, what) {
  if (typeof fn !== 'function') throw new TypeError(`${what}: expected a function registered with weft.entry, got ${typeof fn}`);
  const index = registry.indexOf(fn);
  if (index < 0) {
    const name = fn.name || 'this function';
    throw new TypeError(
      `${what}: ${name} is not registered: register it with weft.entry(${fn.name || 'fn'}) at the top level of its module ` +
        '(a microthread starts in a fresh instance of the program, which knows only the functions its top level registered)',
    );
  }
  return index;
}

/**
 * A stack with the bundle's lines turned into the program's own files and lines,
 * by the map `weft build` appends to the bundle.
 */
function programStack(stack) {
  // The frames below the program's (the SDK's start, the bindings) say nothing.
  const frames = stack.split('\n');
  const start = frames.findIndex((f) => /^(async\*)?__run(Main|Entry)@/.test(f));
  const end = start > 0 ? start : frames.length;
  // Nor do the SDK's own frames above the program's (where the error was made):
  // its modules are weft/*.js (build.mjs names them so).
  let first = 0;
  while (first < end - 1 && /^[^@]*@weft(\.js|\/[\w-]+\.js):/.test(programFrame(frames[first]))) first++;
  stack = frames.slice(first, end).join('\n');
  return programFrame(stack);
}

/** `text` with the bundle's lines turned into the program's files and lines. */
function programFrame(text) {
  const map = globalThis[Symbol.for('weft.lines')];
  if (map === undefined) return text;
  return text.replace(/[^@\s]*\.bundle\.js:(\d+)(:\d+)?/g, (whole, line) => {
    const n = Number(line);
    for (const [first, count, source, sourceLine] of map.runs) {
      if (n >= first && n < first + count) return `${map.sources[source]}:${sourceLine + (n - first)}`;
    }
    return whole;
  });
}

/** Whether `e` is an Error (of any realm: the bindings' errors are of another). */
function isError(e) {
  return e instanceof Error || Object.prototype.toString.call(e) === '[object Error]';
}

function describeThrown(e) {
  if (isError(e)) {
    const stack = typeof e.stack === 'string' && e.stack.length > 0 ? `\n${programStack(e.stack.trimEnd())}` : '';
    return `${String(e)}${stack}`;
  }
  let text;
  try {
    text = typeof e === 'string' ? e : `${String(e)} ${JSON.stringify(e)}`;
  } catch {
    text = String(e);
  }
  const kind = e !== null && typeof e === 'object' && e.constructor ? `${e.constructor.name} ` : '';
  return `uncaught exception: ${kind}${text}`;
}

/**
 * End this microthread failed, with kind `panic` and the message of `e` (the JS
 * error's message and stack). Does not return.
 */
function fail(e) {
  const message = describeThrown(e);
  thread.setPanicMessage(message);
  // JavaScript cannot trap; the host traps a call that breaks the WIT's contract,
  // and a small message of more than 24 bytes does (the argument is checked before
  // anything is spawned). The failure then carries the panic message above.
  attempt(() => thread.spawn(TRAMPOLINE, 0, { tag: 'small', val: { len: SMALL + 1, w0: 0n, w1: 0n, w2: 0n } }, undefined, false));
  // Only a message size limit under 25 bytes refuses it before the check. An
  // exception escaping the `entry` export aborts the engine, a trap (the failure
  // keeps the message above); one escaping `wasi:cli/run` would be a quiet exit
  // code 1: a failed main ends the program with 134 instead, as weft's own does.
  if (role === 'main') {
    console.error(`weft: main failed: ${message}`);
    thread.exit(134);
  }
  throw new Error(message);
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

/**
 * What the program's `wasi:cli/run` export calls (the wrapper `weft build` makes):
 * `main(args)`, args being the arguments after the program. Not for programs.
 */
export function __runMain(main) {
  started = true;
  role = 'main';
  if (typeof main !== 'function') {
    fail(new TypeError('the program exports no function main: add `export function main(args) { ... }` to the file given to weft build'));
  }
  let r;
  try {
    r = main(getArguments().slice(1));
  } catch (e) {
    fail(e);
  }
  if (isThenable(r)) {
    return r.then(
      () => undefined,
      (e) => fail(e),
    );
  }
  return undefined;
}

/** What the program's `entry` export calls: start the registered function `fn`. Not for programs. */
export function __runEntry(trampoline, fn, argument) {
  started = true;
  role = 'entry';
  let r;
  try {
    if (trampoline !== TRAMPOLINE || fn >= registry.length) {
      throw new Error(
        `entry (${trampoline}, ${fn}) names no function registered with weft.entry (there are ${registry.length}): ` +
          'was it spawned by another program?',
      );
    }
    r = registry[fn](decode(argument));
  } catch (e) {
    fail(e);
  }
  const result = (v) => {
    try {
      return encode(v).message;
    } catch (e) {
      return fail(e);
    }
  };
  if (isThenable(r)) return r.then(result, (e) => fail(e));
  return result(r);
}
