"""`select`: complete exactly one of several operations (receives, sends,
timers, sockets becoming ready), waiting only this microthread."""

from wit_world.imports import channel as _wit

from . import _message
from ._channel import Receiver, Sender
from ._errors import Cancelled, Failure, Timeout, TooLarge
from ._time import ns_or_none
from .net import TcpListener, TcpStream


class readable:
    """A select operation: `stream` has bytes to read (or its end)."""

    __slots__ = ("stream",)

    def __init__(self, stream):
        self.stream = stream


class writable:
    """A select operation: `stream` can take bytes."""

    __slots__ = ("stream",)

    def __init__(self, stream):
        self.stream = stream


class Selected:
    """Which operation completed (`index`, its place among the operations), how
    (`kind`: "received", "sent", "closed", "failed", "ready"), and `value`: what
    was received, or the `Failure` of a failed producer. `unsent` holds the values
    of the sends that did not happen, by index."""

    __slots__ = ("index", "kind", "value", "unsent")

    def __init__(self, index, kind, value=None, unsent=None):
        self.index = index
        self.kind = kind
        self.value = value
        self.unsent = unsent or {}

    def __iter__(self):
        return iter((self.index, self.value))

    def __repr__(self):
        return f"Selected(index={self.index}, kind={self.kind!r}, value={self.value!r})"


def _op(op):
    """The WIT operation, and the codec of its channel."""
    if isinstance(op, Receiver):
        return _wit.SelectOp_Recv(op._handle()), op.codec
    if isinstance(op, tuple) and len(op) == 2 and isinstance(op[0], Sender):
        sender, value = op
        return _wit.SelectOp_Send((sender._handle(), _message.encode(value, sender.codec))), sender.codec
    if isinstance(op, TcpListener):
        return _wit.SelectOp_Accept(op._handle()), None
    if isinstance(op, readable) and isinstance(op.stream, TcpStream):
        return _wit.SelectOp_Readable(op.stream._handle()), None
    if isinstance(op, writable) and isinstance(op.stream, TcpStream):
        return _wit.SelectOp_Writable(op.stream._handle()), None
    raise TypeError(
        "select takes receivers, (sender, value) pairs, listeners, readable(stream) and "
        f"writable(stream), not {op!r}"
    )


def _select(ops, timeout, block):
    if not ops:
        raise ValueError("select needs at least one operation")
    wit_ops, codecs = zip(*(_op(op) for op in ops))
    selected, returned = _wit.select(list(wit_ops), ns_or_none(timeout), block)
    unsent = {i: _message.decode(m, codecs[i]) for i, m in enumerate(returned) if m is not None}
    if isinstance(selected, _wit.Selected_Received):
        i, message = selected.value
        return Selected(i, "received", _message.decode(message, codecs[i]), unsent)
    if isinstance(selected, _wit.Selected_Sent):
        return Selected(selected.value, "sent", None, unsent)
    if isinstance(selected, _wit.Selected_Closed):
        return Selected(selected.value, "closed", None, unsent)
    if isinstance(selected, _wit.Selected_Failed):
        i, failure = selected.value
        return Selected(i, "failed", Failure._from_wit(failure), unsent)
    if isinstance(selected, _wit.Selected_Ready):
        return Selected(selected.value, "ready", None, unsent)
    if isinstance(selected, _wit.Selected_Timeout):
        raise Timeout("no operation of the select completed in time")
    if isinstance(selected, _wit.Selected_WouldBlock):
        return None
    if isinstance(selected, _wit.Selected_TooLarge):
        raise TooLarge(f"the value of operation {selected.value} is larger than the message size limit")
    raise Cancelled()


def select(*ops, timeout=None):
    """Complete exactly one of `ops`, waiting until one can: a `Selected`. Among
    several ready ones one is chosen at random, so none starves. Raises `Timeout`
    past `timeout` seconds if given, `Cancelled` if this microthread is
    cancelled. Each op is a `Receiver` (receive; a timer from `after` or `tick`
    is one), a `(sender, value)` pair (send), a `TcpListener` (a connection
    waits), `readable(stream)` or `writable(stream)`."""
    return _select(ops, timeout, True)


def try_select(*ops):
    """Like `select`, but only if an operation is ready now: None otherwise."""
    return _select(ops, None, False)
