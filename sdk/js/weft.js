// The JavaScript guest SDK of weft: what a program built with `weft build app.js`
// imports as 'weft'. The same semantics and words as the Rust SDK (guest/src/lib.rs),
// in JavaScript's idiom: blocking calls that suspend only the calling microthread,
// errors as exceptions, timeouts in milliseconds. See README.md beside this file.
//
// This module only gathers the SDK's public names. Its modules, in weft/, in the
// Rust SDK's layers (each uses only those above it):
//   bindings.js  what the modules share about the WIT imports' generated bindings
//   time.js      milliseconds to the WIT's nanoseconds
//   errors.js    failures, and the exceptions of the SDK
//   message.js   the SDK's own codec, and the endpoints' base class (Handle)
//   cbor.js      the CBOR codec, shared with the other languages and the application
//   entry.js     the registry of entries, `main`, how a microthread starts and fails
//   cluster.js   the nodes of the cluster
//   thread.js    spawning, joining, sleeping, atomic sections, identity
//   channel.js   the ends, timers, the application's channels
//   net.js       TCP listeners and streams
//   select.js    one of several operations
//   patterns.js  generate, parallelMap
//   registry.js  the run's registry of named senders
//   monitor.js   watching a microthread's end (the Down codec)
//   supervisor.js OTP's supervisors (their loop is an entry of the SDK's)

export { WeftError, Closed, Full, Empty, Timeout, Cancelled, TooLarge, LimitReached, Failed, NetError, NoSuchNode } from './weft/errors.js';
export { CBOR } from './weft/cbor.js';
export { entry, __runMain, __runEntry } from './weft/entry.js';
export { nodeName, nodes, nodeId, thisNode } from './weft/cluster.js';
export { JoinHandle, spawn, spawnDetached, sleep, yieldNow, isCancelled, ownShutdown, atomic, currentId, currentName, exit } from './weft/thread.js';
export { Sender, Receiver, channel, after, tick, hostReceiver, hostSender } from './weft/channel.js';
export { TcpListener, TcpStream, net } from './weft/net.js';
export { select, trySelect } from './weft/select.js';
export { generate, parallelMap } from './weft/patterns.js';
export { register, whereis } from './weft/registry.js';
export { DOWN, monitor } from './weft/monitor.js';
export { SupervisorHandle, supervisor } from './weft/supervisor.js';
