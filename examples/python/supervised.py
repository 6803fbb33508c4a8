"""A supervised worker pool: three workers take jobs from one channel and square
them; a negative job makes a worker raise, and its supervisor starts a fresh one
in its place (a new instance: nothing of the crashed one survives). Each worker
says when it starts, so main sees the restarts as they happen; at the end it
asks the supervisor for its children and shuts the pool down.

    weft build supervised.py && weft run --stats supervised.wasm
"""

import weft
from weft.supervisor import Child, Strategy, Supervisor

JOBS = [1, 2, -3, 4, 5, -6, 7]


@weft.entry
def worker(name, jobs, events):
    events.send(("started", name))
    for job in jobs:
        if job < 0:
            raise ValueError(f"{name} cannot take job {job}")
        events.send(("done", job, job * job))


def main():
    bad = sum(1 for job in JOBS if job < 0)
    jobs_tx, jobs_rx = weft.channel()
    # Room for every event, so that a worker never waits on main.
    events_tx, events_rx = weft.channel(3 + bad + len(JOBS))
    pool = Supervisor("pool", strategy=Strategy.ONE_FOR_ONE, intensity=(5, 10.0))
    for i in range(1, 4):
        pool.child(Child(f"worker-{i}", worker, f"worker-{i}", jobs_rx, events_tx))
    handle = pool.start()

    for job in JOBS:
        jobs_tx.send(job)
    started, squares, restarts = set(), {}, 0
    while len(squares) < len(JOBS) - bad or restarts < bad:
        event = events_rx.recv()
        if event[0] == "started":
            if event[1] in started:
                restarts += 1
                print(f"{event[1]} failed on a bad job and was restarted")
            started.add(event[1])
        else:
            squares[event[1]] = event[2]
    print("squares:", [squares[job] for job in JOBS if job >= 0])

    children = handle.which_children()
    for child in children:
        times = "time" if child.restarts == 1 else "times"
        print(f"{child.name}: {child.state.value}, restarted {child.restarts} {times}")
    print("restarts:", sum(child.restarts for child in children))
    handle.shutdown()
    handle.join()
    print("the pool is shut down")
