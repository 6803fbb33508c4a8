"""Seconds (a float, Python's unit of time) as the nanoseconds every WIT
timeout, sleep and timer takes."""


def ns(seconds, what="a duration"):
    """`seconds` as whole nanoseconds; a negative or non-number is refused."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} is a number of seconds, not {type(seconds).__name__}")
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{what} must be zero or more seconds, not {seconds!r}")
    return min(int(seconds * 1_000_000_000), (1 << 64) - 1)


def ns_or_none(seconds, what="a timeout"):
    return None if seconds is None else ns(seconds, what)
