"""The Python SDK's test program: one mode per run (the first argument), each
printing what `host/tests/python.rs` checks. One program for all of them, since
a Python component takes seconds to compile."""

import sys
import time

import weft
import helper
from weft.supervisor import Child, Restart, Strategy, Supervisor


@weft.entry
def square(x):
    return x * x


@weft.entry
def add(a, b, c=0):
    return a + b + c


@weft.entry
def produce(tx, n):
    for i in range(n):
        tx.send(i)


@weft.entry
def boom(x):
    raise ValueError(f"boom {x}")


@weft.entry
def sleeper(started, done):
    started.send(None)
    try:
        weft.sleep(3600)
    finally:
        done.try_send("cleaned up")


@weft.entry
def echo_first(rx, reply):
    reply.send(("got", rx.recv()))


@weft.entry
def make_channel():
    tx, rx = weft.channel(4)
    tx.send("inside")
    return rx


@weft.entry
def handle(stream):
    with stream:
        while True:
            data = stream.recv(1024)
            if not data:
                return
            stream.sendall(data.upper())


@weft.entry
def serve(listener, n):
    with listener:
        for _ in range(n):
            weft.spawn(handle, listener.accept())


@weft.entry
def hold(rx):
    for _ in rx:
        pass


@weft.entry
def exits(code):
    weft.exit(code)


@weft.entry
def sys_exits(code):
    sys.exit(code)


@weft.entry
def registers(name, tx, go):
    weft.register(name, tx)
    go.recv()


@weft.entry
def wait_then(go, fail):
    go.recv()
    if fail:
        raise ValueError("down with a failure")
    return "ok"


@weft.entry
def sup_worker(name, jobs, results):
    for job in jobs:
        if job == "bad":
            raise ValueError(f"{name} got a bad job")
        results.send((name, job * 2))


@weft.entry
def sup_quick():
    return "done"


@weft.entry
def sup_crash():
    raise RuntimeError("always crashes")


@weft.entry
def sup_waiter(name, started):
    started.send(name)
    try:
        weft.sleep(3600)
    finally:
        print("stopped", name, flush=True)


@weft.entry
def sup_failer(name, started, jobs):
    started.send(name)
    try:
        jobs.recv()
    finally:
        print("stopped", name, flush=True)
    raise ValueError(f"{name} failed")


def basics():
    handles = [weft.spawn(square, i) for i in range(1, 5)]
    print("squares", [h.join() for h in handles], handles[0].name)
    print("add", weft.spawn(add, 1, 2).join(), weft.spawn(add, 1, 2, 3, name="adder").join())
    print("helper", weft.spawn(helper.double, 21).join())
    h = weft.spawn(square, 9)
    print("ids", weft.current_id(), weft.current_name(), h.id > 0)
    h.join()
    print("finished", h.is_finished())

    tx, rx = weft.channel(2)
    tx.send(1)
    tx.try_send({"two": [2]})
    try:
        tx.try_send(3)
    except weft.Full as e:
        print("full", e.value)
    try:
        tx.send(3, timeout=0.01)
    except weft.Timeout as e:
        print("send timeout", e.value, isinstance(e, TimeoutError))
    print("recv", rx.recv(), rx.try_recv())
    try:
        rx.try_recv()
    except weft.Empty:
        print("empty")
    try:
        rx.recv(timeout=0.01)
    except weft.Timeout:
        print("recv timeout")
    big = "x" * 100_000
    tx.send(big)
    print("large", rx.recv() == big)
    copy = tx.clone()
    with tx:
        pass
    print("closed here", tx.closed, copy.closed)
    copy.close()
    try:
        rx.recv()
    except weft.Closed:
        print("closed")

    print("generate", list(weft.generate(produce, 5)))
    tx, rx = weft.channel()
    weft.spawn(produce, tx, 3)
    tx.close()
    print("iterate", sum(rx))
    print("parallel_map", weft.parallel_map(square, range(6), concurrency=2))

    tx, rx = weft.channel(1)
    tx.send("ready")
    sel = weft.select(weft.after(5), rx)
    print("select received", sel.index, sel.kind, sel.value)
    try:
        weft.select(rx, timeout=0.01)
    except weft.Timeout:
        print("select timeout")
    sel = weft.select(rx, weft.after(0.01))
    print("select timer", sel.index, sel.kind, sel.value)
    print("try_select", weft.try_select(rx))
    sel = weft.select((tx, "sent by select"))
    print("select sent", sel.index, sel.kind, rx.recv())
    ticks = weft.tick(0.001)
    print("ticks", [ticks.recv() for _ in range(3)])
    ticks.close()

    with weft.atomic():
        n = sum(range(1000))
    weft.yield_now()
    weft.sleep(0.001)
    print("atomic", n)

    tx, rx = weft.channel(1)
    go_tx, go_rx = weft.channel()
    r = weft.spawn(registers, "service", tx, go_rx)
    while (found := weft.whereis("service")) is None:
        weft.yield_now()
    found.send("via registry")
    print("registry", rx.recv())
    go_tx.send(None)
    r.join()


