#!/bin/bash
# Runs every test tier that CI runs, from a fresh machine, as root:
#   toolchain check, the lab (real Keystone, Neutron ML2/OVN, OVN, OVS, dockerd),
#   cargo fmt, clippy, unit tests, root-only kernel tests, end-to-end tests, leftovers check.
# Ends with one line "N passed, M failed" that counts every test and every check.
# Every step runs even when an earlier one fails, so one run shows every failure.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "make test needs root: the lab, kernel and end-to-end tests create namespaces, OVS ports and containers" >&2
  exit 1
fi

LOG_DIR=target/test-logs
mkdir -p "$LOG_DIR"
STARTED=$(date +%s)
passed=0
failed=0
failed_steps=()

elapsed() { echo "$(( $(date +%s) - STARTED ))s"; }

# Adds the "test result:" counts of a cargo test log to the totals.
count_cargo_results() {
  local log=$1 p f
  p=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
  f=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
  passed=$(( passed + ${p:-0} ))
  failed=$(( failed + ${f:-0} ))
}

# run_step NAME COMMAND...: runs a check whose log is kept under target/test-logs.
# A step that is a cargo test run adds its test counts; any other step counts as one test.
run_step() {
  local name=$1 log="$LOG_DIR/$1.log"
  shift
  echo "== $name ($(elapsed))"
  if "$@" > "$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed_steps+=("$name")
  fi
  if grep -qE '^test result:' "$log"; then
    count_cargo_results "$log"
    grep -E '^test .* FAILED$|^test result:' "$log" | sed 's/^/   /'
    # A cargo step that failed without a failing test (a build error) still counts once.
    if [ $status = FAILED ] && ! grep -qE '^test result:.* [1-9][0-9]* failed' "$log"; then
      failed=$(( failed + 1 ))
    fi
  elif [ $status = ok ]; then
    passed=$(( passed + 1 ))
  else
    failed=$(( failed + 1 ))
  fi
  if [ $status = FAILED ]; then
    echo "   $name FAILED; last lines of $log:"
    tail -n 30 "$log" | sed 's/^/   | /'
  fi
}

ensure_toolchain() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first"; return 1; }
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

echo "== toolchain"
ensure_toolchain || { echo "toolchain setup failed"; echo "0 passed, 1 failed"; exit 1; }

run_step lab lab/up.sh
run_step fmt cargo fmt --check
run_step clippy cargo clippy --all-targets --all-features -- -D warnings
run_step unit cargo test --lib --bins
run_step kernel cargo test --features kernel-tests --test 'kernel_*' -- --test-threads=1
run_step e2e cargo test --features e2e --test 'e2e_*' -- --test-threads=1
run_step leftovers scripts/check-leftovers.sh

echo "== done in $(elapsed)"
if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]}"
fi
echo "$passed passed, $failed failed"
[ $failed = 0 ] && [ ${#failed_steps[@]} = 0 ]
