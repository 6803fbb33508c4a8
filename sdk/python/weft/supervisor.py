"""Supervisors, as in Erlang/OTP: a microthread that starts children, watches
them (`weft.monitor`) and restarts the ones that end, fresh (a restarted child is
a new instance with new memory: nothing of the crashed one survives), within
limits.

    import weft
    from weft.supervisor import Child, Restart, Strategy, Supervisor

    @weft.entry
    def worker(jobs):
        for job in jobs:
            ...  # an exception here ends it; the supervisor starts a fresh one

    def main():
        jobs_tx, jobs_rx = weft.channel()
        pool = Supervisor("pool", strategy=Strategy.ONE_FOR_ONE, intensity=(5, 10.0))
        pool.child(Child("worker-1", worker, jobs_rx))
        pool.child(Child("worker-2", worker, jobs_rx, restart=Restart.TRANSIENT))
        handle = pool.start()
        for child in handle.which_children():
            print(child.name, child.id, child.state.value, child.restarts)

- A `Supervisor` has a name (its microthread's), a `Strategy` (which children
  restart when one ends: ONE_FOR_ONE only it, ONE_FOR_ALL all of them,
  REST_FOR_ONE it and those started after it), an intensity (at most
  `max_restarts` restarts within `within_seconds`, 3 in 5 s unless given) and its
  children, started in the order given.
- A `Child` is a name, an entry (`@weft.entry`) and its arguments, which are
  given afresh at each start (the channel ends in them cloned); its `Restart`
  says when it restarts: PERMANENT always, TRANSIENT only after a failure,
  TEMPORARY never; its shutdown time (seconds, 5 unless given) is the grace its
  cancellation gets before it is stopped where it is. The strategies and restart
  types are enums; their values ("one-for-one", "transient", ...) are accepted
  too.
- `Supervisor.start()` runs the supervisor as a microthread, a child of the
  caller. Its handle's `join()` returns once no child is left to run (every
  child has ended and is not to restart), or raises `weft.Failed` with kind
  `restart-intensity`, whose message names the child and lists the recent ends
  (the latest 32), when a restart would exceed the intensity: the supervisor
  then stops its children and gives up.
- A child runs on the supervisor's node unless `node=` names another node of
  the cluster (a node's id, or a `weft.Node`, from `weft.nodes()`) or
  `any_node=True` asks for the least loaded live node; it restarts there. A
  child whose node went down (it failed with kind `node-down`), or that its
  node refuses as gone (`weft.NoSuchNode`), restarts on any live node from
  then on, wherever it was pinned: a node that comes back is a new
  incarnation, with a new id. Such a restart counts in the intensity as any
  other. The arguments of a child placed so may carry senders, not receivers.
- Supervisors nest: `Child.supervisor(other)` makes a supervisor a child of
  another, so one that gives up is a failed child one level up. A supervisor
  child runs on its supervisor's node (its requests come on a receiver, which
  cannot move to another node): place its children instead.
- Children stop in reverse start order, each within its shutdown time: when a
  strategy restarts siblings, when the supervisor gives up, at
  `SupervisorHandle.shutdown()`, and when the supervisor is cancelled (by its
  handle, its parent's cancellation, or the end of the program): a supervisor
  owns its shutdown (`weft.own_shutdown()`), so a cancellation stops at it, and
  it stops its children in order within its own grace period.

Each restart counts in the run's `restarts` statistic (`weft run --stats`).
"""

import collections
import enum
import sys
import time

from componentize_py_types import Err
from wit_world.imports import thread as _wit