def endpoints():
    tx, rx = weft.channel(1)
    reply_tx, reply_rx = weft.channel(1)
    carrier_tx, carrier_rx = weft.channel(1)
    carrier_tx.send({"rx": rx, "label": "moved"})
    print("moved", tx.closed, rx.closed)
    try:
        rx.recv()
    except ValueError as e:
        print("use after move:", e)
    got = carrier_rx.recv()
    weft.spawn(echo_first, got["rx"], reply_tx)
    tx.send("hello")
    print("reply", reply_rx.recv(), got["label"])
    inside = weft.spawn(make_channel).join()
    print("returned end", inside.recv())
    try:
        import pickle

        pickle.dumps(tx)
    except TypeError as e:
        print("pickle outside:", e)


def fail():
    try:
        weft.spawn(boom, 7).join()
    except weft.Failed as e:
        f = e.failure
        print("failed", f.kind.value, f.name)
        print("traceback has", "boom 7" in f.message, "in boom" in f.message, "Traceback" in f.message)
        print("no wasm backtrace", "wasm backtrace" not in f.message)


def unjoined():
    weft.spawn(boom, 8)
    weft.sleep(3600)


def main_raises():
    raise KeyError("from main")


def cancel():
    done_tx, done_rx = weft.channel(1)
    started_tx, started_rx = weft.channel()
    h = weft.spawn(sleeper, started_tx, done_tx)
    started_rx.recv()
    h.cancel()
    try:
        h.join()
    except weft.Failed as e:
        print("cancelled", e.failure.kind.value)
    print("cleanup", done_rx.recv())


def unregistered():
    try:
        weft.spawn(lambda x: x, 1)
    except TypeError as e:
        print("lambda:", e)

    def inner():
        pass

    try:
        weft.spawn(inner)
    except TypeError as e:
        print("nested:", e)
    try:
        weft.entry(square)
    except RuntimeError as e:
        print("late:", e)


def net():
    listener = weft.net.bind("127.0.0.1:0")
    address = listener.local_address
    server = weft.spawn(serve, listener, 2)
    for word in [b"first", b"second"]:
        with weft.net.connect(address) as s:
            s.sendall(word)
            s.shutdown("write")
            got = b""
            while chunk := s.recv():
                got += chunk
            print("echo", got.decode())
    server.join()
    try:
        weft.net.connect("127.0.0.2:80")
    except PermissionError as e:
        print("denied:", e)


def limit():
    held = []
    tx, rx = weft.channel()
    try:
        while True:
            held.append(weft.spawn(hold, rx.clone()))
    except weft.LimitReached as e:
        print("limit reached after", len(held), "limit", e.limit)
    tx.close()
    for h in held:
        h.join()


def exit_child():
    weft.spawn(exits, 4).join()


def exit_sys():
    weft.spawn(sys_exits, 5).join()


def exit_main():
    sys.exit(3)


def args():
    print("args", sys.argv[2:])


def race():
    # Deterministic under --seed: the interleaving of four counters.
    tx, rx = weft.channel(16)
    hs = [weft.spawn(produce, tx.clone(), 5) for _ in range(4)]
    tx.close()
    print("order", list(rx))
    for h in hs:
        h.join()


