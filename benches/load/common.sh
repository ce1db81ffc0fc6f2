# Shared by capacity.sh and soak.sh (sourced): a wildcard upstream (unbound
# on loopback answering every name with 192.0.2.1) and edudns with the
# ~1.1M-domain configuration of reload.sh, pinned to core 0. Loopback only.
# Sets: root, data, work, pid (edudns), rss().
# Ports: DNS_PORT (default 5388), UPSTREAM_PORT (5389): not those of
# reload.sh/compare.sh, so the scripts can share a machine.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
dns_port=${DNS_PORT:-5388}
upstream_port=${UPSTREAM_PORT:-5389}

{ unbound_head "$upstream_port"; cat <<UNBOUND; } > "$work/unbound.conf"
  local-zone: "." redirect
  local-data: ". 300 IN A 192.0.2.1"
UNBOUND
taskset -c 1 unbound -c "$work/unbound.conf" 2>"$work/unbound.log" &
sleep 1

{
  echo '[server]'
  echo "dns_listen = [\"127.0.0.1:$dns_port\"]"
  echo 'management_listen = "127.0.0.1:0"'
  echo '[upstream]'
  echo "servers = [\"127.0.0.1:$upstream_port\"]"
  echo "cache_size = ${CACHE_SIZE:-10000}"
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
    first=1
    for f in "$data/$dir"/*.txt; do
      [ $first -eq 1 ] || printf ', '
      printf '"%s"' "$f"
      first=0
    done
    printf ']\n'
    blocked+=("\"$dir\"")
  done
  echo '[[band]]'
  echo 'id = "students"'
  echo "block = [$(IFS=,; echo "${blocked[*]}")]"
  echo '[[school]]'
  echo 'id = "bench"'
  echo 'networks = ["127.0.0.0/8"]'
} > "$work/edudns.toml"

# The query mix of a school, 200,000 queries: 80 % popular sites, drawn
# with a Zipf-like (log-uniform rank) law over the top 100k so a few sites
# dominate as in real traffic (mostly cache hits, a tail of misses), and
# 20 % listed names (blocked), drawn uniformly. Deterministic (fixed seed).
awk -F, 'NR > 1 && n < 100000 {print $2; n++}' "$data/top-sites/umbrella-top-100k.csv" > "$work/allowed.txt"
awk '!/^#/ && NF && n < 25000 {print $1; n++}' "$data/hagezi/gambling.txt" > "$work/blocked.txt"
awk 'BEGIN {srand(42)}
  NR == FNR {allowed[++na] = $1; next}
  {blocked[++nb] = $1}
  END {
    for (i = 0; i < 200000; i++) {
      if (rand() < 0.2) print blocked[1 + int(rand() * nb)] " A"
      else print allowed[1 + int(exp(rand() * log(na)))] " A"
    }
  }' "$work/allowed.txt" "$work/blocked.txt" > "$work/mix.q"

taskset -c 0 "$root/target/release/edudns" serve -c "$work/edudns.toml" > "$work/edudns.log" 2>&1 &
pid=$!
until grep -qs "listening on 127.0.0.1:$dns_port" "$work/edudns.log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/edudns.log"; exit 1; }
  sleep 0.05
done
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
domains=$(grep -o 'domains=[0-9]*' "$work/edudns.log" | head -1 | cut -d= -f2)
echo "edudns: $domains listed domains, RSS $(rss) MiB after start"
