"""Marshalling: a value to and from a WIT `message`. The bytes are the value's
encoding by a *codec* (pickle by default); the endpoints inside the value
(channel ends, sockets) travel beside the bytes and move to the receiver. An
encoding of at most 24 bytes with no endpoints travels by value, as a
`small-message`."""

import io
import pickle

from wit_world.imports import channel as _wit

_SMALL = 24
_WORD = (1 << 64) - 1

# What turns a received WIT endpoint into the SDK's object, by the endpoint's
# WIT case (filled by the modules that define those objects).
_WRAPPERS = {}


def register_endpoint(case, wrap):
    """`wrap(handle)` makes the SDK's object for a received endpoint of `case`."""
    _WRAPPERS[case] = wrap


class _Pickler(pickle.Pickler):
    def __init__(self, file, found):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._found = found

    def persistent_id(self, obj):
        # An endpoint is referred to by its place among the message's endpoints.
        if getattr(type(obj), "_weft_endpoint", None) is None:
            return None
        for i, seen in enumerate(self._found):
            if seen is obj:
                return i
        self._found.append(obj)
        return len(self._found) - 1


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, endpoints):
        super().__init__(file)
        self._endpoints = endpoints

    def persistent_load(self, pid):
        try:
            return self._endpoints[pid]
        except (IndexError, TypeError):
            raise pickle.UnpicklingError(f"the message names endpoint {pid!r}, which it does not carry") from None


class Pickle:
    """The default codec between Python microthreads: pickle (its highest
    protocol), endpoints carried beside the bytes."""

    name = "pickle"

    def encode(self, value):
        found = []
        out = io.BytesIO()
        _Pickler(out, found).dump(value)
        return out.getvalue(), found

    def decode(self, data, endpoints):
        return _Unpickler(io.BytesIO(data), endpoints).load()


class Bytes:
    """Raw bytes, as they are: for channels shared with programs in other
    languages, or the application. Carries no endpoints."""

    name = "bytes"

    def encode(self, value):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"a bytes channel sends bytes, not {type(value).__name__}")
        return bytes(value), []

    def decode(self, data, endpoints):
        return bytes(data)


PICKLE = Pickle()
BYTES = Bytes()


def encode(value, codec=PICKLE):
    """The WIT message for `value`: the endpoints inside it are taken (they move
    with the message, and are no longer usable here) only once the whole value is
    encoded."""
    data, found = codec.encode(value)
    if not found and len(data) <= _SMALL:
        n = int.from_bytes(data, "little")
        return _wit.Message_Small(_wit.SmallMessage(len(data), n & _WORD, (n >> 64) & _WORD, n >> 128))
    return _wit.Message_Large(_wit.LargeMessage(data, [obj._weft_endpoint() for obj in found]))


def decode(message, codec=PICKLE):
    """The value a WIT message carries; its endpoints become the SDK's objects."""
    if isinstance(message, _wit.Message_Small):
        s = message.value
        n = s.w0 | (s.w1 << 64) | (s.w2 << 128)
        return codec.decode(n.to_bytes(_SMALL, "little")[: s.len], [])
    large = message.value
    endpoints = [_WRAPPERS[type(e)](e.value) for e in large.endpoints]
    return codec.decode(large.bytes, endpoints)
