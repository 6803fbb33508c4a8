"""An echo server: bind, loop on accept, and hand each connection to a detached
microthread of its own that echoes until the client closes. An error on one
connection ends only its microthread.

    weft build echo_server.py
    weft run --listen 127.0.0.1:7000 echo_server.wasm [ADDRESS]

ADDRESS defaults to 127.0.0.1:7000 (port 0 lets the system choose); it prints
the address it listens on.
"""

import sys

import weft


@weft.entry
def echo(stream):
    with stream:
        try:
            while data := stream.recv(16 << 10):
                stream.sendall(data)
        except OSError:
            return  # reset mid-echo: this connection only


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7000"
    listener = weft.net.bind(address)
    print(f"listening on {listener.local_address}", flush=True)
    for stream in listener:
        weft.spawn_detached(echo, stream, name=f"echo {stream.peer_address}")
