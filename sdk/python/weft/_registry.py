"""Named endpoints, one registry per run: `register` a sender under a name,
`whereis` finds it from any microthread (a restarted server is found again)."""

from componentize_py_types import Err
from wit_world.imports import registry as _wit

from ._channel import Sender
from ._errors import LimitReached
from ._message import PICKLE


def register(name, sender):
    """Register another sender of `sender`'s channel under `name`, until this
    microthread ends. Raises `KeyError` if a live microthread holds the name."""
    try:
        _wit.register(name, f"python/{sender.codec.name}", sender._handle())
    except Err as e:
        error = e.value
        if isinstance(error, _wit.RegisterError_Taken):
            raise KeyError(f"the name {name!r} is registered by microthread {error.value}") from None
        if isinstance(error, _wit.RegisterError_TakenOn):
            raise KeyError(f"the name {name!r} is registered on node {error.value}") from None
        if isinstance(error, _wit.RegisterError_TooManyHandles):
            raise LimitReached(f"the run's microthreads already hold its maximum of {error.value} handles", error.value) from None
        raise ValueError(f"the name {name!r} is longer than the host keeps ({error.value} bytes)") from None


def whereis(name, codec=PICKLE):
    """The sender registered under `name` (another sender of its channel), or
    None."""
    found = _wit.whereis(name)
    if found is None:
        return None
    handle, _fingerprint = found
    return Sender(handle, codec)
