#!/usr/bin/env bash
# edudns vs Unbound over DNS over TLS, DNS over HTTPS and plain UDP, in one
# run: answers per server CPU-second for cached and blocked names. Same
# ~1.1M-domain blocklist as compare.sh, same wildcard upstream, same
# throwaway self-signed certificate (ECDSA P-256) for both servers, same
# number of TLS connections (dnsperf -c 20, kept open for the whole run).
# Servers on core 0, dnsperf on core 1, loopback only. Each workload runs
# ROUNDS times per server, alternating edudns and Unbound; the ratio is
# reported per round and as the median. About 8 minutes.
#   bash benches/load/encrypted.sh        [SECONDS_RUN=10 ROUNDS=3]
#
# DoH: GET over connections of one HTTP/2 stream each, for both servers.
# dnsperf 2.10 takes one DNS message per SSL_read: when a server puts two
# answers in one TLS record (edudns does; Unbound writes a record per
# answer) the second is dropped (its DATA chunk is paused, never copied)
# and the query times out. One stream per connection means one answer in
# flight per connection. Its POST writes headers and body separately
# without TCP_NODELAY, so each POST waits for a delayed ACK (about 44 ms,
# for both servers): a latency test, not a CPU one. DOH_METHOD=POST to see.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
seconds=${SECONDS_RUN:-10}
rounds=${ROUNDS:-3}
doh_method=${DOH_METHOD:-GET}
edudns_bin=${CARGO_TARGET_DIR:-$root/target}/release/edudns
# Ports: not those of the other load scripts, so they can share a machine.
upstream_port=5360
declare -A ports=(
  [edudns,udp]=5361 [edudns,dot]=5362 [edudns,doh]=5363
  [unbound,udp]=5364 [unbound,dot]=5365 [unbound,doh]=5366
)

python3 "$root/benches/load/domains.py" "$data" "$work/domains.txt"

# One certificate and key for both servers (dnsperf does not verify it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/dns.key" -out "$work/dns.crt" -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

# Wildcard upstream on loopback, as in compare.sh, but with a one-hour TTL:
# the run is longer than five minutes and cached names must stay cached.
{ unbound_head "$upstream_port"; cat <<UNBOUND; } > "$work/upstream.conf"
  local-zone: "." redirect
  local-data: ". 3600 IN A 192.0.2.1"
UNBOUND
taskset -c 1 unbound -c "$work/upstream.conf" 2>"$work/upstream.log" &

# Unbound as the filter: one local-zone per blocked domain, forwarding the
# rest; DoT and DoH on their own interfaces (the port decides the service).
# incoming-num-tcp: the default (10 per thread) would serve only half of
# the 20 connections; edudns's max_handshakes_per_client is raised likewise.
# http-max-streams / max_streams_per_connection: 1 (DoH, see the top).
{
  unbound_head "${ports[unbound,udp]}"
  echo "  interface: 127.0.0.1@${ports[unbound,dot]}"
  echo "  interface: 127.0.0.1@${ports[unbound,doh]}"
  echo "  tls-port: ${ports[unbound,dot]}"
  echo "  https-port: ${ports[unbound,doh]}"
  echo "  tls-service-key: \"$work/dns.key\""
  echo "  tls-service-pem: \"$work/dns.crt\""
  echo '  http-endpoint: "/dns-query"'
  echo '  incoming-num-tcp: 100'
  echo '  http-max-streams: 1'
  echo '  do-not-query-localhost: no'
  echo '  msg-cache-size: 64m'
  echo '  rrset-cache-size: 128m'
  awk '{print "  local-zone: \"" $1 ".\" always_nxdomain"}' "$work/domains.txt"
  echo 'forward-zone:'
  echo '  name: "."'
  echo "  forward-addr: 127.0.0.1@$upstream_port"
} > "$work/unbound.conf"

cat > "$work/edudns.toml" <<TOML
[server]
dns_listen = ["127.0.0.1:${ports[edudns,udp]}"]
management_listen = "127.0.0.1:0"
[upstream]
servers = ["127.0.0.1:$upstream_port"]
cache_size = 200000
[blocking]
mode = "nxdomain"
[reload]
watch_interval_secs = 0
[stats]
database = "$work/stats.sqlite"
[encrypted_dns]
dot_listen = ["127.0.0.1:${ports[edudns,dot]}"]
doh_listen = ["127.0.0.1:${ports[edudns,doh]}"]
certificate = "$work/dns.crt"
private_key = "$work/dns.key"
max_handshakes_per_client = 32
max_streams_per_connection = 1
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

