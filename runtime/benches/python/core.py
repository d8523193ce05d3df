"""CPython counterparts of the core cases in compare.rs.

Prints one number on its last line: seconds per operation, or bytes per second.
"""
import multiprocessing as mp
import sys
import time


def nothing():
    pass


def echo(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def sink(conn, n):
    for _ in range(n):
        conn.recv_bytes()
    conn.send_bytes(b"done")


def start(method):
    ctx = mp.get_context(method)
    iters = 10 if method == "spawn" else 50
    p = ctx.Process(target=nothing)
    p.start()
    p.join()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(iters):
            p = ctx.Process(target=nothing)
            p.start()
            p.join()
        best = min(best, (time.perf_counter() - t) / iters)
    return best


def child_with_pipe(target, n):
    """Starts target(conn, n) in a fork child; returns (our end, process)."""
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=target, args=(b, n))
    p.start()
    return a, p


def rtt(n=20000):
    a, p = child_with_pipe(echo, n)
    for i in range(1000):
        a.send(i)
        a.recv()
    left = n - 1000
    t = time.perf_counter()
    for i in range(left):
        a.send(i)
        a.recv()
    d = (time.perf_counter() - t) / left
    p.join()
    return d


def mib(n=1000):
    a, p = child_with_pipe(sink, n)
    msg = b"\x07" * (1 << 20)
    t = time.perf_counter()
    for _ in range(n):
        a.send_bytes(msg)
    a.recv_bytes()
    secs = time.perf_counter() - t
    p.join()
    return n * (1 << 20) / secs


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "start":
        print(start(sys.argv[2]))
    elif case == "rtt":
        print(rtt())
    elif case == "mib":
        print(mib())
    else:
        sys.exit(f"unknown case {case}")
