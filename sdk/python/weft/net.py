"""TCP sockets on the host's reactor, with an interface like the `socket`
module's: a call that waits (accept, connect, recv, send) suspends only the
calling microthread. Nothing is allowed unless the run grants it (`weft run
--listen ADDR`, `--connect ADDR`): a denied bind or connect raises
`PermissionError` naming the address. Listeners and streams move between
microthreads like channel ends (in spawn arguments and messages)."""

from componentize_py_types import Err
from wit_world.imports import channel as _wit_channel
from wit_world.imports import net as _wit

from . import _message
from ._errors import Cancelled, LimitReached, Timeout
from ._time import ns_or_none

_IO = {
    _wit.IoErrorKind.CONNECTION_REFUSED: ConnectionRefusedError,
    _wit.IoErrorKind.CONNECTION_RESET: ConnectionResetError,
    _wit.IoErrorKind.CONNECTION_ABORTED: ConnectionAbortedError,
    _wit.IoErrorKind.BROKEN_PIPE: BrokenPipeError,
}


def _error(error):
    """The exception for a WIT `net-error`."""
    if isinstance(error, _wit.NetError_PermissionDenied):
        return PermissionError(error.value)
    if isinstance(error, _wit.NetError_InvalidAddress):
        return ValueError(error.value)
    if isinstance(error, _wit.NetError_TooManySockets):
        return LimitReached(f"the run already has its maximum of {error.value} open sockets", error.value)
    if isinstance(error, _wit.NetError_TimedOut):
        return Timeout("the socket operation timed out")
    if isinstance(error, _wit.NetError_Cancelled):
        return Cancelled()
    kind, message = error.value
    return _IO.get(kind, OSError)(message)


class _Socket(_message.Endpoint):
    """What listeners and streams share: their address, another handle."""

    __slots__ = ()
    _kind = "socket"

    @property
    def local_address(self):
        """This end's address, as text (`127.0.0.1:8080`)."""
        return self._handle().local_address()

    def dup(self):
        """Another handle to the same socket."""
        return type(self)(self._handle().share())


class TcpListener(_Socket):
    """A socket listening for TCP connections."""

    __slots__ = ()
    _kind = "listener"
    _case = _wit_channel.Endpoint_TcpListener

    def accept(self, timeout=None):
        """Wait (only this microthread) for a connection: a `TcpStream`."""
        try:
            return TcpStream(self._handle().accept(ns_or_none(timeout)))
        except Err as e:
            raise _error(e.value) from None

    def __iter__(self):
        """Accept connections, one after another."""
        while True:
            yield self.accept()


class TcpStream(_Socket):
    """A TCP connection."""

    __slots__ = ()
    _kind = "stream"
    _case = _wit_channel.Endpoint_TcpStream

    @property
    def peer_address(self):
        """The other end's address."""
        return self._handle().peer_address()

    def recv(self, max=65536, timeout=None):
        """Up to `max` bytes, waiting until some arrive: `b""` at the end of the
        stream."""
        try:
            return self._handle().read(max, ns_or_none(timeout))
        except Err as e:
            raise _error(e.value) from None

    def send(self, data, timeout=None):
        """Write some of `data`, waiting until the socket takes some: how many."""
        try:
            return self._handle().write(bytes(data), ns_or_none(timeout))
        except Err as e:
            raise _error(e.value) from None

    def sendall(self, data, timeout=None):
        """Write all of `data`."""
        view = memoryview(bytes(data))
        while view:
            view = view[self.send(view, timeout) :]

    def shutdown(self, how="both"):
        """Close one direction (`"read"`, `"write"`) or both."""
        cases = {"read": _wit.Shutdown.READ, "write": _wit.Shutdown.WRITE, "both": _wit.Shutdown.BOTH}
        if how not in cases:
            raise ValueError(f"shutdown takes 'read', 'write' or 'both', not {how!r}")
        try:
            self._handle().shutdown(cases[how])
        except Err as e:
            raise _error(e.value) from None

    def set_nodelay(self, nodelay=True):
        """Turn Nagle's algorithm off (`True`) or on."""
        try:
            self._handle().set_nodelay(nodelay)
        except Err as e:
            raise _error(e.value) from None


def bind(address):
    """Listen on `address` (`"127.0.0.1:0"` lets the system choose the port)."""
    try:
        return TcpListener(_wit.bind(address))
    except Err as e:
        raise _error(e.value) from None


def connect(address, timeout=None):
    """Connect to `address`, waiting at most `timeout` seconds if given."""
    try:
        return TcpStream(_wit.connect(address, ns_or_none(timeout)))
    except Err as e:
        raise _error(e.value) from None