from . import _entry, _message
from ._channel import Sender, channel
from ._cluster import _target
from ._errors import (
    Cancelled,
    Closed,
    Empty,
    Failure,
    FailureKind,
    Full,
    LimitReached,
    NoSuchNode,
    Timeout,
    TooLarge,
)
from ._monitor import monitor
from ._select import select
from ._thread import _spawn, is_cancelled, own_shutdown
from ._time import ns


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them ends and is to
    restart."""

    #: Only the child that ended.
    ONE_FOR_ONE = "one-for-one"
    #: All children: the others are stopped (in reverse start order), then all
    #: start again in order (a TEMPORARY one stopped so does not).
    ONE_FOR_ALL = "one-for-all"
    #: The child that ended and those started after it: they are stopped (in
    #: reverse start order), then start again in order.
    REST_FOR_ONE = "rest-for-one"


class Restart(enum.Enum):
    """When a child restarts after it ends (OTP's restart types)."""

    #: Always, however it ended.
    PERMANENT = "permanent"
    #: Only if it failed (an exception, a trap, ...); a child that returns is done.
    TRANSIENT = "transient"
    #: Never: once it ends it is done.
    TEMPORARY = "temporary"


class ChildState(enum.Enum):
    """Whether a supervised child runs."""

    RUNNING = "running"
    #: It returned and is not to restart.
    FINISHED = "finished"
    #: It failed and is not to restart.
    FAILED = "failed"


# OTP's default shutdown time of a worker, in seconds.
DEFAULT_SHUTDOWN = 5.0
# How many requests may wait for a supervisor.
_CONTROL_CAPACITY = 16
# How many of the latest ends a supervisor keeps an account of, to list when it
# gives up (it counts all those within its intensity's window).
_MAX_ACCOUNTS = 32
# What refuses a child's start: the host's refusals of a spawn (`_thread`), and
# no channel left for its monitor.
_START_ERRORS = (LimitReached, TooLarge, LookupError, ValueError, RuntimeError)


def _one_of(kind, value, what):
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{what} is one of {choices} (or weft.supervisor.{kind.__name__}), not {value!r}") from None


def _seconds(value, what):
    ns(value, what)
    return float(value)


def _name(value, what):
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} is a non-empty string, not {value!r}")
    return value


def _fresh(args):
    """A copy of `args` whose channel ends are new ends of the same channels:
    what one start of a child takes (moves), leaving the originals for the
    next."""
    data, found = _message.PICKLE.encode(args)
    return _message.PICKLE.decode(data, [end.clone() for end in found])


class Child:
    """A child of a `Supervisor`: `function(*args)` (an entry, `@weft.entry`), in
    a microthread named `name`. `restart` says when it restarts (a `Restart`,
    PERMANENT unless given); `shutdown` is how many seconds its cancellation's
    grace is when the supervisor stops it (5 unless given): past that it is
    stopped wherever it is, its cleanup done or not.

    `node` (a node's id, or a `weft.Node`, as `weft.nodes()` gives them) runs
    it on that node of the cluster rather than on the supervisor's, and
    `any_node=True` on the live node with the most room and the least load: it
    starts and restarts there, as long as that node is live. Once that node
    goes down (the child fails with kind `node-down`, or a start raises
    `weft.NoSuchNode`), it restarts on any live node instead, from then on. Its
    arguments may then carry senders, not receivers.

    The arguments are checked now and given afresh (copied, their channel ends
    cloned) at each start: a restarted child gets the same arguments as the
    first. They move to the supervisor when it starts. A socket cannot be cloned,
    so it cannot be one: pass a channel the child receives it on."""

    __slots__ = ("name", "function", "args", "restart", "shutdown", "_node", "_any_node", "_control")

    def __init__(
        self, name, function, *args, restart=Restart.PERMANENT, shutdown=DEFAULT_SHUTDOWN, node=None, any_node=False
    ):
        self.name = _name(name, "a child's name")
        _entry.number(function)
        self.function = function
        self.restart = _one_of(Restart, restart, "a child's restart")
        self.shutdown = _seconds(shutdown, "a child's shutdown time")
        placed, self._node = _target(node, any_node, f"child {name!r}")
        self._any_node = placed and self._node is None
        try:
            _data, found = _message.PICKLE.encode(args)
        except Exception as e:
            raise TypeError(f"the arguments of child {name!r} cannot be pickled: {e}") from e
        for end in found:
            if not hasattr(end, "clone"):
                raise TypeError(
                    f"the arguments of child {name!r} carry a {type(end).__name__}: a child's arguments "
                    "are given afresh at each start, with their channel ends cloned, and a socket cannot "
                    "be cloned (send it to the child on a channel instead)"
                )
            if placed and not isinstance(end, Sender):
                raise ValueError(
                    f"the arguments of child {name!r} carry a {type(end).__name__}, and it is to run on "
                    f"{'any node' if self._node is None else 'node ' + self._node}: only senders move to "
                    "another node (give it a sender to ask for what it needs, or leave it on this node)"
                )
        self.args = args
        self._control = None

    @property
    def node(self):
        """The id of the node it is to run on; None for the supervisor's node, or
        for any node (`any_node`)."""
        return self._node

    @property
    def any_node(self):
        """Whether it is to run on any live node."""
        return self._any_node

    @classmethod
    def supervisor(cls, supervisor, restart=Restart.PERMANENT, shutdown=None, node=None, any_node=False):
        """A child that runs `supervisor` (named as it is): its giving up is its
        failure, which this child's supervisor sees. It is stopped as a
        supervisor is, its own children first, in reverse order; its shutdown
        time is that of all its children together, and a second more, unless
        given. It runs on its supervisor's node: a `node` or `any_node` is
        refused (`ValueError`)."""
        if not isinstance(supervisor, Supervisor):
            raise TypeError(f"Child.supervisor takes a Supervisor, not {type(supervisor).__name__}")
        if node is not None or any_node is not False:
            raise ValueError(
                f"supervisor child {supervisor.name!r} runs on its supervisor's node (it is asked to stop "
                "on a receiver, which cannot move to another node): give its children node= instead"
            )
        if shutdown is None:
            shutdown = 1.0 + sum(c.shutdown for c in supervisor._children)
        control, requests = channel(_CONTROL_CAPACITY)
        child = cls(
            supervisor.name, _supervise, supervisor._spec(), requests, True, restart=restart, shutdown=shutdown
        )
        child._control = control
        return child

    def __repr__(self):
        what = "supervisor" if self._control is not None else getattr(self.function, "__qualname__", "?")
        where = "" if self._node is None else f", node={self._node!r}"
        if self._any_node:
            where = ", any_node=True"
        return f"Child({self.name!r}, {what}, restart={self.restart.value}, shutdown={self.shutdown:g}{where})"


