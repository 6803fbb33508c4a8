"""Spawning on another node from Python (`weft run --cluster ...`), the mode
chosen by the first argument; `host/tests/languages_cluster.rs` runs it with a
`weft node` of the same program beside it. Every mode but `alone` first finds
"the other node": the first of `weft.nodes()` that is not this one, waiting for
one (asking every 50 ms, for at most 10 s). Nodes are printed by name. Each
outcome is one line on stdout, flushed at once:

- `spawn`: `square` on the other node, which prints `square 7 on NODE` there
  and returns its node's name and the square: `joined 49 from NODE (handle on
  NODE)`.
- `fail`: a child on the other node raises: `failed panic on NODE`, then the
  traceback the parent got, line by line.
- `supervised`: a supervisor's child pinned to the other node: `child on NODE`
  and `which: NODE` (its `ChildInfo.node`, `this node` for none) at each of its
  first two starts (the test kills the other node after the first), then
  `supervisor shut down`.
- `alone` (no cluster): what the cluster calls say outside one, and the
  refusals of bad placements.
"""

import sys
import time

import weft
from weft.supervisor import Child, Supervisor


def say(*what):
    print(*what, flush=True)


def here():
    return weft.node_name(weft.this_node())


@weft.entry
def square(x):
    say("square", x, "on", here())
    return here(), x * x


def deeper(x):
    raise ValueError(f"boom {x} on {here()}")


@weft.entry
def boom(x):
    deeper(x)


@weft.entry
def pinned(starts):
    """Says where it runs at each start, then waits until its supervisor stops
    it."""
    starts.send(here())
    keep, rx = weft.channel(1)
    rx.recv()
    raise AssertionError("nothing is sent to a pinned child")


def other():
    me = weft.this_node()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for node in weft.nodes():
            if node.id != me:
                return node
        weft.sleep(0.05)
    say("no other node joined within 10 s; live:", weft.nodes())
    weft.exit(1)


def spawn_mode():
    node = other()
    handle = weft.spawn(square, 7, node=node.id)
    where, result = handle.join()
    say(f"joined {result} from {where} (handle on {weft.node_name(handle.node)})")


def fail_mode():
    node = other()
    handle = weft.spawn(boom, 3, node=node)
    try:
        handle.join()
    except weft.Failed as e:
        say("failed", e.failure.kind.value, "on", weft.node_name(handle.node))
        say(e.failure.message)
    else:
        say("the child returned")


def supervised_mode():
    node = other()
    tx, starts = weft.channel(4)
    sup = Supervisor("pinned", intensity=(3, 60.0))
    sup.child(Child("remote", pinned, tx, node=node))
    handle = sup.start()
    for _ in range(2):
        say("child on", starts.recv())
        (child,) = handle.which_children()
        say("which:", "this node" if child.node is None else weft.node_name(child.node))
    handle.shutdown()
    handle.join()
    say("supervisor shut down")


def refused(make):
    try:
        make()
    except (TypeError, ValueError, LookupError) as e:
        say(type(e).__name__, e)
    else:
        say("accepted")


def alone():
    say("nodes", weft.nodes(), "node_id", weft.node_id(), "this_node is str", isinstance(weft.this_node(), str))
    refused(lambda: weft.spawn(square, 1, node="nowhere.1").join())
    refused(lambda: weft.spawn(square, 1, node="b", any_node=True))
    refused(lambda: weft.spawn(square, 1, node=7))
    tx, rx = weft.channel()
    refused(lambda: Child("c", pinned, rx, node="b.1"))
    refused(lambda: Child("c", pinned, rx, any_node=True))
    refused(lambda: Child.supervisor(Supervisor("inner"), node="b.1"))
    say(repr(Child("c", pinned, tx, node="b.1")))
    say(repr(Child("c", pinned, tx, any_node=True)))


MODES = {
    "spawn": spawn_mode,
    "fail": fail_mode,
    "supervised": supervised_mode,
    "alone": alone,
}


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else None
    if mode not in MODES:
        print(f"unknown mode {mode!r}: {', '.join(MODES)}", file=sys.stderr)
        sys.exit(2)
    MODES[mode]()
