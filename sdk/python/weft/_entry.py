"""How a program starts: the registry of entries (the functions a microthread
can be spawned at), the `wasi:cli/run` export that calls the program's `main`,
and the `entry` export a spawned microthread starts in; both report an exception
that escapes as the microthread's failure, with its traceback.

The registry is filled at module top level, which the build runs ahead of time
(componentize-py pre-initialises the program), so it is the same in every
instance: an entry's number, its place in the registry, names the same function
in all of them. Registering while the program runs is refused: an instance that
did not run the same code would not have the entry."""

import os
import sys
import traceback

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import thread as _wit

from . import _message
from ._errors import Cancelled

_entries = []
_running = False

# The first number of an entry (the Rust SDK's trampoline): the same for every
# entry of a Python program.
TRAMPOLINE = 0


def entry(function):
    """Register `function` as an entry: a function that `spawn` can start a
    microthread at. Use it as a decorator on a function defined at module top
    level."""
    if _running:
        raise RuntimeError(
            f"weft.entry({_describe(function)}): entries are registered at module top level, "
            "before the program runs (the build runs that code ahead of time); this call came "
            "while it runs, so other instances of the program would not have the entry"
        )
    if not callable(function):
        raise TypeError(f"weft.entry registers a function, not {type(function).__name__}")
    if getattr(function, "__name__", "") == "<lambda>":
        raise TypeError("weft.entry registers a function defined with def at module top level, not a lambda")
    if "<locals>" in getattr(function, "__qualname__", ""):
        raise TypeError(
            f"weft.entry({function.__qualname__}): a nested function (a closure) cannot be an entry: "
            "define it at module top level"
        )
    if function not in _entries:
        _entries.append(function)
    return function


def number(function):
    """The entry number of `function`, or a `TypeError` saying how to register it."""
    for i, registered in enumerate(_entries):
        if registered is function:
            return i
    raise TypeError(
        f"cannot spawn {_describe(function)}: it is not an entry. Decorate it with @weft.entry "
        "where it is defined, at module top level (a lambda or a nested function cannot be one)"
    )


def _describe(function):
    return getattr(function, "__qualname__", None) or repr(function)


def _started():
    global _running
    _running = True


def _fail(exc):
    """End this microthread failed, with the exception's traceback as its panic
    message: it aborts, which the host reports as a panic with that message."""
    # The traceback from the program's own frames: the first is this module's.
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    message = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    _wit.set_panic_message(message)
    sys.stdout.flush()
    sys.stderr.flush()
    os.abort()


def _exit(exc):
    """`sys.exit(code)`: the whole program ends with the code (a non-int code
    is printed, and the program exits with 1, as Python does)."""
    code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    _wit.exit(code & 0xFF)


class Entry(_exports.Entry):
    """Where a spawned microthread starts: the entry's function is called with
    the arguments the spawn passed; what it returns goes to the joiner."""

    def run(self, trampoline, function, argument):
        _started()
        try:
            if trampoline != TRAMPOLINE or not 0 <= function < len(_entries):
                raise RuntimeError(f"this program has no entry ({trampoline}, {function})")
            args = _message.decode(argument)
            return _message.encode(_entries[function](*args))
        except Cancelled:
            # Cancelled, it ends cancelled: that is what its joiner sees.
            return _message.encode(None)
        except SystemExit as exc:
            _exit(exc)
        except BaseException as exc:
            _fail(exc)


def runner(main):
    """The `wasi:cli/run` export for a program whose entry point is `main`."""

    class Run(_exports.Run):
        def run(self):
            _started()
            try:
                main()
            except Cancelled:
                return
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    _exit(exc)
            except BaseException as exc:
                _fail(exc)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()

    return Run
