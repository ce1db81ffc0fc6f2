#!/usr/bin/env bash
# End-to-end check of province-scale metrics for schools behind NAT
# (docs/scaling.md, "From schools behind NAT to the office"), all on
# loopback with the real binaries:
#   - two edudns nodes (two schools), each answering real dig queries,
#     with admin.metrics_require_token = true;
#   - the office's Prometheus (deploy/monitoring/prometheus-central.yml)
#     with --web.enable-remote-write-receiver, TLS and basic auth from
#     deploy/monitoring/web-config.yml (rendered with a test CA and bcrypt
#     hashes);
#   - one Prometheus agent per node, from deploy/monitoring/prometheus-agent.yml
#     rendered with the test's ports and files (the shipped file, not a copy
#     of it), scraping its node with the token and remote_writing over HTTPS;
# then asks the office's query API and checks that the district's sum of
# edudns_queries_total equals the sum of the nodes' own /metrics exactly,
# that each school is there with its own figure, that the series carry
# only bounded labels, that a write without the password is refused, and
# that removing a school from web-config.yml revokes it without a restart.
# Also validates the shipped files (promtool, json.tool).
#
#     bash .ci/remote-write-check.sh
#     EDUDNS_BIN=/path/to/edudns bash .ci/remote-write-check.sh
# EDUDNS_BIN defaults to ${CARGO_TARGET_DIR:-target}/debug/edudns (what
# .ci/run builds); it is built when missing. Needs prometheus and promtool
# (Debian's prometheus, 2.42 or later), htpasswd (apache2-utils), openssl,
# dig, curl and python3; installs the first two when missing. About 20 s.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
mon="$repo/deploy/monitoring"
bin=${EDUDNS_BIN:-${CARGO_TARGET_DIR:-target}/debug/edudns}
if [ -z "${EDUDNS_BIN:-}" ] && [ ! -x "$bin" ]; then
  cargo build --locked --quiet
