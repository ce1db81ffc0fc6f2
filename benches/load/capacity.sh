#!/usr/bin/env bash
# Capacity: steps the dnsperf rate up on a school-like mix (popular sites
# and listed names, 4:1, 1.1M listed domains; see common.sh) and reports the
# highest rate answered with at most 1 % of queries lost (dnsperf keeps up
# to 5000 queries outstanding and waits 2 s for each, so a server that
# falls behind shows as lost queries, not as a slower client; a step where
# dnsperf cannot even send the rate ends the climb). edudns on core 0; dnsperf and the
# wildcard upstream on core 1. Loopback only; bounded (about
# STEP_SECONDS × steps, 2-3 minutes). Not part of CI.
#   bash benches/load/capacity.sh   [RATES="5000 10000 …" STEP_SECONDS=10 MAX_LOSS_PERCENT=1]
source "$(dirname "$0")/common.sh"
rates=${RATES:-"5000 10000 20000 30000 40000 50000 60000 70000 80000 100000 120000"}
step=${STEP_SECONDS:-10}
max_loss=${MAX_LOSS_PERCENT:-1}

# Warm the cache once (every allowed name asked) so steps compare alike.
taskset -c 1 dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/mix.q" -n 1 -Q 20000 -c 8 > "$work/warm.txt" 2>&1 || true

best=0
best_qps=0
printf '%10s %10s %12s %10s %14s\n' "target" "sent/s" "answered/s" "lost %" "avg latency"
for rate in $rates; do
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/mix.q" -l "$step" -Q "$rate" -c 8 -q 5000 -t 2 > "$work/step.txt" 2>&1 || true
  sent=$(awk '/Queries sent:/ {print $3}' "$work/step.txt")
  lost=$(awk '/Queries lost:/ {print $3}' "$work/step.txt")
  qps=$(awk '/Queries per second:/ {printf "%d", $4}' "$work/step.txt")
  latency=$(awk '/Average Latency/ {print $4}' "$work/step.txt")
  loss=$(awk -v s="$sent" -v l="$lost" 'BEGIN {printf "%.2f", (s ? 100 * l / s : 100)}')
  printf '%10s %10s %12s %10s %14s\n' "$rate" "$((sent / step))" "$qps" "$loss" "${latency}s"
  # dnsperf itself could not offer the rate: what follows would measure it.
  if awk -v s="$sent" -v r="$rate" -v t="$step" 'BEGIN {exit !(s < 0.97 * r * t)}'; then
    echo "capacity: dnsperf offered only $((sent / step)) q/s of $rate; the client is the limit from here"
    break
  fi
  if awk -v l="$loss" -v m="$max_loss" 'BEGIN {exit !(l <= m)}'; then
    best=$rate
    best_qps=$qps
  else
    break
  fi
done
echo "capacity: highest step with <= ${max_loss} % loss: $best q/s target ($best_qps answered/s); RSS $(rss) MiB"
