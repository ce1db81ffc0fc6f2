#!/usr/bin/env bash
# edudns vs Unbound on the same ~1.1M-domain blocklist, same wildcard
# upstream, same pinning: answers per server CPU-second per workload.
# Servers on core 0, dnsperf on core 1, loopback only. Each throughput
# workload runs ROUNDS times per server, alternating edudns and Unbound;
# the ratio is reported per round and as the median; so is p99 latency at
# 20k qps. About 7 minutes.
#   bash benches/load/compare.sh          [SECONDS_RUN=10 ROUNDS=3]
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
seconds=${SECONDS_RUN:-10}
rounds=${ROUNDS:-3}

# The blocklist: every listed name of the real lists, deduplicated.
python3 "$root/benches/load/domains.py" "$data" "$work/domains.txt"

# Wildcard upstream on loopback (answers every name). so-rcvbuf: with
# 500 queries outstanding the default 208 KiB receive buffer overflows
# (RcvbufErrors in /proc/net/snmp), which showed as SERVFAIL for whichever
# server was measured; both Unbounds get the 4 MiB edudns's listener asks for.
{ unbound_head 5399; cat <<UNBOUND; } > "$work/upstream.conf"
  local-zone: "." redirect
  local-data: ". 300 IN A 192.0.2.1"
UNBOUND
taskset -c 1 unbound -c "$work/upstream.conf" 2>"$work/upstream.log" &

# Unbound as the filter: one local-zone per blocked domain, forwarding the rest.
{
  unbound_head 5397
  echo '  do-not-query-localhost: no'
  echo '  msg-cache-size: 64m'
  echo '  rrset-cache-size: 128m'
  awk '{print "  local-zone: \"" $1 ".\" always_nxdomain"}' "$work/domains.txt"
  echo 'forward-zone:'
  echo '  name: "."'
  echo '  forward-addr: 127.0.0.1@5399'
} > "$work/unbound.conf"

cat > "$work/edudns.toml" <<TOML
[server]
dns_listen = ["127.0.0.1:5398"]
management_listen = "127.0.0.1:0"
[upstream]
servers = ["127.0.0.1:5399"]
cache_size = 200000
[blocking]
mode = "nxdomain"
[reload]
watch_interval_secs = 0
[stats]
database = "$work/stats.sqlite"
[[category]]
id = "all"
lists = [{ path = "$work/domains.txt", format = "plain" }]
[[band]]
id = "students"
block = ["all"]
[[school]]
id = "bench"
networks = ["127.0.0.0/8"]
TOML

# Workloads.
awk 'NR % 20 == 1 {print $1 " A"; n++} n >= 50000 {exit}' "$work/domains.txt" > "$work/blocked.q"
awk -F, 'NR > 1 && n < 20000 {print $2 " A"; n++}' "$data/top-sites/umbrella-top-100k.csv" > "$work/allowed.q"
awk 'NR <= 10000' "$work/blocked.q" > "$work/b10k.q"
{ for i in 1 2 3 4; do cat "$work/allowed.q"; done; cat "$work/b10k.q" "$work/b10k.q"; } | shuf --random-source=<(yes) > "$work/mixed.q"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }

run() { # name port pid queryfile → "qps answers_per_cpu_s"
  local port=$1 pid=$2 file=$3
  local t0 t1
  t0=$(cpu_ticks "$pid")
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$seconds" -c 8 -q 500 > "$work/perf.txt" 2>&1
  t1=$(cpu_ticks "$pid")
  local done qps
  done=$(awk '/Queries completed/ {print $3}' "$work/perf.txt")
  qps=$(awk '/Queries per second/ {print int($4)}' "$work/perf.txt")
  awk -v d="$done" -v t=$((t1 - t0)) -v q="$qps" 'BEGIN { cpu = t / 100; printf "%d %d %.0f%%", q, (cpu > 0 ? d / cpu : 0), 100 * cpu / '"$seconds"' }'
}

# Starts edudns pinned to core 0, logging to $1; sets pid once it listens.
start_edudns() {
  taskset -c 0 "$root/target/release/edudns" serve -c "$work/edudns.toml" > "$1" 2>&1 &
  pid=$!
  until grep -q "listening on 127.0.0.1:5398" "$1"; do
    kill -0 "$pid" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.05
  done
}

declare -A result pids ports
ports[edudns]=5398; ports[unbound]=5397
# Both servers stay up for the whole run (pinned to the same core; only the
# one being measured is busy), and the throughput workloads alternate
# between them, round after round: a machine whose speed drifts over the
# minutes (shared, noisy) then skews both alike.
for server in edudns unbound; do
  if [ "$server" = edudns ]; then
    # First start: every list parsed, the compiled lists written beside the
    # database. The measured start below is a restart, which reads them.
    start=$(date +%s.%N)
    start_edudns "$work/edudns-first.log"
    result[edudns,first_load]=$(awk "BEGIN {printf \"%.2f\", $(date +%s.%N) - $start}")
    kill "$pid"; wait "$pid" 2>/dev/null || true
  fi
  start=$(date +%s.%N)
  if [ "$server" = edudns ]; then
    start_edudns "$work/edudns.log"
  else
    taskset -c 0 unbound -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
    pid=$!
    until dig @127.0.0.1 -p 5397 +tries=1 +time=1 example.org >/dev/null 2>&1; do
      kill -0 "$pid" 2>/dev/null || { cat "$work/unbound.log"; exit 1; }
      sleep 0.1
    done
  fi
  ready=$(date +%s.%N)
  pids[$server]=$pid
  result[$server,load]=$(awk "BEGIN {printf \"%.2f\", $ready - $start}")
  result[$server,rss]=$(rss_mib "$pid")
