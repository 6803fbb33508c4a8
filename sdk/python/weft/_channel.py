"""Channels: `channel()` opens one; its ends (`Sender`, `Receiver`) send and
receive values, encoded by the channel's codec (pickle by default); timers
(`after`, `tick`) are receivers too; the application's channels come from
`host_sender` and `host_receiver`."""

from componentize_py_types import Err
from wit_world.imports import channel as _wit

from . import _message
from ._errors import (
    Cancelled,
    Closed,
    Disconnected,
    Empty,
    Failed,
    Failure,
    Full,
    LimitReached,
    Timeout,
    TooLarge,
)
from ._time import ns, ns_or_none


def send_error(error, codec):
    """The exception for a WIT `send-error`: the value comes back on it."""
    if isinstance(error, _wit.SendError_Cancelled):
        return Cancelled()
    if isinstance(error, _wit.SendError_Disconnected):
        message, failure = error.value
        return Disconnected(Failure._from_wit(failure), _message.decode(message, codec))
    value = _message.decode(error.value, codec)
    if isinstance(error, _wit.SendError_Closed):
        return Closed("every receiver of the channel is gone", value)
    if isinstance(error, _wit.SendError_Full):
        return Full(value)
    if isinstance(error, _wit.SendError_Timeout):
        return Timeout("the send timed out", value)
    return TooLarge("the value's encoding is larger than the program's message size limit", value)


def recv_error(error):
    """The exception for a WIT `recv-error`."""
    if isinstance(error, _wit.RecvError_Closed):
        return Closed("every sender of the channel is gone")
    if isinstance(error, _wit.RecvError_Empty):
        return Empty()
    if isinstance(error, _wit.RecvError_Timeout):
        return Timeout("the receive timed out")
    if isinstance(error, _wit.RecvError_Failed):
        return Failed(Failure._from_wit(error.value))
    return Cancelled()


def open_error(error, what):
    if isinstance(error, _wit.OpenError_CapacityTooLarge):
        return ValueError(f"{what} is over the program's limit of {error.value}")
    return LimitReached(f"the run already has its maximum of {error.value} open channels", error.value)


class _End(_message.Endpoint):
    """What both ends share: the channel, the codec."""

    __slots__ = ("codec",)
    _kind = "end"

    def __init__(self, handle, codec=_message.PICKLE):
        super().__init__(handle)
        self.codec = codec

    @property
    def id(self):
        """The channel's id, unique among the run's channels."""
        return self._handle().id()

    def clone(self):
        """Another end of the same channel, with the same codec."""
        return type(self)(self._handle().clone(), self.codec)

    def __repr__(self):
        state = "closed" if self._h is None else f"channel {self._h.id()}"
        return f"<weft {self._kind} of {state}>"


class Sender(_End):
    """The sending end of a channel."""

    __slots__ = ()
    _kind = "sender"
    _case = _wit.Endpoint_Sender

    def send(self, value, timeout=None):
        """Send `value`, waiting (only this microthread) while the channel is full;
        on a rendezvous channel, until a receiver has taken it. With `timeout`
        (seconds), raise `Timeout` past it. Raises `Closed` once every receiver is
        gone (the value is on the error)."""
        handle = self._handle()
        message = _message.encode(value, self.codec)
        try:
            if timeout is None:
                handle.send(message)
            else:
                handle.send_timeout(message, ns(timeout, "a timeout"))
        except Err as e:
            raise send_error(e.value, self.codec) from None

    def try_send(self, value):
        """Send only if that needs no waiting: raises `Full` otherwise."""
        handle = self._handle()
        try:
            handle.try_send(_message.encode(value, self.codec))
        except Err as e:
            raise send_error(e.value, self.codec) from None

    def call(self, value, reply, timeout=None):
        """Send `value`, then receive from `reply` (a `Receiver`), in one host
        call: a request and its answer."""
        handle = self._handle()
        try:
            message = handle.send_then_recv(
                _message.encode(value, self.codec), reply._handle(), ns_or_none(timeout)
            )
        except Err as e:
            error = e.value
            if isinstance(error, _wit.SendRecvError_Send):
                raise send_error(error.value, self.codec) from None
            raise recv_error(error.value) from None
        return _message.decode(message, reply.codec)


class Receiver(_End):
    """The receiving end of a channel. Iterating receives until the channel is
    closed."""

    __slots__ = ()
    _kind = "receiver"
    _case = _wit.Endpoint_Receiver

    def recv(self, timeout=None):
        """Receive, waiting (only this microthread) until a value arrives. Raises
        `Closed` once every sender is gone and the buffer is drained, `Failed` when
        a producer failed, and `Timeout` past `timeout` (seconds) if given."""
        handle = self._handle()
        try:
            if timeout is None:
                message = handle.recv()
            else:
                message = handle.recv_timeout(ns(timeout, "a timeout"))
        except Err as e:
            raise recv_error(e.value) from None
        return _message.decode(message, self.codec)

    def try_recv(self):
        """Receive only if that needs no waiting: raises `Empty` otherwise."""
        try:
            message = self._handle().try_recv()
        except Err as e:
            raise recv_error(e.value) from None
        return _message.decode(message, self.codec)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except Closed:
                return


def channel(capacity=0, codec=_message.PICKLE):
    """Open a channel of `capacity` buffered values (0: a rendezvous, where a send
    waits for its receiver): `(sender, receiver)`."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise ValueError(f"a channel's capacity is a whole number, 0 or more, not {capacity!r}")
    try:
        tx, rx = _wit.open(capacity)
    except Err as e:
        raise open_error(e.value, f"capacity {capacity}") from None
    return Sender(tx, codec), Receiver(rx, codec)


class _Tick:
    """A timer's messages are empty: each is received as `None`."""

    name = "tick"

    def encode(self, value):
        raise TypeError("a timer's channel carries no values to send")

    def decode(self, data, endpoints):
        return None


_TICK = _Tick()


def after(seconds):
    """A receiver that gets `None` once, `seconds` from now: a timeout to select
    on."""
    try:
        return Receiver(_wit.timer(ns(seconds), None), _TICK)
    except Err as e:
        raise open_error(e.value, "a timer") from None


def tick(seconds):
    """A receiver that gets `None` every `seconds` (a tick that finds the last one
    unread is dropped), until it is closed."""
    every = ns(seconds)
    if every == 0:
        raise ValueError("a tick's period must be more than zero")
    try:
        return Receiver(_wit.timer(every, every), _TICK)
    except Err as e:
        raise open_error(e.value, "a timer") from None


def host_sender(name, codec=_message.BYTES):
    """The sender the application gave the run under `name`, or None: the first
    call takes it. Its values are bytes unless `codec` says otherwise."""
    handle = _wit.host_sender(name)
    return None if handle is None else Sender(handle, codec)


def host_receiver(name, codec=_message.BYTES):
    """The receiver the application gave the run under `name`, or None: the first
    call takes it. Its values are bytes unless `codec` says otherwise."""
    handle = _wit.host_receiver(name)
    return None if handle is None else Receiver(handle, codec)
