"""The concurrent prime sieve: a generator of 2, 3, 4, ... feeds a chain of
filter microthreads, each dropping the multiples of its prime. Prints the first
N primes (first argument, default 30).

    weft build pipeline.py && weft run pipeline.wasm 50
"""

import sys

import weft


@weft.entry
def numbers(tx):
    n = 2
    while True:
        try:
            tx.send(n)
        except weft.Closed:
            return  # the sieve has all it needs
        n += 1


@weft.entry
def sift(prime, source, sink):
    for n in source:
        if n % prime:
            try:
                sink.send(n)
            except weft.Closed:
                return


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    source = weft.generate(numbers)
    primes = []
    for _ in range(n):
        prime = source.recv()
        primes.append(prime)
        tx, rx = weft.channel()
        weft.spawn(sift, prime, source, tx)
        source = rx
    # Closing the last receiver closes the chain, filter by filter.
    source.close()
    print(" ".join(map(str, primes)))
