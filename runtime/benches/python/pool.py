"""CPython counterparts of the pool cases in compare.rs (fork context, Pool(2), warmed up).

Prints one number on its last line: tasks per second, bytes per second,
seconds per round trip, a speed-up factor, or seconds per pool start.
"""
import multiprocessing as mp
import sys
import time


def sqr(x):
    return x * x


def length(b):
    return len(b)


def sum_squares(bounds):
    lo, hi = bounds
    s = 0
    for i in range(lo, hi):
        s += i * i
    return s


def best_rate(n, run, rounds=3):
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        run()
        best = max(best, n / (time.perf_counter() - t))
    return best


def main():
    case = sys.argv[1]
    if case == "start":
        ctx = mp.get_context(sys.argv[2])
        p = ctx.Pool(2)
        p.map(sqr, range(4))
        p.terminate()
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            p = ctx.Pool(2)
            p.map(sqr, range(4))
            best = min(best, time.perf_counter() - t)
            p.terminate()
        print(best)
        return
    ctx = mp.get_context("fork")
    # map1 and apply take an optional pool size (the oversubscription rows).
    procs = int(sys.argv[2]) if case in ("map1", "apply") and len(sys.argv) > 2 else 2
    with ctx.Pool(procs) as p:
        p.map(sqr, range(1000))
        if case == "map":
            n = 100_000
            # A map this size takes ~1-10 ms: more rounds than the others (as on the Rust side).
            print(best_rate(n, lambda: p.map(sqr, range(n)), rounds=20))
        elif case == "map1":
            n = 20_000
            print(best_rate(n, lambda: p.map(sqr, range(n), chunksize=1)))
        elif case == "imap1":
            n = 20_000
            print(best_rate(n, lambda: sum(1 for _ in p.imap_unordered(sqr, range(n), chunksize=1))))
        elif case == "bytes_map":
            # Distinct objects: pickle would send a repeated one once per chunk.
            items = [bytes([7]) * (1 << 16) for _ in range(1000)]
            print(best_rate(1000 << 16, lambda: p.map(length, items)))
        elif case == "apply":
            for _ in range(200):
                p.apply_async(sqr, (7,)).get()
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(1000):
                    p.apply_async(sqr, (7,)).get()
                best = min(best, (time.perf_counter() - t) / 1000)
            print(best)
        elif case == "cpu":
            n, chunks = int(sys.argv[2]), 8
            bounds = [(i * n // chunks, (i + 1) * n // chunks) for i in range(chunks)]
            t = time.perf_counter()
            serial = [sum_squares(b) for b in bounds]
            t_serial = time.perf_counter() - t
            t = time.perf_counter()
            par = p.map(sum_squares, bounds, chunksize=1)
            t_par = time.perf_counter() - t
            assert serial == par
            print(t_serial / t_par)


if __name__ == "__main__":
    main()
