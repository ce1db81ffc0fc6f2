#!/usr/bin/env bash
# Reload of a ~1M-domain configuration while answering queries: counts lost
# queries (target: zero) and reports load time and memory.
# Loopback only; bounded (about a minute). Not part of CI.
#   bash benches/load/reload.sh            [SECONDS=20 RATE=20000 RELOADS=3]
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
seconds=${SECONDS_RUN:-20}
rate=${RATE:-20000}
reloads=${RELOADS:-3}

# A wildcard upstream on loopback: unbound answering every name with 192.0.2.1.
{ unbound_head 5399; cat <<UNBOUND; } > "$work/unbound.conf"
  local-zone: "." redirect
  local-data: ". 300 IN A 192.0.2.1"
UNBOUND
unbound -c "$work/unbound.conf" 2>"$work/unbound.log" &
sleep 1

# One category per data folder, every list of it.
{
  echo '[server]'
  echo 'dns_listen = ["127.0.0.1:5398"]'
  echo 'management_listen = "127.0.0.1:0"'
  echo '[upstream]'
  echo 'servers = ["127.0.0.1:5399"]'
  echo '[blocking]'
  echo 'sinkhole_ipv4 = "192.0.2.53"'
  echo '[reload]'
  echo 'watch_interval_secs = 0'
  echo '[stats]'
  echo "database = \"$work/stats.sqlite\""
  blocked=()
  for dir in ut1 hagezi hostsvn blocklistproject sinfonietta; do
    echo '[[category]]'
    echo "id = \"$dir\""
    printf 'lists = ['
    for f in "$data/$dir"/*.txt; do printf '"%s", ' "$f"; done
    printf '"%s"]\n' "$work/extra-$dir.txt"
    : > "$work/extra-$dir.txt"
    blocked+=("\"$dir\"")
  done
  echo '[[band]]'
  echo 'id = "students"'
  echo "block = [$(IFS=,; echo "${blocked[*]}")]"
  echo '[[school]]'
  echo 'id = "bench"'
  echo 'networks = ["127.0.0.0/8"]'
} > "$work/edudns.toml"

# Queries: 50 % listed names, 50 % popular names (mostly allowed, cached after the first).
awk '!/^#/ && NF && n < 50000 {print $1" A"; n++}' "$data/hagezi/gambling.txt" > "$work/blocked.q"
awk -F, 'NR > 1 && n < 50000 {print $2" A"; n++}' "$data/top-sites/umbrella-top-100k.csv" > "$work/allowed.q"
paste -d'\n' "$work/blocked.q" "$work/allowed.q" > "$work/mixed.q"

started=$(date +%s.%N)
taskset -c 0 "$root/target/release/edudns" serve -c "$work/edudns.toml" > "$work/edudns.log" 2>&1 &
pid=$!
until grep -q "listening on 127.0.0.1:5398" "$work/edudns.log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/edudns.log"; exit 1; }
  sleep 0.05
done
ready=$(date +%s.%N)
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status"; }
domains=$(grep -o 'domains=[0-9]*' "$work/edudns.log" | head -1 | cut -d= -f2)
echo "edudns: $domains listed domains, ready in $(awk "BEGIN {printf \"%.2f\", $ready - $started}") s, RSS $(rss) MiB, peak $(hwm) MiB at start"
steady=$(rss)

taskset -c 1 dnsperf -s 127.0.0.1 -p 5398 -d "$work/mixed.q" -l "$seconds" -Q "$rate" -c 8 > "$work/dnsperf.txt" 2>&1 &
perf=$!
interval=$((seconds / (reloads + 1)))
for i in $(seq 1 "$reloads"); do
  sleep "$interval"
  echo "reload-test-$i.example" >> "$work/extra-ut1.txt"
  kill -HUP "$pid"
done
wait "$perf"
grep -E 'Queries sent|Queries completed|Queries lost|Queries per second|Average Latency' "$work/dnsperf.txt"
echo "reloads: $(grep -c 'reload succeeded' "$work/edudns.log") succeeded, $(grep -c 'reload failed' "$work/edudns.log") failed"
grep -o 'snapshot built.*' "$work/edudns.log" | grep -o 'ms=[0-9]*' | tr '\n' ' '; echo "(snapshot build times)"
echo "RSS steady $steady MiB, after reloads $(rss) MiB, peak (VmHWM) $(hwm) MiB"
