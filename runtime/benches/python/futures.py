"""CPython counterparts of the futures cases in compare/futures.rs
(ProcessPoolExecutor with 2 workers, fork context, warmed up).

Prints one number on its last line: tasks per second.
"""
import concurrent.futures as cf
import multiprocessing as mp
import sys
import time


def sqr(x):
    return x * x


def submit_as_completed(ex, n):
    futs = [ex.submit(sqr, x) for x in range(n)]
    return sum(f.result() for f in cf.as_completed(futs))


def main():
    case = sys.argv[1]
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        if case == "submit":
            n = 20000
            submit_as_completed(ex, 2000)
            best = 0.0
            for _ in range(3):
                t = time.perf_counter()
                submit_as_completed(ex, n)
                best = max(best, n / (time.perf_counter() - t))
            print(best)
        else:
            sys.exit(f"unknown case {case}")


if __name__ == "__main__":
    main()