class Supervisor:
    """A supervisor named `name` (its microthread's name), without children
    until `child` adds them. `strategy` (a `Strategy`, ONE_FOR_ONE unless given)
    says which children restart when one ends; `intensity` is `(max_restarts,
    within_seconds)`: the restart that would be one more than `max_restarts`
    within any `within_seconds` fails the supervisor (kind `restart-intensity`)."""

    __slots__ = ("name", "strategy", "max_restarts", "within", "_children")

    def __init__(self, name, strategy=Strategy.ONE_FOR_ONE, intensity=(3, 5.0)):
        self.name = _name(name, "a supervisor's name")
        self.strategy = _one_of(Strategy, strategy, "a supervisor's strategy")
        try:
            max_restarts, within = intensity
        except (TypeError, ValueError):
            raise TypeError(f"an intensity is (max_restarts, within_seconds), not {intensity!r}") from None
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"an intensity's max_restarts is a whole number, 0 or more, not {max_restarts!r}")
        self.max_restarts = max_restarts
        self.within = _seconds(within, "an intensity's within_seconds")
        self._children = []

    def child(self, child):
        """Add `child` (a `Child`), started after those added before it. Returns
        the supervisor, so that calls chain."""
        if not isinstance(child, Child):
            raise TypeError(f"Supervisor.child takes a weft.supervisor.Child, not {type(child).__name__}")
        self._children.append(child)
        return self

    @property
    def children(self):
        """The children added so far, in start order."""
        return list(self._children)

    def _spec(self):
        return (self.name, self.strategy, self.max_restarts, self.within, list(self._children))

    def start(self):
        """Run the supervisor as a microthread, a child of the caller, which
        starts the children in order: a `SupervisorHandle`. The children's
        arguments move to it. Raises what `weft.spawn` raises when the host
        refuses it, and `LimitReached` when no channel is left for its
        requests."""
        control, requests = channel(_CONTROL_CAPACITY)
        handle = _spawn(_supervise, (self._spec(), requests, False), self.name, False, None, False)
        return SupervisorHandle(handle, control)

    def __repr__(self):
        return (
            f"Supervisor({self.name!r}, strategy={self.strategy.value}, "
            f"intensity=({self.max_restarts}, {self.within:g}), children={self._children!r})"
        )


class ChildInfo:
    """One child of a supervisor, as `SupervisorHandle.which_children` reports
    it: its `name`, `id` (of its microthread now, or of the last one if it is
    done; None if it never started), `node` (None: this node), `state` (a
    `ChildState`) and how many times it was restarted (`restarts`)."""

    __slots__ = ("name", "id", "node", "state", "restarts")

    def __init__(self, name, id, node, state, restarts):
        self.name = name
        self.id = id
        self.node = node
        self.state = state
        self.restarts = restarts

    def __eq__(self, other):
        return isinstance(other, ChildInfo) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __repr__(self):
        return (
            f"ChildInfo(name={self.name!r}, id={self.id}, node={self.node!r}, "
            f"state={self.state.value}, restarts={self.restarts})"
        )


