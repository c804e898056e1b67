#!/bin/bash
# make bench: bring the lab up when it is down, build the release binaries, run the benchmark
# (bench/bench.py) and write target/bench/results.json and docs/benchmarks.md (bench/report.py).
# Needs root. Settings, all optional:
#   BENCH_QUICK=1       a run of a few minutes with smaller sample counts
#   BENCH_PARTS="..."   a subset of: docker shell plumbing agent kuryr ceiling
#   CLAMPIFY_BIN        the agent binary; when unset, `cargo build --release` makes
#                       target/release/clampify
#   PLUMBING_BENCH_BIN  the plumbing example; when unset, cargo builds examples/plumbing_bench.rs
# bench/bench.py lists the sample-count settings (BENCH_*_N).
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# The report prints the command that produced it, with every BENCH_* setting given.
BENCH_COMMAND="make bench"
for setting in $(compgen -e | grep '^BENCH_' | sort -r); do
  BENCH_COMMAND="$setting=\"${!setting}\" $BENCH_COMMAND"
done
export BENCH_COMMAND
export BENCH_OUT=${BENCH_OUT:-$REPO/target/bench}
export BENCH_PARTS=${BENCH_PARTS:-docker shell plumbing agent kuryr ceiling}
MATPLOTLIB_VERSION=3.11.2
PY_SPY_VERSION=0.4.3

log() { printf '[bench-run %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "bench-run: error: $*" >&2; exit 1; }
wants() { [[ " $BENCH_PARTS " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || die "the benchmark creates namespaces and OVS bridges: run it as root"
mkdir -p "$BENCH_OUT"

if lab/status.sh > "$BENCH_OUT/lab-status.txt" 2>&1; then
  log "lab: up"
else
  log "lab: not fully up (see $BENCH_OUT/lab-status.txt), running make lab"
  make lab
fi

if wants agent && [ -z "${CLAMPIFY_BIN:-}" ]; then
  log "build: cargo build --release"
  cargo build --release
fi
if wants plumbing && [ -z "${PLUMBING_BENCH_BIN:-}" ]; then
  log "build: cargo build --release --example plumbing_bench"
  cargo build --release --example plumbing_bench
fi

# The plots need matplotlib and the Neutron profile needs py-spy. Both live in a venv of
# their own so the system Python stays as it is.
VENV=$BENCH_OUT/venv
if [ "$("$VENV/bin/python" -c 'import matplotlib; print(matplotlib.__version__)' 2>/dev/null)" != "$MATPLOTLIB_VERSION" ] \
   || [ "$("$VENV/bin/py-spy" --version 2>/dev/null)" != "py-spy $PY_SPY_VERSION" ]; then
  log "venv: pip install matplotlib==$MATPLOTLIB_VERSION py-spy==$PY_SPY_VERSION into $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "matplotlib==$MATPLOTLIB_VERSION" "py-spy==$PY_SPY_VERSION" \
    > "$BENCH_OUT/pip.log" 2>&1 || die "pip install failed, see $BENCH_OUT/pip.log"
fi
export BENCH_PY_SPY=${BENCH_PY_SPY:-$VENV/bin/py-spy}

started=$(date +%s)
status=0
rm -f "$BENCH_OUT/results.json" "$BENCH_OUT/samples.json"
/usr/bin/python3 bench/bench.py run 2>&1 | tee "$BENCH_OUT/bench.log" || status=$?
log "benchmark took $(( $(date +%s) - started )) s"
# A run with a failed part still writes the figures it measured, and the page lists what failed.
if [ -f "$BENCH_OUT/results.json" ]; then
  "$VENV/bin/python" bench/report.py
fi
exit "$status"
