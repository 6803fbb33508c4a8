// The echo server: bind, loop on `accept`, and hand each connection to a detached
// microthread of its own that echoes until the client closes. An error on one
// connection ends only its microthread; the server keeps serving.
//
//   weft build echo-server.js -o echo-server.wasm
//   weft run --listen 127.0.0.1:7000 echo-server.wasm [ADDRESS]
//
// (default 127.0.0.1:7000; port 0 lets the system choose). It prints the address
// it listens on.

import * as weft from 'weft';

/** Echo what `stream` sends until it closes. */
const echo = weft.entry(function echo(stream) {
  try {
    for (;;) {
      const bytes = stream.read(16 << 10);
      if (bytes.length === 0) return; // the client closed
      stream.writeAll(bytes);
    }
  } catch (e) {
    // Reset, or cancelled: this connection only.
    if (!(e instanceof weft.NetError || e instanceof weft.Cancelled)) throw e;
  } finally {
    stream.close();
  }
});

export function main(args) {
  const address = args[0] ?? '127.0.0.1:7000';
  let listener;
  try {
    listener = weft.net.bind(address);
  } catch (e) {
    console.error(`echo-server: cannot listen on ${address}: ${e.message}`);
    weft.exit(1);
  }
  console.log(`echo-server: listening on ${listener.localAddress()}`);
  // `accept` fails with Cancelled when the program is being stopped: so ends the server.
  for (;;) {
    let stream;
    try {
      stream = listener.accept();
    } catch (e) {
      if (e instanceof weft.Cancelled) return;
      // Over the socket limit, say: this connection is refused, the next may not be.
      console.error(`echo-server: accept: ${e.message}`);
      continue;
    }
    try {
      weft.spawnDetached(echo, stream);
    } catch (e) {
      // At the microthread limit the connection is refused (closed), and the server
      // goes on with the next.
      console.error(`echo-server: connection refused: ${e.message}`);
      if (e.value) e.value.close();
    }
  }
}