done

for server in edudns unbound; do
  port=${ports[$server]}
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/allowed.q" -n 1 -c 8 -q 500 >/dev/null 2>&1   # warm the cache
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/b10k.q" -n 1 -c 8 -q 500 >/dev/null 2>&1
done

# Latency at a moderate fixed rate (20k qps, the mixed workload, caches
# warm), from dnsperf's per-query lines: "p50 p99" in ms.
latency() {
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$work/mixed.q" -l "$seconds" -Q 20000 -c 8 -q 500 -v > "$work/lat.txt" 2>&1
  awk '/^> / {print $NF}' "$work/lat.txt" | sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.3f %.3f", 1000*v[int(NR*0.5)], 1000*v[int(NR*0.99)]; else print "0 0"}'
}

for round in $(seq 1 "$rounds"); do
  # Never-seen names in every round, so misses stay misses.
  awk -v r="$round" 'BEGIN { for (i = 0; i < 400000; i++) printf "m%d.r%d.d%d.example A\n", i, r, i % 997 }' > "$work/miss.q"
  for workload in blocked allowed mixed miss; do
    case $workload in blocked) f=$work/blocked.q;; allowed) f=$work/allowed.q;; mixed) f=$work/mixed.q;; miss) f=$work/miss.q;; esac
    for server in edudns unbound; do
      result[$server,$workload,$round]=$(run "${ports[$server]}" "${pids[$server]}" "$f")
    done
  done
  # p99 alternates too: one 8-second sample per server can catch a pause
  # of this shared machine that the other server's sample missed.
  for server in edudns unbound; do
    result[$server,latency,$round]=$(latency "${ports[$server]}")
  done
done

for server in edudns unbound; do
  pid=${pids[$server]}; port=${ports[$server]}
  # A reload of the whole list under 20k qps: peak RSS (sampled every 10 ms)
  # and lost queries.
  steady=$(rss_mib "$pid")
  ( peak=0; end=$((SECONDS + seconds + 2)); while [ $SECONDS -lt $end ] && [ -e "/proc/$pid" ]; do r=$(rss_mib "$pid"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.01; done; echo "$peak" > "$work/peak" ) &
  sampler=$!
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/mixed.q" -l "$seconds" -Q 20000 -c 8 -q 500 > "$work/reload-perf.txt" 2>&1 &
  perf=$!
  sleep 1
  # A real edit (one more listed name), so edudns parses every list again
  # rather than reading its compiled lists: the worst case.
  echo "reload-$server.example" >> "$work/domains.txt"
  kill -HUP "$pid"
  wait "$perf"; wait "$sampler"
  lost=$(awk '/Queries lost/ {print $3}' "$work/reload-perf.txt")
  result[$server,reload]="steady $steady MiB, peak $(cat "$work/peak") MiB, lost ${lost:-?}"
  result[$server,rss_after]=$(rss_mib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

printf '\n%-10s %5s %28s %28s %8s\n' workload round "edudns (qps / ans/cpu-s / cpu)" "unbound (qps / ans/cpu-s / cpu)" ratio
for workload in blocked allowed mixed miss; do
  ratios=()
  for round in $(seq 1 "$rounds"); do
    e=${result[edudns,$workload,$round]}; u=${result[unbound,$workload,$round]}
    ratio=$(awk -v a="$(echo "$e" | cut -d' ' -f2)" -v b="$(echo "$u" | cut -d' ' -f2)" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    ratios+=("$ratio")
    printf '%-10s %5s %28s %28s %8s\n' "$workload" "$round" "$e" "$u" "${ratio}x"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}')
  printf '%-10s %5s %58s %8s\n' "$workload" median "" "${median}x"
done
printf '%-10s %28s %28s\n' "load (s)" "${result[edudns,load]} (first ${result[edudns,first_load]})" "${result[unbound,load]}"
printf '%-10s %28s %28s\n' "RSS MiB" "${result[edudns,rss]} -> ${result[edudns,rss_after]}" "${result[unbound,rss]} -> ${result[unbound,rss_after]}"
p99s=()
for round in $(seq 1 "$rounds"); do
  e=${result[edudns,latency,$round]}; u=${result[unbound,latency,$round]}
  ratio=$(awk -v a="${e#* }" -v b="${u#* }" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
  p99s+=("$ratio")
  printf '%-10s %5s %28s %28s %8s\n' "p50/p99 ms" "$round" "$e" "$u" "${ratio}x"
done
median=$(printf '%s\n' "${p99s[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}')
printf '%-10s %5s %58s %8s\n' "p99" median "" "${median}x"
printf '%-10s %28s %28s\n' "reload" "${result[edudns,reload]}" "${result[unbound,reload]}"