class SupervisorHandle:
    """A started supervisor."""

    __slots__ = ("_handle", "_control")

    def __init__(self, handle, control):
        self._handle = handle
        self._control = control

    @property
    def id(self):
        """Id of the supervisor's microthread."""
        return self._handle.id

    @property
    def name(self):
        return self._handle.name

    def which_children(self):
        """Its children, in start order: a list of `ChildInfo`. Raises `Closed`
        if the supervisor has finished (join it to see how), `Cancelled` if this
        microthread is cancelled while it waits."""
        reply, answer = channel(1)
        finished = "the supervisor has finished: join it to see how"
        with answer:
            try:
                self._control.send(("which-children", reply))
            except Closed:
                raise Closed(finished) from None
            try:
                return answer.recv()
            except Closed:
                raise Closed(finished) from None

    def shutdown(self):
        """Ask it to stop: its children stop in reverse start order, each within
        its shutdown time, then it finishes (`join` returns). Asking one that has
        finished does nothing. Waits only while earlier requests fill its queue;
        raises `Cancelled` if this microthread is cancelled meanwhile."""
        try:
            self._control.send(("shutdown",))
        except Closed:
            # A finished supervisor has nothing to stop.
            pass

    def cancel(self, grace=None):
        """Cancel it: it stops its children in reverse start order, within its
        grace period (the run's, or `grace` seconds), as at a `shutdown`, and then
        ends; joining it raises `Failed` of kind `cancelled`. Past the grace, it
        and its tree are stopped where they are."""
        self._handle.cancel(grace)

    def is_finished(self):
        """Whether the supervisor has finished."""
        return self._handle.is_finished()

    def join(self, timeout=None):
        """Wait for it to finish: when no child is left to run, or once shut
        down. Raises `Failed` if it failed: of kind `restart-intensity` if it gave
        up; `Timeout` past `timeout` seconds if given."""
        self._handle.join(timeout)

    def __repr__(self):
        return f"<weft SupervisorHandle of microthread {self.id} ({self.name})>"


@_entry.entry
def _supervise(spec, requests, nested):
    """A supervisor's microthread (at the top, or as another's child)."""
    # A cancellation stops here: the children are stopped in order, by `run`.
    own_shutdown()
    if nested:
        # Its supervisor asks only a running instance to shut down: a request
        # still queued was for an instance stopped before it read it.
        while True:
            try:
                requests.try_recv()
            except (Empty, Closed):
                break
    message = _Running(spec).run(requests)
    if message is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        _wit.give_up(message)
        raise AssertionError("the host ends a microthread that gives up")


class _GiveUp(Exception):
    """The supervisor is to give up: the message of its failure."""


class _Slot:
    """A child as its supervisor keeps it."""

    __slots__ = ("child", "handle", "down", "id", "node", "elsewhere", "state", "restarts")

    def __init__(self, child):
        self.child = child
        # Its microthread while it runs, and the monitor that says when it ends.
        self.handle = None
        self.down = None
        self.id = None
        # The node its microthread runs (or ran) on, if another one.
        self.node = None
        # Its node went down: it starts on any node from now on.
        self.elsewhere = False
        self.state = ChildState.RUNNING
        self.restarts = 0

    def lost(self, failure):
        """It ended with `failure` (None: it returned): one of kind `node-down`
        means its node is gone for good (one that comes back has a new id), so
        it starts elsewhere from now on."""
        if failure is not None and failure.kind is FailureKind.NODE_DOWN:
            self.elsewhere = True


