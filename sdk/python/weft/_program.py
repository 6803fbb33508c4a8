"""What `weft build` wraps a program in: import the program's module (at build
time: its top level registers the entries) and export what starts it."""

import importlib

from . import _entry


def load(module_name):
    """Import the program's module and return the exports (`Run`, `Entry`)."""
    module = importlib.import_module(module_name)
    main = getattr(module, "main", None)
    if not callable(main):
        raise SystemExit(
            f"weft build: {module_name}.py defines no main(): a program's entry point is a "
            "function main() at module level"
        )
    return _entry.runner(main), _entry.Entry
