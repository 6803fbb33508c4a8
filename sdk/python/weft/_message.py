"""Marshalling: a value to and from a WIT `message`. The bytes are the value's
encoding by a *codec* (pickle by default); the endpoints inside the value
(channel ends, sockets) travel beside the bytes and move to the receiver. An
encoding of at most 24 bytes with no endpoints travels by value, as a
`small-message`."""

import io
import pickle
import struct

from wit_world.imports import channel as _wit

_SMALL = 24
_WORD = (1 << 64) - 1

# The SDK's class for a received endpoint, by the endpoint's WIT case (each
# subclass of `Endpoint` that names its case).
_WRAPPERS = {}


class Endpoint:
    """What travels beside a message's bytes, and moves: the base of the channel
    ends and the sockets. It holds the host's handle until it is closed here or
    moved into a message. A subclass names its WIT `endpoint` case (`_case`)."""

    __slots__ = ("_h", "__weakref__")
    _kind = "endpoint"
    _case = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._case is not None:
            _WRAPPERS[cls._case] = cls

    def __init__(self, handle):
        self._h = handle

    def _handle(self):
        if self._h is None:
            raise ValueError(f"this {self._kind} was closed, or moved into a message")
        return self._h

    def _weft_endpoint(self):
        """The WIT endpoint, taken out of this object: it moves with a message."""
        handle, self._h = self._handle(), None
        return self._case(handle)

    def close(self):
        """Drop this handle now (otherwise it goes when nothing refers to it); the
        channel end or socket closes with its last handle."""
        handle, self._h = self._h, None
        if handle is not None:
            handle.__exit__(None, None, None)

    @property
    def closed(self):
        """Whether this was closed here, or moved into a message."""
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __reduce__(self):
        raise TypeError(f"a {self._kind} travels only inside a weft message (send it, or pass it to spawn)")


class _Pickler(pickle.Pickler):
    def __init__(self, file, found):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._found = found

    def persistent_id(self, obj):
        # An endpoint is referred to by its place among the message's endpoints.
        if not isinstance(obj, Endpoint):
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


class Cbor:
    """CBOR (RFC 8949): self-describing, for channels shared with programs in
    other languages and the application (`weft::Codec::Cbor`). Carries None,
    booleans, integers (64-bit), floats, strings, bytes, lists (and tuples, sent
    as lists) and dicts; no endpoints."""

    name = "cbor"

    def encode(self, value):
        out = bytearray()
        _cbor_put(out, value)
        return bytes(out), []

    def decode(self, data, endpoints):
        value, end = _cbor_get(memoryview(data), 0)
        if end != len(data):
            raise ValueError(f"CBOR: {len(data) - end} bytes left over after the value")
        return value


def _cbor_head(out, major, n):
    if n < 24:
        out.append(major << 5 | n)
    elif n < 1 << 8:
        out += bytes((major << 5 | 24, n))
    elif n < 1 << 16:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 1 << 32:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    elif n < 1 << 64:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")
    else:
        raise OverflowError(f"CBOR: {n} does not fit 64 bits")


def _cbor_put(out, value):
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _cbor_head(out, 0, value)
        else:
            _cbor_head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _cbor_head(out, 3, len(data))
        out += data
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _cbor_head(out, 2, len(data))
        out += data
    elif isinstance(value, (list, tuple)):
        _cbor_head(out, 4, len(value))
        for item in value:
            _cbor_put(out, item)
    elif isinstance(value, dict):
        _cbor_head(out, 5, len(value))
        for key, item in value.items():
            _cbor_put(out, key)
            _cbor_put(out, item)
    else:
        raise TypeError(f"CBOR carries None, bool, int, float, str, bytes, list and dict, not {type(value).__name__}")


def _cbor_get(data, at):
    """The value at `at`, and where it ends."""
    if at >= len(data):
        raise ValueError("CBOR: the message ends inside a value")
    first = data[at]
    major, info = first >> 5, first & 0x1F
    at += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None, 23: None}
        if info in simple:
            return simple[info], at
        sizes = {25: (2, ">e"), 26: (4, ">f"), 27: (8, ">d")}
        if info in sizes:
            size, form = sizes[info]
            if at + size > len(data):
                raise ValueError("CBOR: the message ends inside a float")
            return struct.unpack(form, data[at : at + size])[0], at + size
        raise ValueError(f"CBOR: simple value {info} is not supported")
    if info == 31:
        return _cbor_indefinite(data, at, major)
    if info < 24:
        n = info
    elif info <= 27:
        size = 1 << (info - 24)
        if at + size > len(data):
            raise ValueError("CBOR: the message ends inside a length")
        n = int.from_bytes(data[at : at + size], "big")
        at += size
    else:
        raise ValueError(f"CBOR: reserved additional information {info}")
    if major == 0:
        return n, at
    if major == 1:
        return -1 - n, at
    if major in (2, 3):
        if at + n > len(data):
            raise ValueError("CBOR: the message ends inside a string")
        raw = bytes(data[at : at + n])
        return (raw if major == 2 else raw.decode("utf-8")), at + n
    if major == 4:
        items = []
        for _ in range(n):
            item, at = _cbor_get(data, at)
            items.append(item)
        return items, at
    if major == 5:
        mapping = {}
        for _ in range(n):
            key, at = _cbor_get(data, at)
            mapping[_hashable(key)], at = _cbor_get(data, at)
        return mapping, at
    # major 6: a tag; its value is taken as it is.
    return _cbor_get(data, at)


def _cbor_indefinite(data, at, major):
    """An indefinite-length string, list or map (ended by 0xFF)."""
    if major in (2, 3):
        chunks = []
        while data[at] != 0xFF:
            chunk, at = _cbor_get(data, at)
            chunks.append(chunk)
        return (b"".join(chunks) if major == 2 else "".join(chunks)), at + 1
    if major == 4:
        items = []
        while data[at] != 0xFF:
            item, at = _cbor_get(data, at)
            items.append(item)
        return items, at + 1
    if major == 5:
        mapping = {}
        while data[at] != 0xFF:
            key, at = _cbor_get(data, at)
            mapping[_hashable(key)], at = _cbor_get(data, at)
        return mapping, at + 1
    raise ValueError(f"CBOR: major type {major} has no indefinite length")


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


PICKLE = Pickle()
BYTES = Bytes()
CBOR = Cbor()


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