class _Running:
    """A running supervisor."""

    def __init__(self, spec):
        self.name, self.strategy, self.max_restarts, self.within, children = spec
        self.slots = [_Slot(child) for child in children]
        # When the restarts within the intensity's window were.
        self.recent = collections.deque()
        # When and what the latest of those were (at most _MAX_ACCOUNTS).
        self.accounts = collections.deque()

    def run(self, requests):
        """Start the children, then supervise them until none is left to run, a
        shutdown is asked for, or it is cancelled (None), or the intensity is
        exceeded (the message to give up with). However it ends, the children
        are stopped first, in reverse start order."""
        try:
            self._supervise(requests)
        except Cancelled:
            pass
        except _GiveUp as e:
            return str(e)
        finally:
            self._stop_all_from(0)
        return None

    def _supervise(self, requests):
        for i, slot in enumerate(self.slots):
            if is_cancelled():
                return
            # A strategy may have started it already, at an earlier child's end.
            if slot.handle is not None:
                continue
            try:
                self._start(i)
            except _START_ERRORS as e:
                # As if the child had failed at once: restart it within the limits.
                self._ended(i, f"could not be started: {e}")
        while True:
            # The notice of a cancellation may have come to another call (a
            # reply's send, a sibling's stop): it is seen here.
            if is_cancelled():
                return
            watched = [i for i, slot in enumerate(self.slots) if slot.handle is not None]
            if not watched:
                return
            ops = [self.slots[i].down for i in watched]
            if requests is not None:
                ops.append(requests)
            selected = select(*ops)
            if selected.index == len(watched):
                if selected.kind == "closed":
                    # Nobody can ask anything any more: supervise on.
                    requests = None
                    continue
                request = selected.value
                if request[0] == "which-children":
                    try:
                        request[1].try_send(self._which_children())
                    except Closed:
                        # The asker gave up waiting: nobody to answer.
                        pass
                    continue
                if request[0] == "shutdown":
                    return
                raise RuntimeError(f"supervisor {self.name} got a request it does not know: {request!r}")
            i = watched[selected.index]
            slot = self.slots[i]
            handle, down = slot.handle, slot.down
            slot.handle = slot.down = None
            down.close()
            failure = _join_ended(handle)
            slot.lost(failure)
            if is_cancelled():
                # The child ended as this supervisor was being cancelled: no
                # restart; the others stop.
                return
            self._ended(i, None if failure is None else _describe(failure))

    def _start(self, i):
        """Spawn child `i`, and watch it."""
        slot = self.slots[i]
        child = slot.child
        if slot.elsewhere:
            node, any_node = None, True
        else:
            node, any_node = child._node, child._any_node
        try:
            handle = _spawn(child.function, _fresh(child.args), child.name, False, node, any_node)
        except NoSuchNode:
            # Its node is gone: any node from now on.
            slot.elsewhere = True
            raise
        try:
            down = monitor(handle.id)
        except LimitReached:
            # Nothing would say when it ends: it does not run unwatched.
            handle.cancel(0)
            _join_ended(handle)
            raise
        slot.id = handle.id
        slot.node = handle.node
        slot.state = ChildState.RUNNING
        slot.handle = handle
        slot.down = down

    def _ended(self, i, outcome):
        """Child `i` has ended (`outcome`: None if it returned, else how it
        failed): restart what the strategy says, within the intensity."""
        # Children that could not be started again end at once, in turn (a loop,
        # not a recursion: with a high intensity they may be many).
        ends = collections.deque([(i, outcome)])
        while ends:
            i, outcome = ends.popleft()
            self._one_ended(i, outcome, ends)

    def _one_ended(self, i, outcome, ends):
        slot = self.slots[i]
        restart = slot.child.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and outcome is None):
            slot.state = ChildState.FINISHED if outcome is None else ChildState.FAILED
            return
        what = "child {} (microthread {}) {}".format(
            slot.child.name, "none" if slot.id is None else slot.id, "returned" if outcome is None else outcome
        )
        now = time.monotonic()
        while self.recent and now - self.recent[0] > self.within:
            self.recent.popleft()
        self.recent.append(now)
        while len(self.accounts) >= _MAX_ACCOUNTS or (self.accounts and now - self.accounts[0][0] > self.within):
            self.accounts.popleft()
        self.accounts.append((now, what))
        if len(self.recent) > self.max_restarts:
            self._stop_all_from(0)
            ends_list = "\n  ".join(what for _, what in self.accounts)
            raise _GiveUp(
                f"supervisor {self.name} gave up: child {slot.child.name} needed more than "
                f"{self.max_restarts} restarts within {self.within:g} s; the recent ends:\n  {ends_list}"
            )
        if is_cancelled():
            # Being cancelled: nothing starts again; `run` stops the rest.
            return
        # Which children start again: `i`, and the siblings the strategy stops.
        if self.strategy is Strategy.ONE_FOR_ONE:
            again = [i]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            self._stop_all_from(0)
            again = self._restartable_from(0, i)
        else:
            self._stop_all_from(i + 1)
            again = self._restartable_from(i + 1, i)
        for j in again:
            other = self.slots[j]
            # Restarted already, when an earlier one of these could not be.
            if other.handle is not None:
                continue
            # (At the first start, a strategy may start one that never ran.)
            if other.id is not None:
                other.restarts += 1
                _wit.count_restart()
            try:
                self._start(j)
            except _START_ERRORS as e:
                ends.append((j, f"could not be restarted: {e}"))

    def _restartable_from(self, start, i):
        """The children from `start` on that were stopped to restart and are to
        start again (not the temporary ones), with `i`, in start order."""
        again = []
        for j, slot in enumerate(self.slots):
            if j == i:
                again.append(j)
            elif j >= start and slot.state is ChildState.RUNNING and slot.handle is None:
                if slot.child.restart is Restart.TEMPORARY:
                    slot.state = ChildState.FINISHED
                else:
                    again.append(j)
        return again

    def _stop_all_from(self, start):
        """Stop the running children from `start` on, in reverse start order. One
        whose node went down meanwhile starts on any node from then on."""
        for slot in reversed(self.slots[start:]):
            if slot.handle is not None:
                handle, down = slot.handle, slot.down
                slot.handle = slot.down = None
                slot.lost(_stop(slot.child, handle, down))

    def _which_children(self):
        return [ChildInfo(s.child.name, s.id, s.node, s.state, s.restarts) for s in self.slots]