fi
[ -x "$bin" ] || { echo "FAIL edudns binary $bin not found (set EDUDNS_BIN)"; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

passed=0
failed=0
ok() { printf 'PASS %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL %s\n' "$*"; failed=$((failed + 1)); }
# die WHAT: a failure after which nothing else can be checked.
die() {
  fail "$*"
  printf 'remote-write-check: %d passed, %d failed\n' "$passed" "$failed"
  exit 1
}

# ------------------------------------------------------------------ tools
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # Installing prometheus must not start a Prometheus server on this
  # machine: refuse every service start for the duration of the install
  # (as .ci/deploy-check.sh does).
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 0755 /usr/sbin/policy-rc.d
    guard=1
  fi
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || true
  [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi
for tool in prometheus promtool htpasswd openssl dig curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
echo "$(prometheus --version 2>&1 | head -n1)"

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# Whole-run bound: the polls below are bounded, this catches anything else.
deadline=$((SECONDS + 110))

# Free loopback ports: bound all at once, so they differ, then released.
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')"
central_port=${ports[0]}

# ------------------------------------------------------- shipped files
if promtool check config --agent --syntax-only "$mon/prometheus-agent.yml" >/dev/null 2>&1; then
  ok "promtool check config --agent --syntax-only deploy/monitoring/prometheus-agent.yml"
else
  fail "promtool check config --agent --syntax-only deploy/monitoring/prometheus-agent.yml"
fi
if out=$(promtool check config "$mon/prometheus-central.yml" 2>&1); then
  ok "promtool check config deploy/monitoring/prometheus-central.yml (and its rules)"
else
  fail "promtool check config deploy/monitoring/prometheus-central.yml"
  printf '%s\n' "$out" | sed 's/^/       /'
fi
for dashboard in "$mon"/grafana-district.json "$mon"/grafana-school.json "$mon"/grafana-dashboard.json; do
  if python3 -m json.tool "$dashboard" >/dev/null 2>&1; then
    ok "${dashboard#"$repo"/} is JSON"
  else
    fail "${dashboard#"$repo"/} is not JSON"
  fi
done

# render SRC DST FROM TO...: sed every FROM into TO; each FROM must be in
# SRC, so that a change to the shipped file cannot leave the test behind.
render() {
  local src=$1 dst=$2 args=()
  shift 2
  while [ $# -gt 0 ]; do
    grep -qF -- "$1" "$src" || die "${src#"$repo"/} no longer contains '$1': update .ci/remote-write-check.sh"
    args+=(-e "s|$1|$2|g")
    shift 2
  done
  sed "${args[@]}" "$src" >"$dst"
}

# ------------------------------------------------------------ the office
# A CA of the office, and the server certificate it signs for 127.0.0.1.
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.crt -days 2 -subj "/CN=edudns CI office CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout office.key -out office.csr -subj "/CN=127.0.0.1"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >office.ext
  openssl x509 -req -in office.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days 2 -extfile office.ext -out office.crt
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; die "openssl could not make the test certificates"; }

schools=(thcs-le-loi thcs-tran-phu)
declare -A password
for s in "${schools[@]}" grafana; do
  password[$s]=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
done
bcrypt_hash() { htpasswd -nbB -C 10 x "$1" | cut -d: -f2; }
# The shipped file's example hash, replaced by one user per school and
# Grafana's, each with its own password.
example_hash=$(awk '$1 == "grafana:" {print $2}' "$mon/web-config.yml")
[ -n "$example_hash" ] || die "deploy/monitoring/web-config.yml has no grafana user: update .ci/remote-write-check.sh"
render "$mon/web-config.yml" "$work/web-config.yml" \
  /etc/prometheus/office.crt "$work/office.crt" \
  /etc/prometheus/office.key "$work/office.key" \
  "example-school-node: $example_hash" \
  "${schools[0]}: $(bcrypt_hash "${password[${schools[0]}]}")\n  ${schools[1]}: $(bcrypt_hash "${password[${schools[1]}]}")" \
  "grafana: $example_hash" "grafana: $(bcrypt_hash "${password[grafana]}")"
if out=$(promtool check web-config "$work/web-config.yml" 2>&1); then
  ok "promtool check web-config deploy/monitoring/web-config.yml (rendered with the test certificate and hashes)"
else
  fail "promtool check web-config deploy/monitoring/web-config.yml"
  printf '%s\n' "$out" | sed 's/^/       /'
fi

central="https://127.0.0.1:$central_port"
# The shipped prometheus-central.yml itself (its rules are found beside it).
prometheus --config.file="$mon/prometheus-central.yml" \
  --web.config.file="$work/web-config.yml" \
  --web.enable-remote-write-receiver \
  --web.listen-address="127.0.0.1:$central_port" \
  --storage.tsdb.path="$work/central-data" \
  >"$work/central.log" 2>&1 &
pids+=($!)

# ----------------------------------------------------------- the nodes
# node_config SCHOOL DIR DNS HTTP MGMT
node_config() {
  cat <<EOF
[server]
dns_listen = ["127.0.0.1:$3"]
http_listen = ["127.0.0.1:$4"]
management_listen = "127.0.0.1:$5"

[upstream]
# Nothing listens here: allowed names get SERVFAIL at once, and count.
servers = ["127.0.0.1:1"]
timeout_ms = 500

[blocking]
mode = "sinkhole"
sinkhole_ipv4 = "127.0.0.1"
sinkhole_ipv6 = "::1"

[reload]
watch_interval_secs = 0

[stats]
database = "$2/stats.sqlite"
key_dir = "$2/keys"

[admin]
metrics_require_token = true

[[category]]
id = "adult"
name = "Adult"
lists = ["$repo/blocklists/curated/adult.txt"]

[[category]]
id = "gambling"
name = "Gambling"
lists = ["$repo/blocklists/curated/gambling.txt"]

[[band]]
id = "thcs"
name = "THCS"
block = ["adult", "gambling"]

[[band]]
id = "staff"
name = "Staff"
block = ["adult"]

[[school]]
id = "$1"
name = "$1"
networks = ["127.0.0.0/8"]
unknown_band = "thcs"

[school.bands]
staff = ["127.0.0.10/32"]
EOF
}

declare -A dns mgmt token
i=1
for s in "${schools[@]}"; do
  dir="$work/$s"
  mkdir -p "$dir"
  dns[$s]=${ports[i]}
  mgmt[$s]=${ports[i + 2]}
  node_config "$s" "$dir" "${dns[$s]}" "${ports[i + 4]}" "${mgmt[$s]}" >"$dir/edudns.toml"
  "$bin" check-config "$dir/edudns.toml" >"$dir/check-config.log" 2>&1 ||
    { cat "$dir/check-config.log"; die "edudns check-config for $s"; }
  # The agent's scrape token: the least role that may read /metrics.
  token[$s]=$("$bin" tokens create -c "$dir/edudns.toml" --role auditor --name "prometheus agent" 2>&1 |
    grep -o 'edudns_[0-9a-f]*_[A-Za-z0-9_-]*' | head -n1) || true
  [ -n "${token[$s]}" ] || die "edudns tokens create for $s printed no token"
  printf '%s\n' "${token[$s]}" >"$dir/metrics.token"
  printf '%s\n' "${password[$s]}" >"$dir/office.password"
  chmod 0600 "$dir/metrics.token" "$dir/office.password"
  "$bin" serve -c "$dir/edudns.toml" >"$dir/edudns.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
  local what=$1 until=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.5
  done
}
for s in "${schools[@]}"; do
  wait_for "edudns $s" 20 curl -sf "http://127.0.0.1:${mgmt[$s]}/healthz" ||
    { tail -n 20 "$work/$s/edudns.log"; die "edudns $s did not start"; }
done
ok "two edudns nodes up (schools ${schools[*]})"

# /metrics needs the token (metrics_require_token): what the agent proves
# by scraping with credentials_file.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${mgmt[${schools[0]}]}/metrics")
if [ "$code" = 401 ]; then ok "/metrics without the token: $code"; else fail "/metrics without the token: $code, expected 401"; fi

# Real queries: blocked names of the node's lists (must get the sinkhole)
# and others (SERVFAIL from the dead upstream). Different numbers per node.
# Sent twice: before the agents run (counters that are already up when
# first scraped) and after the office got the first samples (increases).
blocked_a=(pornhub.com xvideos.com bet365.com)
blocked_b=(xnxx.com 188bet.com)
other_a=(example.com wikipedia.org)
other_b=(example.org moet.gov.vn vnexpress.net edu.vn zing.vn)
# expect_blocked SCHOOL NAME [dig options]: the answer must be the sinkhole.
expect_blocked() {
  local s=$1 name=$2 answer
  shift 2
  answer=$(dig +tries=1 +time=2 +short "$@" @127.0.0.1 -p "${dns[$s]}" "$name" A || true)
  [ "$answer" = 127.0.0.1 ] || fail "$name at $s: '$answer', expected the sinkhole 127.0.0.1"
}
send_queries() {
  local name
  for name in "${blocked_a[@]}"; do expect_blocked "${schools[0]}" "$name"; done
  for name in "${blocked_b[@]}"; do expect_blocked "${schools[1]}" "$name"; done
  # The staff band of the first school (127.0.0.10) blocks adult too.
  expect_blocked "${schools[0]}" pornhub.com -b 127.0.0.10
  for name in "${other_a[@]}"; do
    dig +tries=1 +time=2 +short @127.0.0.1 -p "${dns[${schools[0]}]}" "$name" A >/dev/null 2>&1 || true
  done
  for name in "${other_b[@]}"; do
    dig +tries=1 +time=2 +short @127.0.0.1 -p "${dns[${schools[1]}]}" "$name" A >/dev/null 2>&1 || true
  done
  ok "dig ($1): $((${#blocked_a[@]} + 1)) blocked + ${#other_a[@]} other queries to ${schools[0]}, ${#blocked_b[@]} blocked + ${#other_b[@]} other to ${schools[1]}"
}
send_queries "before the agents"

# ----------------------------------------------------------- the agents
wait_for central 20 curl -sf --cacert "$work/ca.crt" -u "grafana:${password[grafana]}" "$central/-/ready" ||
  { tail -n 20 "$work/central.log"; die "the office's Prometheus did not start"; }
ok "office Prometheus up on $central (TLS, basic auth, remote-write receiver)"

i=7
for s in "${schools[@]}"; do
  dir="$work/$s"
  render "$mon/prometheus-agent.yml" "$dir/agent.yml" \
    "scrape_interval: 30s" "scrape_interval: 1s" \
    "scrape_timeout: 10s" "scrape_timeout: 1s" \
    "batch_send_deadline: 10s" "batch_send_deadline: 1s" \
    "example-district" "ci-district" \
    "example-school-node" "$s" \
    "127.0.0.1:9153" "127.0.0.1:${mgmt[$s]}" \
    "https://office.example/api/v1/write" "$central/api/v1/write" \
    /etc/prometheus/edudns-metrics.token "$dir/metrics.token" \
    /etc/prometheus/office-remote-write.password "$dir/office.password" \
    /etc/prometheus/office-ca.crt "$work/ca.crt"
  if out=$(promtool check config --agent "$dir/agent.yml" 2>&1); then
    ok "promtool check config --agent deploy/monitoring/prometheus-agent.yml (rendered for $s, files present)"
  else
    fail "promtool check config --agent deploy/monitoring/prometheus-agent.yml (rendered for $s)"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
  prometheus --enable-feature=agent --config.file="$dir/agent.yml" \
    --storage.agent.path="$dir/agent-data" \
    --web.listen-address="127.0.0.1:${ports[i]}" \
    >"$dir/agent.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done

# query PROMQL: the office's answer, one "labels value" line per series.
query() {
  curl -sf --cacert "$work/ca.crt" -u "grafana:${password[grafana]}" \
    --data-urlencode "query=$1" "$central/api/v1/query" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items()))
    print(labels, r["value"][1])'
}
scalar() { query "$1" | awk '{print $NF}' | head -n1; }

