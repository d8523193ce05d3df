"""CPython counterparts of the queue, lock and shared-state cases in compare.rs.

Usage: queues.py <case>; prints one number on its last line: seconds per
operation, operations per second, or bytes per second.
"""
import multiprocessing as mp
import sys
import time
from multiprocessing import shared_memory


def produce(q, n):
    for i in range(n):
        q.put(i)


def produce_big(q, n):
    msg = b"\x07" * (1 << 20)
    for _ in range(n):
        q.put(msg)


def _drain_rate(target, n):
    """Runs target(q, n) in a forked child and gets its n messages: gets/s from the first get."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(q, n))
    p.start()
    q.get()
    t = time.perf_counter()
    for _ in range(n - 1):
        q.get()
    rate = (n - 1) / (time.perf_counter() - t)
    p.join()
    return rate


def small(n=100_000):
    """Queue, n small ints, one producer -> parent: msgs/s from the first get."""
    return _drain_rate(produce, n)


def big(n=200):
    """Queue, 1 MiB bytes messages, one producer -> parent: bytes/s from the first get."""
    return _drain_rate(produce_big, n) * (1 << 20)


def lock(n=1_000_000):
    """Uncontended Lock acquire+release: seconds per pair."""
    lk = mp.get_context("fork").Lock()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            lk.acquire()
            lk.release()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def add(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def contended(n=500_000):
    """Two processes incrementing a Value under its lock: increments/s."""
    ctx = mp.get_context("fork")
    v = ctx.Value("q", 0)
    ps = [ctx.Process(target=add, args=(v, n)) for _ in range(2)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    rate = 2 * n / (time.perf_counter() - t)
    assert v.value == 2 * n
    return rate


def value(n=500_000):
    """Value increment under its lock, one process: seconds per increment."""
    v = mp.get_context("fork").Value("q", 0)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        best = min(best, (time.perf_counter() - t) / n)
    return best


def shm(n=500):
    """SharedMemory 1 MiB create + attach + close + unlink: seconds per cycle."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            a = shared_memory.SharedMemory(create=True, size=1 << 20)
            b = shared_memory.SharedMemory(name=a.name)
            b.close()
            a.close()
            a.unlink()
        best = min(best, (time.perf_counter() - t) / n)
    return best


if __name__ == "__main__":
    print(globals()[sys.argv[1]]())
