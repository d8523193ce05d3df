#!/bin/sh
# Runs the compare bench under four loads in one invocation: idle, pinned to
# one CPU (taskset -c 0: the bench, its child processes and the CPython
# counterparts inherit the mask), and beside one and then two busy-loop
# processes (started and stopped here).
# Usage: runtime/benches/compare-loads.sh [filter]
#   filter: a group name as for the bench (core, pool, futures, managers,
#   queues), or "all"; default core. The output feeds book/chart
#   (`cargo run -p multiproc-book-chart -- out.txt chart.svg`).
set -eu
filter="${1:-core}"
[ "$filter" = all ] && filter=""
cd "$(dirname "$0")/../.."
cargo bench -p multiproc --bench compare --no-run
run() { $1 cargo bench -q -p multiproc --bench compare -- $filter; }
echo "== idle"; run ""
echo "== pinned (taskset -c 0)"; run "taskset -c 0"
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT INT TERM
for n in 1 2; do
    sh -c 'while :; do :; done' &
    pids="$pids $!"
    echo "== $n busy loop(s)"; run ""
done
