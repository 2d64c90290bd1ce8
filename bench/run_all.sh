#!/usr/bin/env bash
# Run every Runwright benchmark in turn against the local Postgres; results land in
# bench/results/*.json (and *.server.log, *.profile*.txt). See bench/README.md.
#
#   bash bench/run_all.sh                 # full targets (about 8-10 minutes)
#   QUICK=1 bash bench/run_all.sh         # smaller counts, for a smoke check
#
# Every benchmark starts its own server and stops it (and anything else it started) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG=${PG:-postgresql://postgres@127.0.0.1:5432}
if [[ -n "${QUICK:-}" ]]; then
  RUNS=300; LAT=100; LIVE=200; SECS=20; NATIVE=200; HEALTH=300
else
  RUNS=3000; LAT=300; LIVE=1000; SECS=45; NATIVE=1000; HEALTH=1500
fi
common=(--pg "$PG" --quiet-wait "${QUIET_WAIT:-90}")

"$PY" -m bench.latency "${common[@]}" --runs "$LAT"
# throughput and latency: server pinned to core 0, client to core 1 (the defaults)
"$PY" -m bench.throughput "${common[@]}" --runs "$RUNS"
# a separate run under py-spy (GIL holder only), so the profiler does not touch the figures above
"$PY" -m bench.throughput "${common[@]}" --runs "$RUNS" --profile 15 --profile-gil --tag profiled
"$PY" -m bench.profile_report bench/results/throughput-scripted-profiled.profile-gil.txt \
  --top 25 > bench/results/throughput-scripted.profile-summary.txt
"$PY" -m bench.throughput "${common[@]}" --engine native --runs "$NATIVE"
# 1,000 threads on one core collapse the tail: the concurrency run is unpinned
"$PY" -m bench.concurrency "${common[@]}" --runs "$LIVE" --seconds "$SECS" \
  --server-cpus '' --client-cpus ''
# /livez, /readyz, /healthz latency while 1,500 runs are created (issue 10, item 6)
"$PY" -m bench.health "${common[@]}" --runs "$HEALTH"
echo "results: bench/results/"