def host_cbor():
    # The application's channels, in CBOR: dicts in, dicts out.
    jobs = weft.host_receiver("jobs", codec=weft.CBOR)
    results = weft.host_sender("results", codec=weft.CBOR)
    for job in jobs:
        results.send(
            {
                "name": job["name"].upper(),
                "area": job["width"] * job["height"],
                "tags": sorted(job["tags"]),
                "ratio": job["width"] / job["height"],
                "raw": bytes(reversed(job["raw"])),
            }
        )


@weft.entry
def trivial():
    pass


@weft.entry
def napper(seconds):
    weft.sleep(seconds)


def bench_spawn():
    # A measurement for the goal table (benches), not a test: N spawn→join one at
    # a time, after one to warm up.
    n = int(sys.argv[2])
    weft.spawn(trivial).join()
    start = time.monotonic_ns()
    for _ in range(n):
        weft.spawn(trivial).join()
    print(f"elapsed_ns {time.monotonic_ns() - start}")


def bench_sleepers():
    # N microthreads asleep for MS milliseconds: the goal table reads the memory.
    n, ms = int(sys.argv[2]), int(sys.argv[3])
    handles = [weft.spawn(napper, ms / 1000) for _ in range(n)]
    for h in handles:
        h.join()


def monitors():
    go_tx, go_rx = weft.channel()
    h = weft.spawn(wait_then, go_rx.clone(), False, name="watched")
    down_rx = weft.monitor(h.id)
    go_tx.send(None)
    down = down_rx.recv()
    print("down", down.id == h.id, down.name, down.outcome.kind, down.outcome.failure)
    try:
        down_rx.recv()
    except weft.Closed:
        print("then closed")
    h.join()

    h = weft.spawn(wait_then, go_rx, True, name="failing")
    down_rx = weft.monitor(h.id)
    go_tx.send(None)
    down = down_rx.recv()
    f = down.outcome.failure
    print("down", down.name, down.outcome.kind, f.kind.value, f.name, f.id == h.id)
    print("message", "ValueError: down with a failure" in f.message)
    try:
        h.join()
    except weft.Failed as e:
        print("joined", e.failure.kind.value)

    down = weft.monitor(h.id).recv()
    print("down", down.id == h.id, down.name, down.outcome.kind, down.outcome.failure)
    down = weft.monitor(1 << 40).recv()
    print("down", down.id, down.name, down.outcome.kind)
    try:
        weft.monitor(-1)
    except ValueError as e:
        print("bad id:", e)


def settled(handle, name):
    """`which_children` once child `name` has ended or restarted: the supervisor
    sees its end after the caller may have seen other things happen."""
    for _ in range(100_000):
        children = handle.which_children()
        child = next(c for c in children if c.name == name)
        if child.state is not weft.supervisor.ChildState.RUNNING or child.restarts > 0:
            return children
        weft.yield_now()
    raise AssertionError(f"child {name} did not end")


def sup_one_for_one():
    jobs_tx, jobs_rx = weft.channel()
    results_tx, results_rx = weft.channel()
    pool = Supervisor("pool", intensity=(5, 60))
    pool.child(Child("worker", sup_worker, "worker", jobs_rx, results_tx))
    pool.child(Child("quick", sup_quick, restart="transient"))
    handle = pool.start()
    print("moved", jobs_rx.closed, results_tx.closed)
    jobs_tx.send("bad")
    jobs_tx.send(21)
    print("result", results_rx.recv())
    for c in settled(handle, "quick"):
        print("child", c.name, c.state.value, c.restarts, c.id is not None)
    handle.shutdown()
    handle.join()
    print("joined", handle.is_finished())
    try:
        handle.which_children()
    except weft.Closed as e:
        print("after:", e)


