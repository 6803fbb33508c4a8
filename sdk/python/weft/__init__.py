"""weft's Python SDK: run as microthreads under a weft host.

A microthread is a function of this program running in its own instance of the
program (its own interpreter and memory), scheduled by the host. Code is written
in a plain blocking style: `join`, `recv`, `sleep` suspend only the calling
microthread while the host runs the others, and a loop that never calls the host
is still preempted.

    import weft

    @weft.entry
    def square(x):
        return x * x

    def main():
        handles = [weft.spawn(square, i) for i in range(1, 5)]
        print(sum(h.join() for h in handles))  # 30

Build it with `weft build app.py -o app.wasm`, run it with `weft run app.wasm`.
The program's entry point is `main()`; the functions a microthread can start at
are *entries*, registered with `@weft.entry` at module top level.

Values (spawn arguments, results, what is sent on a channel) are copied
between instances, pickled; the channel ends and sockets inside them move.
Concurrency is structured: a spawned microthread is a child of its spawner,
which does not finish before it, and a child's failure that nobody joins fails
its parent. An exception that escapes a microthread is its failure, with the
traceback. `JoinHandle.cancel` cancels one: its blocking calls raise
`Cancelled`, so its cleanup runs.

Modules, each using only those above it: `_errors` (failures and exceptions),
`_time` (seconds to nanoseconds), `_cluster` (the cluster's nodes: `nodes`,
`this_node`), `_message` (codecs: values to and from WIT messages), `_entry`
(the registry of entries and the exports that start a program and a
microthread), `_thread` (spawn and the rest of the microthread's
life), `_channel` (channels, timers, the application's channels), `_monitor`
(`monitor`: watch a microthread's end), `net` (TCP), `_select`, `supervisor`
(OTP's supervisors: `weft.supervisor.Supervisor`), `_patterns` (`generate`,
`parallel_map`), `_registry`.
"""

from ._errors import (
    Cancelled,
    Closed,
    Disconnected,
    Empty,
    Failed,
    Failure,
    FailureKind,
    Full,
    LimitReached,
    NoSuchNode,
    Timeout,
    TooLarge,
    WeftError,
)
from ._cluster import Node, node_id, node_name, nodes, this_node
from ._message import BYTES, CBOR, PICKLE
from ._entry import entry
from ._thread import (
    JoinHandle,
    atomic,
    current_id,
    current_name,
    exit,
    is_cancelled,
    own_shutdown,
    sleep,
    spawn,
    spawn_detached,
    yield_now,
)
from ._channel import Receiver, Sender, after, channel, host_receiver, host_sender, tick
from ._monitor import Down, DownOutcome, monitor
from . import net
from ._select import Selected, readable, select, try_select, writable
from . import supervisor
from ._patterns import generate, parallel_map
from ._registry import register, whereis

# The exceptions and results read as weft's in a traceback (`weft.Closed`), not
# as those of the private module that defines them.
for _public in (
    Cancelled, Closed, Disconnected, Down, DownOutcome, Empty, Failed, Failure, FailureKind, Full,
    JoinHandle, LimitReached, Node, NoSuchNode, Receiver, Selected, Sender, Timeout, TooLarge, WeftError,
):
    _public.__module__ = __name__
del _public

__all__ = [
    "BYTES", "CBOR", "Cancelled", "Closed", "Disconnected", "Down", "DownOutcome", "Empty",
    "Failed", "Failure", "FailureKind", "Full", "JoinHandle", "LimitReached", "NoSuchNode", "Node",
    "PICKLE", "Receiver", "Selected", "Sender", "Timeout", "TooLarge", "WeftError", "after",
    "atomic", "channel", "current_id", "current_name", "entry", "exit", "generate",
    "host_receiver", "host_sender", "is_cancelled", "monitor", "net", "node_id", "node_name",
    "nodes", "own_shutdown", "parallel_map", "readable", "register", "select", "sleep", "spawn",
    "spawn_detached", "supervisor", "this_node", "tick", "try_select", "whereis", "writable",
    "yield_now",
]
