"""CPython counterparts of the manager cases in compare/managers.rs.

Prints one number on its last line: seconds per operation, or operations per second.
"""
import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Client, Listener
from multiprocessing.managers import BaseManager

KEY = b"benchmark key"


def start(method, iters=10):
    ctx = mp.get_context(method)
    m = ctx.Manager()
    m.shutdown()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(iters):
            m = ctx.Manager()
            m.shutdown()
        best = min(best, (time.perf_counter() - t) / iters)
    return best


def dict_pairs(n=10000):
    m = mp.get_context("fork").Manager()
    d = m.dict()
    for i in range(1000):
        d[i] = i
        d[i]
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for i in range(n):
            d[i] = i
            assert d[i] == i
        best = max(best, n / (time.perf_counter() - t))
    m.shutdown()
    return best


class Counter:
    def __init__(self):
        self.n = 0

    def incr(self, by):
        self.n += by
        return self.n


class MyManager(BaseManager):
    pass


MyManager.register("Counter", Counter)


def custom(n=10000):
    m = MyManager(ctx=mp.get_context("fork"))
    m.start()
    c = m.Counter()
    for _ in range(1000):
        c.incr(1)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            c.incr(1)
        best = min(best, (time.perf_counter() - t) / n)
    m.shutdown()
    return best


def serve(address_q, n):
    with Listener(("127.0.0.1", 0), authkey=KEY) as listener:
        address_q.put(listener.address)
        for _ in range(n):
            with listener.accept() as conn:
                conn.send(conn.recv() + 1)


def connect(iters=500):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=serve, args=(q, iters * 3 + 50))
    p.start()
    address = q.get()

    def once():
        with Client(address, authkey=KEY) as c:
            c.send(1)
            assert c.recv() == 2

    for _ in range(50):
        once()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(iters):
            once()
        best = min(best, (time.perf_counter() - t) / iters)
    p.kill()
    p.join()
    return best


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "start":
        print(start(sys.argv[2]))
    elif case == "dict":
        print(dict_pairs())
    elif case == "custom":
        print(custom())
    elif case == "connect":
        print(connect())
    else:
        sys.exit(f"unknown case {case}")