def _stop(child, handle, down):
    """Stop a child within its shutdown time: a supervisor is asked to shut down
    (its children stop in order) and cancelled only once the time is over; any
    other child is cancelled with its shutdown time as the grace. The supervisor
    owns its shutdown: its own cancellation, should it come meanwhile, raises in
    one of these calls, and the stop goes on. How it ended comes back: None if
    it returned, else its `Failure` (also None once this supervisor's grace is
    over)."""
    asked = False
    if child._control is not None:
        try:
            child._control.try_send(("shutdown",))
            asked = True
        except (Full, Closed):
            pass
    try:
        if asked:
            deadline = time.monotonic() + child.shutdown
            noticed = False
            while True:
                try:
                    select(down, timeout=max(0.0, deadline - time.monotonic()))
                    break
                except Timeout:
                    handle.cancel(0)
                    break
                except Cancelled:
                    # The notice of this supervisor's cancellation: wait on (once:
                    # a second means its grace is over, and it is being stopped).
                    if noticed:
                        break
                    noticed = True
        else:
            handle.cancel(child.shutdown)
    finally:
        down.close()
    try:
        return _join_ended(handle)
    except Cancelled:
        # This supervisor's grace is over: it is being stopped, with its tree.
        return None


def _join_ended(handle):
    """Join a child that has ended or is being stopped, discarding its result:
    None if it returned, its `Failure` if not. The supervisor owns its shutdown:
    the notice of its cancellation fails one join, not the next; a second raises
    `Cancelled` (its grace is over)."""
    for _notice in range(2):
        try:
            handle._h.join()
            return None
        except Err as e:
            error = e.value
            if isinstance(error, _wit.JoinError_Failed):
                return Failure._from_wit(error.value)
            if not isinstance(error, _wit.JoinError_Cancelled):
                raise RuntimeError(f"joining child {handle.name} gave {error!r}") from None
    raise Cancelled()


_ENDS = {
    FailureKind.PANIC: "panicked",
    FailureKind.TRAP: "trapped",
    FailureKind.OUT_OF_MEMORY: "ran out of memory",
    FailureKind.FUEL_EXHAUSTED: "ran out of fuel",
    FailureKind.CANCELLED: "was cancelled",
    FailureKind.CHILD_FAILED: "failed with a child",
    FailureKind.EXITED: "exited",
    FailureKind.RESTART_INTENSITY: "gave up",
    FailureKind.DISCONNECTED: "lost its link",
    FailureKind.NODE_DOWN: "lost its node",
}


def _describe(failure):
    """How a failure reads in a supervisor's list of recent ends: its first line
    (for a Python traceback, its last: the exception), or, for a supervisor that
    gave up, all of its account."""
    message = failure.message
    if failure.kind is FailureKind.RESTART_INTENSITY:
        message = message.replace("\n", "\n  ")
    else:
        lines = [line for line in message.splitlines() if line.strip()]
        if lines and lines[0].startswith("Traceback (most recent call last):"):
            message = lines[-1]
        else:
            message = lines[0] if lines else ""
    return f"{_ENDS[failure.kind]}: {message}"