# Workloads: blocked, compare.sh's 50,000 distinct listed names; cached,
# the 20,000 most popular sites that are not listed (nor under a listed
# name), answered by the upstream and cached after the warm-up; allowed,
# compare.sh's "cached allowed" (the top 20,000 as they are, 39 % of them
# listed), over UDP only, to compare with compare.sh's figures.
awk 'NR % 20 == 1 {print $1 " A"; n++} n >= 50000 {exit}' "$work/domains.txt" > "$work/blocked.q"
awk -F, 'NR > 1 && n < 20000 {print $2 " A"; n++}' "$data/top-sites/umbrella-top-100k.csv" > "$work/allowed.q"
awk -F, 'NR == FNR {listed[$1]; next}
  FNR > 1 {
    name = tolower($2); sub(/\.$/, "", name); d = name
    while (!(d in listed) && index(d, ".")) d = substr(d, index(d, ".") + 1)
    if (!(d in listed)) {print $2 " A"; if (++n >= 20000) exit}
  }' "$work/domains.txt" "$data/top-sites/umbrella-top-100k.csv" > "$work/cached.q"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# dnsperf's transport options: plain UDP as in compare.sh (8 sockets);
# DoT and DoH over 20 connections each, opened once per run and kept. DoH:
# 40 outstanding, two per one-stream connection (one at the server, the
# next ready in dnsperf); with 500 the other 460 only wait in dnsperf's
# HTTP/2 queue, and its crashes below came in most DoH runs instead of few.
perf_args() { # server transport
  local port=${ports[$1,$2]}
  case $2 in
    udp) echo "-m udp -s 127.0.0.1 -p $port -c 8 -q 500" ;;
    dot) echo "-m dot -s 127.0.0.1 -p $port -c 20 -q 500" ;;
    doh) echo "-m doh -s 127.0.0.1 -p $port -c 20 -q 40 -O doh-uri=https://127.0.0.1:$port/dns-query -O doh-method=$doh_method" ;;
  esac
}

# dnsperf 2.10's DoH client sometimes dies of a segmentation fault (one run
# in ten to one in two here, against either server): such a run is taken
# again (at most four times), its CPU not counted, and counted in
# $work/crashes; a round still without a figure is left out of the median.
run() { # server transport queryfile → "qps answers_per_cpu_s cpu%"
  local pid=${pids[$1]} t0 t1 rc attempt
  for attempt in 1 2 3 4 5; do
    t0=$(cpu_ticks "$pid")
    rc=0
    # shellcheck disable=SC2046
    taskset -c 1 dnsperf $(perf_args "$1" "$2") -d "$3" -l "$seconds" > "$work/perf.txt" 2>&1 || rc=$?
    sleep 0.2   # connections closing: their CPU counts too
    t1=$(cpu_ticks "$pid")
    [ "$rc" -eq 0 ] && grep -q 'Queries completed' "$work/perf.txt" && break
    echo "$1 $2 rc=$rc" >> "$work/crashes"
  done
  local done qps
  done=$(awk '/Queries completed/ {print $3}' "$work/perf.txt")
  qps=$(awk '/Queries per second/ {print int($4)}' "$work/perf.txt")
  [ -n "$done" ] || { echo "dnsperf $1 $2 failed (rc $rc):" >&2; cat "$work/perf.txt" >&2; done=0; qps=0; }
  awk -v d="$done" -v t=$((t1 - t0)) -v q="$qps" 'BEGIN { cpu = t / 100; printf "%d %d %.0f%%", q, (cpu > 0 ? d / cpu : 0), 100 * cpu / '"$seconds"' }'
}

declare -A pids result codes
taskset -c 0 "$edudns_bin" serve -c "$work/edudns.toml" > "$work/edudns.log" 2>&1 &
pids[edudns]=$!
until grep -q "listening on 127.0.0.1:${ports[edudns,doh]}" "$work/edudns.log"; do
  kill -0 "${pids[edudns]}" 2>/dev/null || { cat "$work/edudns.log"; exit 1; }
  sleep 0.05
