#!/bin/sh
# Runs the compare bench's latency groups three ways in one invocation:
# idle, pinned to one CPU (taskset -c 0: the bench, its child processes and
# the CPython counterparts inherit the mask), and with one busy-loop process
# per core beside it (started and stopped here).
# Usage: runtime/benches/compare-loads.sh [filter]   (default filter: core)
set -eu
filter="${1:-core}"
cd "$(dirname "$0")/../.."
cargo bench -p multiproc --bench compare --no-run
run() { cargo bench -q -p multiproc --bench compare -- "$filter"; }
echo "== idle"; run
echo "== pinned (taskset -c 0)"; taskset -c 0 cargo bench -q -p multiproc --bench compare -- "$filter"
pids=""
for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    pids="$pids $!"
done
trap 'kill $pids 2>/dev/null || true' EXIT INT TERM
echo "== busy ($(nproc) busy-loop processes)"; run
