"""Patterns built from spawn and channels: `generate`, `parallel_map`."""

from ._channel import channel
from ._errors import Failed
from ._thread import spawn


def generate(producer, *args, capacity=0):
    """Run `producer(sender, *args)` (an entry) in a new microthread and return
    the receiving end of its channel: a lazy stream of what it sends, which ends
    when the producer returns (iterate it). If the producer fails, the reader's
    `recv` raises `Failed`."""
    tx, rx = channel(capacity)
    spawn(producer, tx, *args)
    return rx


def parallel_map(function, items, concurrency=None):
    """`[function(item) for item in items]`, each call in its own microthread
    (`function` is an entry), at most `concurrency` at once (default: all); the
    results come back in the order of the items. If a call fails, no further ones
    start, those running are joined, and the first failure is raised."""
    items = list(items)
    if concurrency is None:
        concurrency = max(1, len(items))
    if concurrency < 1:
        raise ValueError("parallel_map's concurrency must be 1 or more")
    results = [None] * len(items)
    running = []
    error = None
    next_item = 0
    while next_item < len(items) or running:
        while error is None and next_item < len(items) and len(running) < concurrency:
            running.append((next_item, spawn(function, items[next_item])))
            next_item += 1
        if error is not None and next_item < len(items):
            next_item = len(items)
        if not running:
            break
        i, handle = running.pop(0)
        try:
            results[i] = handle.join()
        except Failed as e:
            if error is None:
                error = e
    if error is not None:
        raise error
    return results