def sup_strategies():
    for strategy in (Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE):
        started_tx, started_rx = weft.channel()
        jobs_tx, jobs_rx = weft.channel()
        sup = Supervisor(strategy.value, strategy=strategy, intensity=(5, 60))
        sup.child(Child("a", sup_waiter, "a", started_tx, shutdown=30))
        sup.child(Child("b", sup_failer, "b", started_tx, jobs_rx))
        sup.child(Child("c", sup_waiter, "c", started_tx))
        handle = sup.start()
        print("started", sorted(started_rx.recv() for _ in range(3)), flush=True)
        jobs_tx.send("fail")
        again = 3 if strategy is Strategy.ONE_FOR_ALL else 2
        print("restarted", sorted(started_rx.recv() for _ in range(again)), flush=True)
        print("restarts", [(c.name, c.restarts) for c in handle.which_children()], flush=True)
        handle.shutdown()
        handle.join()
        print("joined", strategy.value, flush=True)


def sup_intensity():
    sup = Supervisor("crashy", intensity=(2, 60)).child(Child("crasher", sup_crash))
    handle = sup.start()
    try:
        handle.join()
    except weft.Failed as e:
        f = e.failure
        print("gave up", f.kind.value, f.name, f.id == handle.id)
        print(f.message)


def sup_shutdown():
    for how in ("shutdown", "cancel"):
        started_tx, started_rx = weft.channel()
        sup = Supervisor("tree")
        for name in ("a", "b", "c"):
            sup.child(Child(name, sup_waiter, name, started_tx))
        handle = sup.start()
        print("started", sorted(started_rx.recv() for _ in range(3)), flush=True)
        if how == "shutdown":
            handle.shutdown()
            handle.join()
            print("joined", flush=True)
        else:
            handle.cancel()
            try:
                handle.join()
            except weft.Failed as e:
                print("cancelled", e.failure.kind.value, flush=True)


def sup_nested():
    # A supervisor under another: its shutdown reaches the inner children first,
    # in reverse order, through the inner supervisor.
    started_tx, started_rx = weft.channel()
    inner = Supervisor("inner")
    inner.child(Child("x", sup_waiter, "x", started_tx)).child(Child("y", sup_waiter, "y", started_tx))
    outer = Supervisor("outer").child(Child("w", sup_waiter, "w", started_tx)).child(Child.supervisor(inner))
    handle = outer.start()
    print("started", sorted(started_rx.recv() for _ in range(3)), flush=True)
    print("children", [(c.name, c.state.value) for c in handle.which_children()], flush=True)
    handle.shutdown()
    handle.join()
    print("joined", flush=True)
    # An inner supervisor that gives up is a failed child of the outer, which
    # restarts it, then gives up in turn, listing the inner one's account.
    inner = Supervisor("inner", intensity=(1, 60)).child(Child("crasher", sup_crash))
    outer = Supervisor("outer", intensity=(1, 60)).child(Child.supervisor(inner))
    try:
        outer.start().join()
    except weft.Failed as e:
        print("gave up", e.failure.kind.value, e.failure.name)
        print(e.failure.message)


def sup_bad_specs():
    for make in (
        lambda: Child("x", lambda: None),
        lambda: Child("x", square, 1, restart="sometimes"),
        lambda: Supervisor("s", strategy="one-for-some"),
        lambda: Supervisor("s", intensity=3),
        lambda: Child("x", square, 1, shutdown=-1),
        lambda: Child("x", serve, weft.net.bind("127.0.0.1:0"), 1),
    ):
        try:
            make()
        except (TypeError, ValueError) as e:
            print(type(e).__name__, e)


MODES = {
    "bench-spawn": bench_spawn,
    "bench-sleepers": bench_sleepers,
    "monitor": monitors,
    "sup-one-for-one": sup_one_for_one,
    "sup-strategies": sup_strategies,
    "sup-intensity": sup_intensity,
    "sup-shutdown": sup_shutdown,
    "sup-nested": sup_nested,
    "sup-bad-specs": sup_bad_specs,
    "host-cbor": host_cbor,
    "basics": basics,
    "endpoints": endpoints,
    "fail": fail,
    "unjoined": unjoined,
    "main-raises": main_raises,
    "cancel": cancel,
    "unregistered": unregistered,
    "net": net,
    "limit": limit,
    "exit-child": exit_child,
    "exit-sys": exit_sys,
    "exit-main": exit_main,
    "args": args,
    "race": race,
    "noop": lambda: None,
}


def main():
    MODES[sys.argv[1]]()
