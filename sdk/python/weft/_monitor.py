"""Monitors: any microthread can watch any other of its program by id
(`JoinHandle.id`, `current_id`; an id is a number and travels in messages).
`monitor(id)` gives a `Receiver` on which exactly one `Down` arrives when the
watched microthread ends, saying how; at once, with kind "no-such", if it is not
live (it ended already, or never was). Closing the receiver ends the monitor. A
monitor makes nobody a parent: it prejoins nothing, cancels nothing, and keeps
nothing alive.

The host sends the postcard encoding of the Rust SDK's `Down` (`wit/runtime.wit`,
at `thread.monitor`): this module's codec decodes it."""

from componentize_py_types import Err
from wit_world.imports import thread as _wit

from ._channel import Receiver, open_error
from ._errors import Failure, FailureKind

# The kinds of failure in the order of WIT's `failure-kind`: a failure's kind on
# the wire is its index here.
_KINDS = list(FailureKind)


class DownOutcome:
    """How a watched microthread ended, as its joiner sees it: `kind` is
    "finished" (it returned; for `main`, also an exit with code 0), "failed" (it
    failed, or was cancelled or stopped: `failure` says how) or "no-such" (it was
    not live when the monitor was made). `failure` is None unless it failed."""

    __slots__ = ("kind", "failure")

    FINISHED = "finished"
    FAILED = "failed"
    NO_SUCH = "no-such"

    def __init__(self, kind, failure=None):
        self.kind = kind
        self.failure = failure

    def __eq__(self, other):
        return (
            isinstance(other, DownOutcome)
            and (self.kind, self.failure is None) == (other.kind, other.failure is None)
            and (
                self.failure is None
                or (self.failure.id, self.failure.name, self.failure.kind, self.failure.message)
                == (other.failure.id, other.failure.name, other.failure.kind, other.failure.message)
            )
        )

    def __repr__(self):
        if self.failure is None:
            return f"DownOutcome({self.kind!r})"
        return f"DownOutcome({self.kind!r}, {self.failure!r})"


class Down:
    """A watched microthread has ended (or was not live): the one value a
    monitor's receiver gets. `id` is the watched microthread's, `name` its name
    (None for "no-such"), `outcome` how it ended."""

    __slots__ = ("id", "name", "outcome")

    def __init__(self, id, name, outcome):
        self.id = id
        self.name = name
        self.outcome = outcome

    def __eq__(self, other):
        return isinstance(other, Down) and (self.id, self.name, self.outcome) == (
            other.id,
            other.name,
            other.outcome,
        )

    def __repr__(self):
        return f"Down(id={self.id}, name={self.name!r}, outcome={self.outcome!r})"


class _Postcard:
    """Reads postcard's encoding: unsigned LEB128 varints, options (byte 0 or 1,
    then the value), strings (a varint length, then UTF-8)."""

    __slots__ = ("data", "at")

    def __init__(self, data):
        self.data = data
        self.at = 0

    def _byte(self, what):
        if self.at >= len(self.data):
            raise ValueError(f"a monitor's message ends inside {what}: this SDK does not match the host")
        b = self.data[self.at]
        self.at += 1
        return b

    def varint(self, what):
        n = 0
        for shift in range(0, 70, 7):
            b = self._byte(what)
            n |= (b & 0x7F) << shift
            if b < 0x80:
                if n >= 1 << 64:
                    break
                return n
        raise ValueError(f"a monitor's message has a varint of more than 64 bits for {what}")

    def string(self, what):
        n = self.varint(what)
        if self.at + n > len(self.data):
            raise ValueError(f"a monitor's message ends inside {what}: this SDK does not match the host")
        raw = bytes(self.data[self.at : self.at + n])
        self.at += n
        return raw.decode("utf-8")

    def option_string(self, what):
        tag = self._byte(what)
        if tag == 0:
            return None
        if tag == 1:
            return self.string(what)
        raise ValueError(f"a monitor's message has option tag {tag} for {what} (0 or 1 expected)")


class _DownCodec:
    """The codec of a monitor's receiver: postcard's `Down`."""

    name = "postcard-down"

    def encode(self, value):
        raise TypeError("a monitor's channel carries only the host's Down: nothing can be sent on it")

    def decode(self, data, endpoints):
        r = _Postcard(data)
        id = r.varint("the id")
        name = r.option_string("the name")
        case = r.varint("the outcome")
        if case == 0:
            outcome = DownOutcome(DownOutcome.FINISHED)
        elif case == 1:
            f_id = r.varint("the failure's id")
            f_name = r.option_string("the failure's name")
            kind = r.varint("the failure's kind")
            message = r.string("the failure's message")
            if kind >= len(_KINDS):
                raise ValueError(
                    f"a Down of microthread {id} has failure kind {kind}, which this SDK does not know "
                    f"(it knows 0 to {len(_KINDS) - 1}): build the program with the weft that runs it"
                )
            outcome = DownOutcome(DownOutcome.FAILED, Failure(f_id, f_name, _KINDS[kind], message))
        elif case == 2:
            outcome = DownOutcome(DownOutcome.NO_SUCH)
        else:
            raise ValueError(
                f"a Down of microthread {id} has outcome {case}, which this SDK does not know "
                "(it knows 0 to 2): build the program with the weft that runs it"
            )
        if r.at != len(data):
            raise ValueError(f"a monitor's message has {len(data) - r.at} bytes left over after its Down")
        return Down(id, name, outcome)


DOWN = _DownCodec()


def monitor(id):
    """Watch microthread `id` of this program: exactly one `Down` arrives on the
    returned `Receiver` when it ends (at once, of kind "no-such", if it is not
    live), then the channel closes. The receiver is one of the run's open
    channels until it is closed, which ends the monitor. Raises `LimitReached` if
    the run already has its maximum of open channels."""
    if isinstance(id, bool) or not isinstance(id, int):
        raise TypeError(f"a microthread's id is a whole number (JoinHandle.id, current_id()), not {id!r}")
    if not 0 <= id < 1 << 64:
        raise ValueError(f"a microthread's id is from 0 to 2**64 - 1, not {id}")
    try:
        return Receiver(_wit.monitor(id), DOWN)
    except Err as e:
        raise open_error(e.value, "a monitor's channel") from None