done
taskset -c 0 unbound -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
pids[unbound]=$!
until dig @127.0.0.1 -p "${ports[unbound,udp]}" +tries=1 +time=1 example.org >/dev/null 2>&1; do
  kill -0 "${pids[unbound]}" 2>/dev/null || { cat "$work/unbound.log"; exit 1; }
  sleep 0.1
done

# What each server negotiates with an OpenSSL client (dnsperf uses OpenSSL).
for server in edudns unbound; do
  for t in dot:dot doh:h2; do
    hs=$(timeout 5 openssl s_client -connect "127.0.0.1:${ports[$server,${t%%:*}]}" -alpn "${t#*:}" </dev/null 2>/dev/null \
      | awk '/^New, / {c = $2 " " $5} /^ALPN protocol/ {a = $3} /^Server Temp Key/ {k = $4 $5} END {print c, "ALPN", (a ? a : "none"), "key exchange", k}')
    echo "$server ${t%%:*}: $hs"
  done
done

# Warm the caches: the cached names come from the upstream once.
for server in edudns unbound; do
  taskset -c 1 dnsperf $(perf_args $server udp) -d "$work/cached.q" -n 1 >/dev/null 2>&1
  taskset -c 1 dnsperf $(perf_args $server udp) -d "$work/allowed.q" -n 1 >/dev/null 2>&1
  taskset -c 1 dnsperf $(perf_args $server udp) -d "$work/blocked.q" -n 1 >/dev/null 2>&1
done

workloads=(udp,cached udp,blocked udp,allowed dot,cached dot,blocked doh,cached doh,blocked)
for round in $(seq 1 "$rounds"); do
  # Alternate which server goes first, so drift skews both alike.
  if [ $((round % 2)) -eq 1 ]; then order=(edudns unbound); else order=(unbound edudns); fi
  for w in "${workloads[@]}"; do
    for server in "${order[@]}"; do
      result[$server,$w,$round]=$(run "$server" "${w%,*}" "$work/${w#*,}.q")
      codes[$server,$w]="$(awk -F': *' '/Response codes/ {print $2}' "$work/perf.txt"); lost $(awk '/Queries lost/ {print $3}' "$work/perf.txt")"
      echo "round $round $w $server: ${result[$server,$w,$round]}" >&2
    done
  done
done

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
printf '\n%-12s %5s %26s %26s %7s\n' workload round "edudns (qps / ans/cpu-s / cpu)" "unbound (qps / ans/cpu-s / cpu)" ratio
for w in "${workloads[@]}"; do
  ratios=(); es=(); us=()
  for round in $(seq 1 "$rounds"); do
    e=${result[edudns,$w,$round]}; u=${result[unbound,$w,$round]}
    a=$(echo "$e" | cut -d' ' -f2); b=$(echo "$u" | cut -d' ' -f2)
    if [ "$a" -gt 0 ] && [ "$b" -gt 0 ]; then
      es+=("$a"); us+=("$b")
      ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')
      ratios+=("$ratio"); shown=${ratio}x
    else
      shown=n/a
    fi
    printf '%-12s %5s %26s %26s %7s\n' "$w" "$round" "$e" "$u" "$shown"
  done
  [ ${#ratios[@]} -gt 0 ] || { printf '%-12s median: no round with both figures\n' "$w"; continue; }
  lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1); hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
  printf '%-12s %5s %26s %26s %7s  (%d rounds, %s-%s)\n' "$w" median \
    "$(printf '%s\n' "${es[@]}" | median)" "$(printf '%s\n' "${us[@]}" | median)" \
    "$(printf '%s\n' "${ratios[@]}" | median)x" "${#ratios[@]}" "$lo" "$hi"
done
echo
echo "dnsperf runs taken again after a crash: $(cat "$work/crashes" 2>/dev/null | tr '\n' ' ')"
echo "DoH method: $doh_method. Response codes of the last round (and queries lost):"
for w in "${workloads[@]}"; do
  for server in edudns unbound; do
    printf '  %-12s %-8s %s\n' "$w" "$server" "${codes[$server,$w]}"
  done
done
