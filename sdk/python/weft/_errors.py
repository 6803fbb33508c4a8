"""Failures and errors: how a microthread finished when it did not return
(`Failure`), and why one call gave no value (the exceptions)."""

import enum

from wit_world.imports import weft_runtime_types as _types


class FailureKind(enum.Enum):
    """What kind of end a failure was (the WIT's `failure-kind`)."""

    PANIC = "panic"
    TRAP = "trap"
    OUT_OF_MEMORY = "out-of-memory"
    FUEL_EXHAUSTED = "fuel-exhausted"
    CANCELLED = "cancelled"
    CHILD_FAILED = "child-failed"
    EXITED = "exited"
    RESTART_INTENSITY = "restart-intensity"
    DISCONNECTED = "disconnected"
    NODE_DOWN = "node-down"


_KINDS = {
    _types.FailureKind.PANIC: FailureKind.PANIC,
    _types.FailureKind.TRAP: FailureKind.TRAP,
    _types.FailureKind.OUT_OF_MEMORY: FailureKind.OUT_OF_MEMORY,
    _types.FailureKind.FUEL_EXHAUSTED: FailureKind.FUEL_EXHAUSTED,
    _types.FailureKind.CANCELLED: FailureKind.CANCELLED,
    _types.FailureKind.CHILD_FAILED: FailureKind.CHILD_FAILED,
    _types.FailureKind.EXITED: FailureKind.EXITED,
    _types.FailureKind.RESTART_INTENSITY: FailureKind.RESTART_INTENSITY,
    _types.FailureKind.DISCONNECTED: FailureKind.DISCONNECTED,
    _types.FailureKind.NODE_DOWN: FailureKind.NODE_DOWN,
}


class Failure:
    """How a microthread failed: its id, its name, the kind, and the message (for
    a Python exception, its traceback)."""

    __slots__ = ("id", "name", "kind", "message")

    def __init__(self, id, name, kind, message):
        self.id = id
        self.name = name
        self.kind = kind
        self.message = message

    @classmethod
    def _from_wit(cls, f):
        return cls(f.id, f.name, _KINDS[f.kind], f.message)

    def __repr__(self):
        return f"Failure(id={self.id}, name={self.name!r}, kind={self.kind.value}, message={self.message!r})"

    def __str__(self):
        who = f"microthread {self.id}" + (f" ({self.name})" if self.name else "")
        return f"{who} failed ({self.kind.value}): {self.message}"


class WeftError(Exception):
    """The base of weft's errors."""


class Closed(WeftError):
    """The channel is closed: for a send, every receiver is gone (the value comes
    back as `.value`); for a receive, every sender is gone and the buffer is
    drained."""

    def __init__(self, message="the channel is closed", value=None):
        super().__init__(message)
        self.value = value


class Full(WeftError):
    """`try_send`: the channel is full, or no receiver waits on a rendezvous
    channel. The value comes back as `.value`."""

    def __init__(self, value=None):
        super().__init__("the channel is full")
        self.value = value


class Empty(WeftError):
    """`try_recv`: nothing to receive now."""

    def __init__(self):
        super().__init__("the channel is empty")


class Timeout(WeftError, TimeoutError):
    """The call's timeout ran out. For a send, the value comes back as `.value`."""

    def __init__(self, message="timed out", value=None):
        super().__init__(message)
        self.value = value


class TooLarge(WeftError):
    """The value's encoding is larger than the program's message size limit. For a
    send, the value comes back as `.value`."""

    def __init__(self, message, value=None):
        super().__init__(message)
        self.value = value


class LimitReached(WeftError):
    """The run already has its maximum of something (live microthreads, channels,
    sockets): the message says which, and `.limit` the maximum."""

    def __init__(self, message, limit):
        super().__init__(message)
        self.limit = limit


class Failed(WeftError):
    """A microthread failed: the one joined, or a producer of the channel received
    from. `.failure` says how."""

    def __init__(self, failure):
        super().__init__(str(failure))
        self.failure = failure


class Disconnected(WeftError):
    """A channel's remote end lost its link to its node: `.failure` says why; for
    a send, the value comes back as `.value`."""

    def __init__(self, failure, value=None):
        super().__init__(str(failure))
        self.failure = failure
        self.value = value


class NoSuchNode(WeftError, LookupError):
    """A spawn on another node was refused: the node is not a live node of the
    cluster, or it went down before it answered, or this program runs in no
    cluster (the message says which). The arguments come back as `.value`."""

    def __init__(self, message, value=None):
        super().__init__(message)
        self.value = value


class Cancelled(BaseException):
    """This microthread was cancelled: every blocking call of it raises this, so
    that its cleanup (`finally`, `with`) runs. Like asyncio's `CancelledError`, it
    is not an `Exception`, so that `except Exception` does not swallow it. One
    escaping a microthread ends it as cancelled (no traceback is reported)."""

    def __init__(self):
        super().__init__("this microthread was cancelled")
