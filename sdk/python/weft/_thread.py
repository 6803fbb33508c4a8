"""Microthreads: `spawn` (at an entry), `JoinHandle`, `sleep`, `yield_now`,
`atomic`, `exit`, who is running (`current_id`, `current_name`)."""

import contextlib
import sys

from componentize_py_types import Err
from wit_world.imports import thread as _wit

from . import _entry, _message
from ._cluster import _target
from ._errors import Cancelled, Failed, Failure, LimitReached, NoSuchNode, Timeout, TooLarge
from ._time import ns


def _spawn_error(refused):
    error = refused.error
    value = _message.decode(refused.argument)
    if isinstance(error, _wit.SpawnError_LimitReached):
        e = LimitReached(f"the run already has its maximum of {error.value} live microthreads", error.value)
    elif isinstance(error, _wit.SpawnError_ArgumentTooLarge):
        e = TooLarge(f"the arguments' encoding is larger than the program's message size limit ({error.value} bytes)")
    elif isinstance(error, _wit.SpawnError_NotSpawnable):
        e = RuntimeError("this program does not export weft:runtime/entry: build it with `weft build`")
    elif isinstance(error, _wit.SpawnError_NoSuchNode):
        e = NoSuchNode(f"no such node: {error.value}")
    elif isinstance(error, _wit.SpawnError_NoSuchProgram):
        e = LookupError(f"the node does not run this program: {error.value}")
    else:
        e = ValueError(f"cannot move to another node: {error.value}")
    e.value = value
    return e


class JoinHandle:
    """A spawned microthread, to join or cancel. Dropping it does not detach the
    microthread: it stays a child of its spawner, which does not finish before
    it; a failure of a child nobody joins fails its parent."""

    __slots__ = ("_h", "name")

    def __init__(self, handle, name):
        self._h = handle
        self.name = name

    @property
    def id(self):
        """The microthread's id, unique within the run."""
        return self._h.id()

    @property
    def node(self):
        """The node it runs on, if another node of the cluster runs it."""
        return self._h.node()

    def join(self, timeout=None):
        """Wait until it has finished: what its function returned. Raises `Failed`
        if it failed (its `.failure` says how, with the traceback of a Python
        exception), `Timeout` past `timeout` seconds if given (it can be joined
        again), `Cancelled` if this microthread is cancelled."""
        try:
            if timeout is None:
                message = self._h.join()
            else:
                message = self._h.join_timeout(ns(timeout, "a timeout"))
        except Err as e:
            error = e.value
            if isinstance(error, _wit.JoinError_Failed):
                raise Failed(Failure._from_wit(error.value)) from None
            if isinstance(error, _wit.JoinError_Timeout):
                raise Timeout(f"microthread {self.id} had not finished in time") from None
            raise Cancelled() from None
        return _message.decode(message)

    def is_finished(self):
        """Whether it has finished."""
        return self._h.is_finished()

    def cancel(self, grace=None):
        """Cancel it: its blocking calls raise `Cancelled` from now on, so that its
        cleanup runs; past the run's grace period (or `grace` seconds), it is
        stopped wherever it is."""
        if grace is None:
            self._h.cancel()
        else:
            self._h.cancel_within(ns(grace, "a grace period"))

    def __repr__(self):
        return f"<weft JoinHandle of microthread {self._h.id()} ({self.name})>"


def spawn(function, *args, name=None, node=None, any_node=False):
    """Start a microthread that calls `function(*args)`, in a fresh instance of
    this program; the arguments are copied (pickled), the endpoints in them move.
    `function` must be an entry (`@weft.entry`). The microthread is named `name`,
    by default the function's name. Raises `LimitReached` when the run already
    has its maximum of live microthreads.

    In a cluster, `node` (a node's id, or a `weft.Node`, as `weft.nodes()` gives
    them) runs it on that node, and `any_node=True` on the live node with the
    most room and the least load (this one included). Its arguments may then
    carry senders, not receivers or sockets (`ValueError`); a node that is not
    live raises `NoSuchNode`, one that runs another program `LookupError`."""
    return _spawn(function, args, name, False, node, any_node)


def spawn_detached(function, *args, name=None):
    """Like `spawn`, but the microthread is nobody's child: the caller does not
    wait for it, and its failure, unless joined, is reported by the run. It is
    cancelled when `main` ends."""
    return _spawn(function, args, name, True, None, False)


def _spawn(function, args, name, detached, node, any_node):
    number = _entry.number(function)
    on_node, node = _target(node, any_node, "spawn")
    if name is None:
        name = getattr(function, "__name__", None)
    argument = _message.encode(args)
    try:
        if not on_node:
            handle = _wit.spawn(_entry.TRAMPOLINE, number, argument, name, detached)
        else:
            handle = _wit.spawn_on(node, _entry.TRAMPOLINE, number, argument, name, detached)
    except Err as e:
        raise _spawn_error(e.value) from None
    return JoinHandle(handle, name)


def yield_now():
    """Let the other microthreads run; come back when the scheduler says so."""
    _wit.yield_now()


def sleep(seconds):
    """Suspend this microthread (only this one) for at least `seconds`. Raises
    `Cancelled` if it is cancelled."""
    try:
        _wit.sleep(ns(seconds))
    except Err:
        raise Cancelled() from None


def is_cancelled():
    """Whether this microthread has been cancelled."""
    return _wit.cancelled()


def own_shutdown():
    """From now on this microthread owns its shutdown, as a supervisor does: its
    cancellation is a notice (one blocking call raises `Cancelled`), and does not
    reach its children."""
    _wit.own_shutdown()


@contextlib.contextmanager
def atomic():
    """A section no fuel slice preempts (they nest): `with weft.atomic(): ...`. A
    blocking call inside ends it."""
    _wit.atomic_begin()
    try:
        yield
    finally:
        _wit.atomic_end()


def exit(code=0):
    """End the whole program with exit code `code` (0-255), from any
    microthread: the others are cancelled."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise ValueError(f"an exit code is a whole number from 0 to 255, not {code!r}")
    sys.stdout.flush()
    sys.stderr.flush()
    _wit.exit(code)


def current_id():
    """The id of the calling microthread (`main` is 0)."""
    return _wit.current_id()


def current_name():
    """The name of the calling microthread (`main` is "main")."""
    return _wit.current_name()