# The first samples of both nodes at the office, then the second round.
first=""
until=$((SECONDS + 60))
while [ "$SECONDS" -lt "$until" ]; do
  first=$(scalar 'count(count by (school) (edudns_queries_total))' 2>/dev/null || true)
  [ "$first" = 2 ] && break
  sleep 0.5
done
[ "$first" = 2 ] || {
  for s in "${schools[@]}"; do tail -n 5 "$work/$s/agent.log" | sed "s/^/       agent $s: /"; done
  die "the office has samples of '${first:-no}' schools after 60 s, expected 2"
}
ok "office: first samples of both schools after $SECONDS s"
send_queries "after the first samples"

# node_sum SCHOOL [VERDICT]: the node's own edudns_queries_total, summed.
node_metrics() { curl -sf -H "Authorization: Bearer ${token[$1]}" "http://127.0.0.1:${mgmt[$1]}/metrics"; }
node_sum() {
  node_metrics "$1" | awk -v v="${2:-}" '
    /^edudns_queries_total\{/ && (v == "" || index($0, "verdict=\"" v "\"")) { s += $NF }
    END { printf "%d\n", s }'
}
node_series() { node_metrics "$1" | grep -c '^edudns_queries_total{'; }
declare -A own own_blocked
total=0
total_blocked=0
total_series=0
for s in "${schools[@]}"; do
  own[$s]=$(node_sum "$s")
  own_blocked[$s]=$(node_sum "$s" blocked)
  total=$((total + own[$s]))
  total_blocked=$((total_blocked + own_blocked[$s]))
  total_series=$((total_series + $(node_series "$s")))
  echo "     node $s: edudns_queries_total = ${own[$s]} (blocked ${own_blocked[$s]})"
done
[ "${own[${schools[0]}]}" -gt 0 ] && [ "${own[${schools[1]}]}" -gt 0 ] ||
  fail "a node counted no query"

# Poll until the office's sum equals the nodes' sum and stays there for 3 s
# (no more queries are sent; the agents scrape every second).
value=""
stable=0
until=$((SECONDS + 60))
while [ "$SECONDS" -lt "$until" ] && [ "$SECONDS" -lt "$deadline" ]; do
  value=$(scalar 'sum(edudns_queries_total)' 2>/dev/null || true)
  if [ "$value" = "$total" ]; then
    stable=$((stable + 1))
    [ "$stable" -ge 3 ] && break
  else
    stable=0
  fi
  sleep 1
done
if [ "$stable" -ge 3 ]; then
  ok "office: sum(edudns_queries_total) = $value = sum of the two nodes' /metrics ($total), stable for 3 s"
else
  fail "office: sum(edudns_queries_total) = '${value:-no data}' after 60 s, the nodes' sum is $total"
  for s in "${schools[@]}"; do tail -n 5 "$work/$s/agent.log" | sed "s/^/       agent $s: /"; done
  tail -n 5 "$work/central.log" | sed 's/^/       central: /'
fi

# What the uplink carries (information, not a check): the agents' own
# counters of compressed bytes and samples sent.
i=7
for s in "${schools[@]}"; do
  curl -sf "http://127.0.0.1:${ports[i]}/metrics" | awk -v s="$s" '
    /^prometheus_remote_storage_bytes_total\{/ { b += $NF }
    /^prometheus_remote_storage_samples_total\{/ { n += $NF }
    END { if (n > 0) printf "     agent %s: %d samples sent in %d bytes (%.1f bytes a sample)\n", s, n, b, b / n }' || true
  i=$((i + 1))
done

# Nothing moved at the nodes meanwhile: the comparison was with final values.
for s in "${schools[@]}"; do
  now=$(node_sum "$s")
  [ "$now" = "${own[$s]}" ] || fail "node $s counted $now queries, ${own[$s]} before: a query arrived during the check"
done

by_school=$(query 'sum by (school) (edudns_queries_total)' || true)
for s in "${schools[@]}"; do
  got=$(awk -v k="school=$s" '$1 == k {print $2}' <<<"$by_school")
  if [ "$got" = "${own[$s]}" ]; then
    ok "office: sum by (school): $s = $got (its node: ${own[$s]})"
  else
    fail "office: sum by (school): $s = '${got:-missing}', its node counted ${own[$s]}"
  fi
done
got=$(scalar 'sum(edudns_queries_total{verdict="blocked"})' || true)
if [ "$got" = "$total_blocked" ]; then
  ok "office: blocked = $got (nodes: $total_blocked)"
else
  fail "office: blocked = '${got:-missing}', nodes: $total_blocked"
fi
got=$(scalar 'count(edudns_queries_total)' || true)
if [ "$got" = "$total_series" ]; then
  ok "office: $got series of edudns_queries_total, as many as the two nodes export"
else
  fail "office: '${got:-missing}' series of edudns_queries_total, the nodes export $total_series"
fi
up=$(query 'up{job="edudns"}' || true)
for s in "${schools[@]}"; do
  if grep -q "instance=$s,job=edudns,node=$s .*1$" <<<"$up"; then
    ok "office: up{node=\"$s\", instance=\"$s\"} = 1 (the agent scraped with the token)"
  else
    fail "office: no up = 1 for node $s: $up"
  fi
done

# Bounded labels: every label of every edudns series at the office, and no
# value that is a queried name or an address.
series=$(curl -sf --cacert "$work/ca.crt" -u "grafana:${password[grafana]}" \
  --data-urlencode 'match[]={__name__=~"edudns_.*"}' "$central/api/v1/series" || true)
labels=$(python3 -c '
import json, re, sys
data = json.loads(sys.argv[1])["data"]
names = set(sys.argv[2].split())
allowed = {"__name__", "band", "category", "district", "event", "instance", "job", "le",
           "list", "node", "path", "reason", "result", "role", "school", "source",
           "verdict", "version"}
seen = {k for s in data for k in s}
bad = sorted(seen - allowed)
bad += sorted({f"{k}={v}" for s in data for k, v in s.items()
               if v in names or re.fullmatch(r"[0-9]+(\.[0-9]+){3}(:[0-9]+)?|.*:.*:.*", v)})
if bad or not data:
    print("BAD " + " ".join(bad))
else:
    print(f"{len(data)} series, labels: " + " ".join(sorted(seen)))
' "$series" "${blocked_a[*]} ${blocked_b[*]} ${other_a[*]} ${other_b[*]} 127.0.0.1 127.0.0.10" 2>&1 || true)
if [[ "$labels" == *" series, labels: "* ]]; then
  ok "office: edudns series of both nodes: $labels (no domain, no address)"
else
  fail "office: unexpected labels or values: $labels"
fi

# Every query of the district and school dashboards, against the office's
# data, with Grafana's variables filled in: each must parse, and each but
# the "silent for 15 minutes" ones (nothing is silent here) must return
# series, so that no panel names a metric or label that does not arrive.
dashboards=$(python3 - "$central" "$work/ca.crt" "grafana:${password[grafana]}" "${schools[0]}" \
  "$mon/grafana-district.json" "$mon/grafana-school.json" <<'PY' 2>&1 || true
import base64, json, ssl, sys, urllib.parse, urllib.request
central, ca, auth, school = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
header = "Basic " + base64.b64encode(auth.encode()).decode()
total = with_data = 0
bad = []
for path in sys.argv[5:]:
    with open(path, encoding="utf-8") as f:
        board = json.load(f)
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    for expr in exprs:
        q = (expr.replace("$__range", "1h").replace("$district", ".*").replace("$school", school))
        q = q.replace("label_values(edudns_queries_total{district=~\".*\"}, school)", "count by (school) (edudns_queries_total)")
        q = q.replace("label_values(edudns_queries_total, district)", "count by (district) (edudns_queries_total)")
        total += 1
        req = urllib.request.Request(central + "/api/v1/query?" + urllib.parse.urlencode({"query": q}),
                                     headers={"Authorization": header})
        try:
            result = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["data"]["result"]
        except Exception as e:  # a 400 is a PromQL error
            bad.append(f"{path.rsplit('/', 1)[1]}: {expr}: {e}")
            continue
        if result:
            with_data += 1
        elif "> 15" not in expr:
            bad.append(f"{path.rsplit('/', 1)[1]}: no data: {expr}")
for b in bad:
    print("BAD " + b)
print(f"{total} queries, {with_data} with data")
PY
)
if [[ "$dashboards" != *BAD* ]] && [[ "$dashboards" == *" queries, "* ]]; then
  ok "dashboards grafana-district.json and grafana-school.json: $dashboards (the silent-school ones empty, as nothing is silent)"
else
  fail "dashboard queries at the office:"
  printf '%s\n' "$dashboards" | sed 's/^/       /'
fi

# --------------------------------------------------------- refused writes
write_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" "$@" \
  -X POST -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
  --data-binary 'not a write request' "$central/api/v1/write"; }
code=$(write_code)
if [ "$code" = 401 ]; then ok "remote_write without a password: $code"; else fail "remote_write without a password: $code, expected 401"; fi
code=$(write_code -u "${schools[0]}:wrong-password")
if [ "$code" = 401 ]; then ok "remote_write with a wrong password: $code"; else fail "remote_write with a wrong password: $code, expected 401"; fi
# With the right password the request gets past authentication (and is
# then rejected as a malformed body): the 401s above are the auth's.
code=$(write_code -u "${schools[0]}:${password[${schools[0]}]}")
if [ "$code" = 400 ]; then ok "remote_write with the school's password reaches the receiver: $code (malformed body)"; else fail "remote_write with the school's password: $code, expected 400"; fi
# Revoking one school: its line leaves the running office's web-config.yml.
grep -v "^  ${schools[1]}: " "$work/web-config.yml" >"$work/web-config.new"
cat "$work/web-config.new" >"$work/web-config.yml"
code=$(write_code -u "${schools[1]}:${password[${schools[1]}]}")
other=$(write_code -u "${schools[0]}:${password[${schools[0]}]}")
if [ "$code" = 401 ] && [ "$other" = 400 ]; then
  ok "${schools[1]} revoked in web-config.yml, no restart: its write gets $code, ${schools[0]}'s still $other"
else
  fail "after revoking ${schools[1]}: its write gets $code (expected 401), ${schools[0]}'s $other (expected 400)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -u "grafana:${password[grafana]}" "http://127.0.0.1:$central_port/api/v1/query?query=up" || true)
if [ "$code" != 200 ]; then ok "plain HTTP to the office is not served (HTTP $code)"; else fail "plain HTTP to the office answered 200"; fi
if curl -s -o /dev/null -u "grafana:${password[grafana]}" "$central/-/ready" 2>/dev/null; then
  fail "the office's certificate was accepted without the CA file"
else
  ok "the office's certificate is only trusted with the CA file"
fi

printf 'remote-write-check: %d passed, %d failed (%d s)\n' "$passed" "$failed" "$SECONDS"
[ "$failed" -eq 0 ]
