#!/usr/bin/env bash
# Soak: a steady school-like load for DURATION_SECONDS (default 30 min)
# plus a stream of never-seen names that churns the answer cache; RSS
# sampled every 10 s. Reports the memory slope (least squares after the
# first WARMUP_SECONDS) in MiB/hour and fails above MAX_SLOPE_MIB_PER_HOUR,
# or when more than 1 % of queries are lost. Loopback only. Not part of CI.
#   bash benches/load/soak.sh   [DURATION_SECONDS=1800 RATE=5000 WARMUP_SECONDS=300 MAX_SLOPE_MIB_PER_HOUR=8]
source "$(dirname "$0")/common.sh"
duration=${DURATION_SECONDS:-1800}
rate=${RATE:-5000}
warmup=${WARMUP_SECONDS:-300}
[ "$warmup" -lt "$duration" ] || warmup=$((duration / 5))
max_slope=${MAX_SLOPE_MIB_PER_HOUR:-8}

# One never-seen name after every four mix lines: cache misses all along,
# beyond the cache size, so eviction and the in-flight table are exercised.
awk '{print; if (NR % 4 == 0) printf "u%d.soak%d.example A\n", NR, NR % 1000}' "$work/mix.q" > "$work/soak.q"

taskset -c 1 dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/soak.q" -l "$duration" -Q "$rate" -c 8 -q 5000 -t 3 > "$work/dnsperf.txt" 2>&1 &
perf=$!
started=$(date +%s)
: > "$work/rss.tsv"
while kill -0 "$perf" 2>/dev/null; do
  echo "$(($(date +%s) - started)) $(rss)" >> "$work/rss.tsv"
  sleep 10
done
wait "$perf" || true
grep -E 'Queries sent|Queries completed|Queries lost|Queries per second|Average Latency' "$work/dnsperf.txt"
sent=$(awk '/Queries sent:/ {print $3}' "$work/dnsperf.txt")
lost=$(awk '/Queries lost:/ {print $3}' "$work/dnsperf.txt")
cp "$work/rss.tsv" "${SOAK_RSS_OUT:-/tmp/edudns-soak-rss.tsv}"
read -r first last peak slope < <(awk -v w="$warmup" '
  NR == 1 {first = $2}
  {last = $2; if ($2 > peak) peak = $2}
  $1 >= w {n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2}
  END {
    slope = (n > 1 && n * sxx != sx * sx) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 3600 : 0
    printf "%s %s %s %.2f\n", first, last, peak, slope
  }' "$work/rss.tsv")
echo "soak: ${duration} s at ${rate} q/s; RSS first $first MiB, last $last MiB, peak $peak MiB; slope after ${warmup} s: $slope MiB/hour (limit $max_slope); samples in ${SOAK_RSS_OUT:-/tmp/edudns-soak-rss.tsv}"
loss=$(awk -v s="$sent" -v l="$lost" 'BEGIN {printf "%.2f", s ? 100 * l / s : 100}')
echo "soak: lost $loss %"
status=0
awk -v s="$slope" -v m="$max_slope" 'BEGIN {exit !(s > m)}' && { echo "soak: FAIL: memory grows $slope MiB/hour" >&2; status=1; }
awk -v l="$loss" 'BEGIN {exit !(l > 1)}' && { echo "soak: FAIL: $loss % lost" >&2; status=1; }
exit $status
