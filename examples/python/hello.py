"""Hello from four microthreads: each squares its number in an instance of its
own; main joins them in order.

    weft build hello.py && weft run hello.wasm
"""

import weft


@weft.entry
def square(n):
    print(f"microthread {weft.current_id()} ({weft.current_name()}) squares {n}")
    return n * n


def main():
    handles = [weft.spawn(square, n) for n in range(1, 5)]
    squares = [h.join() for h in handles]
    print(f"hello from Python: the squares are {squares}, their sum {sum(squares)}")
