"""A module of the test program's own, beside it: its entries are registered
when the program imports it."""

import weft


@weft.entry
def double(x):
    return 2 * x
