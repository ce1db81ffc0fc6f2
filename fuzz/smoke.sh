#!/usr/bin/env bash
# Builds the fuzz targets and runs each for FUZZ_SECONDS (default 60) from
# the committed seed corpus; fails on any crash, leak or invariant panic.
#
#   bash fuzz/smoke.sh                 # 60 s per target
#   FUZZ_SECONDS=30 bash fuzz/smoke.sh # the CI setting
#   FUZZ_TARGETS="request config" bash fuzz/smoke.sh
#   FUZZ_RUNS=10000000 FUZZ_SECONDS=1800 FUZZ_LOGS=/tmp/fuzz-logs bash fuzz/smoke.sh
#                                      # the long run: stop at 10^7 executions
#                                      # or the time bound, keep the logs
#   FUZZ_JOBS=2 FUZZ_RUNS=5000000 ...  # two processes (one per core), each
#                                      # stopping at FUZZ_RUNS: 10^7 in all
#
# Works with a stable toolchain: cargo-fuzz needs nightly-only flags
# (-Zsanitizer), which RUSTC_BOOTSTRAP=1 unlocks on stable. With nightly
# installed, FUZZ_TOOLCHAIN=nightly uses it instead.
# FUZZ_TARGET_DIR builds elsewhere than fuzz/target (e.g. a CI cache).
# New inputs go to a temporary corpus; the committed seeds stay as they are.
# A crash leaves its input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
dir_flag=()
[ -n "${FUZZ_TARGET_DIR:-}" ] && dir_flag=(--target-dir "$FUZZ_TARGET_DIR")
runs_flag=()
[ -n "${FUZZ_RUNS:-}" ] && runs_flag=("-runs=$FUZZ_RUNS")
jobs=${FUZZ_JOBS:-1}
jobs_flag=()
[ "$jobs" -gt 1 ] && jobs_flag=("-jobs=$jobs" "-workers=$jobs")
targets="${FUZZ_TARGETS:-request upstream_answer list_formats config}"
# FUZZ_DEV=1: unoptimised build with debug assertions (CI: builds in about
# half the time; executions are slower, which a smoke run can afford).
profile_flag=()
[ "${FUZZ_DEV:-}" = 1 ] && profile_flag=(--dev)
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain=("+$FUZZ_TOOLCHAIN")
else
  export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

started=$(date +%s)
cargo "${toolchain[@]}" fuzz build "${profile_flag[@]}" "${dir_flag[@]}" 2>&1 | tail -n 3
echo "fuzz: built in $(($(date +%s) - started)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $targets; do
  mkdir -p "$work/$target"
  log="${FUZZ_LOGS:-$work}/$target.log"
  mkdir -p "$(dirname "$log")"
  echo "fuzz: $target for ${seconds} s"
  rm -f fuzz-[0-9]*.log
  if cargo "${toolchain[@]}" fuzz run "${profile_flag[@]}" "${dir_flag[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "${runs_flag[@]}" "${jobs_flag[@]}" >"$log" 2>&1; then
    # With FUZZ_JOBS, each process writes fuzz-<n>.log here: sum them.
    job_logs=("$log")
    if [ "$jobs" -gt 1 ]; then
      job_logs=()
      for job_log in fuzz-[0-9]*.log; do
        mv "$job_log" "$(dirname "$log")/$target-$job_log"
        job_logs+=("$(dirname "$log")/$target-$job_log")
      done
    fi
    runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "${job_logs[@]}" | grep -o '[0-9]*$' | awk '{s += $1} END {print s + 0}')
    rate=$(grep -ho 'stat::average_exec_per_sec: *[0-9]*' "${job_logs[@]}" | grep -o '[0-9]*$' | awk '{s += $1} END {print s + 0}')
    # A crashing job does not always fail the parent: read every job's log.
    if grep -lE 'deadly signal|panicked at|==[0-9]+==ERROR|SUMMARY: libFuzzer' "${job_logs[@]}" >/dev/null 2>&1; then
      failed+=("$target")
      echo "fuzz: $target FAILED in a job; see ${job_logs[*]}"
      continue
    fi
    echo "fuzz: $target ok, $runs executions ($rate/s over $jobs process(es))"
  else
    failed+=("$target")
    echo "fuzz: $target FAILED; last lines of its log:"
    tail -n 40 "$log"
  fi
done

echo "fuzz: total $(($(date +%s) - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
