#!/usr/bin/env bash
# Legitimate bursts through a slow upstream (issue: bursts never get
# SERVFAIL): the first 10,000 names of the Umbrella top list replayed with
# 200 questions in flight over 20 client sockets, through edudns and through
# Unbound in the same run, both forwarding to one loopback upstream that
# answers every name after 150 ms (benches/load/slow_upstream.py), each
# with a cold cache. Reports per server: SERVFAIL answers, the questions the
# upstream received, p50/p99 latency. Loopback only; about a minute.
#   bash benches/load/bursts.sh          [NAMES=10000 DELAY_MS=150]
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
names=${NAMES:-10000}
delay=${DELAY_MS:-150}
upstream_port=5379

awk -F, -v n="$names" 'NR > 1 && c < n {print $2 " A"; c++}' "$data/top-sites/umbrella-top-100k.csv" > "$work/top.q"

{ unbound_head 5377; cat <<UNBOUND; } > "$work/unbound.conf"
  do-not-query-localhost: no
  prefetch: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$upstream_port
UNBOUND

cat > "$work/edudns.toml" <<TOML
[server]
dns_listen = ["127.0.0.1:5378"]
management_listen = "127.0.0.1:5376"
[upstream]
servers = ["127.0.0.1:$upstream_port"]
[blocking]
sinkhole_ipv4 = "192.0.2.53"
[reload]
watch_interval_secs = 0
[stats]
database = "$work/stats.sqlite"
[[category]]
id = "none"
lists = []
[[band]]
id = "all"
block = []
[[school]]
id = "bench"
networks = ["127.0.0.0/8"]
TOML

measure() { # server port → "servfail upstream_questions p50_ms p99_ms"
  local server=$1 port=$2
  python3 "$root/benches/load/slow_upstream.py" $upstream_port "$delay" "$work/count" &
  local upstream=$!
  sleep 0.5
  if [ "$server" = edudns ]; then
    "$root/target/release/edudns" serve -c "$work/edudns.toml" > "$work/edudns.log" 2>&1 &
  else
    unbound -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
  fi
  local pid=$!
  until dig @127.0.0.1 -p "$port" +tries=1 +time=1 localhost. >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work"/*.log; exit 1; }
    sleep 0.1
  done
  kill -USR1 "$upstream"; sleep 0.2
  local before
  before=$(cat "$work/count")
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/top.q" -n 1 -c 20 -q 200 -t 5 -v > "$work/$server.perf" 2>&1
  sleep 0.5
  kill -USR1 "$upstream"; sleep 0.2
  local after
  after=$(cat "$work/count")
  local servfail
  servfail=$(awk '/Response codes/ {for (i = 1; i <= NF; i++) if ($i == "SERVFAIL") n = $(i + 1)} END {print n + 0}' "$work/$server.perf")
  local lat
  lat=$(awk '/^> / {print $NF}' "$work/$server.perf" | sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.1f %.1f", 1000*v[int(NR*0.5)], 1000*v[int(NR*0.99)]; else print "0 0"}')
  local lost
  lost=$(awk '/Queries lost/ {print $3}' "$work/$server.perf")
  kill "$pid" "$upstream"; wait "$pid" "$upstream" 2>/dev/null || true
  echo "$servfail $((after - before)) $lat $lost"
}

echo "| Server | Names | SERVFAIL | Lost | Upstream questions | p50 | p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for server in edudns unbound; do
  port=5378; [ "$server" = unbound ] && port=5377
  read -r servfail questions p50 p99 lost < <(measure "$server" "$port")
  echo "| $server | $names | $servfail | $lost | $questions | $p50 ms | $p99 ms |"
done
