#!/usr/bin/env bash
# The Debian package, checked the way a school installs it: build the .deb
# from the binary the tests just built, check its contents and the systemd
# unit, install it with apt, run the installed service as its own user on
# loopback (query, reload, graceful stop), upgrade it over a locally edited
# configuration (the edit must survive), then remove and purge it.
#
#   bash .ci/package-check.sh        # after `cargo build` (or `cargo test`)
#
# Needs root (or sudo): it installs the package on this machine. Network:
# loopback only (the installed service is started with loopback listeners
# and a loopback upstream; its shipped 0.0.0.0:53 listener is never used).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
step() { echo "package-check: $*"; }

need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v deb-systemd-helper >/dev/null 2>&1 || need+=(init-system-helpers)
command -v adduser >/dev/null 2>&1 || need+=(adduser)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# cargo-deb is pinned: packaging a debug build (below) is a warning in 3.8.
if ! cargo deb --version 2>/dev/null | grep -q '3\.8\.'; then
  cargo install cargo-deb --locked --version 3.8.0 --quiet
fi

[ -x target/debug/edudns ] || cargo build --locked --quiet
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The debug binary the tests ran (a release build would add minutes to CI;
# the package layout and scripts are the same).
deb1="target/package-check/edudns_${version}-1_amd64.deb"
deb2="target/package-check/edudns_${version}-2_amd64.deb"
for revision in 1 2; do
  deb="target/package-check/edudns_${version}-${revision}_amd64.deb"
  bash deploy/debian/build-deb.sh --profile dev --no-build --deb-revision "$revision" \
    --output "$deb" --quiet 2>/dev/null
done
[ -f "$deb1" ] && [ -f "$deb2" ] || fail "cargo deb did not write $deb1 and $deb2"

step "contents of $deb1"
contents=$(dpkg-deb --contents "$deb1")
for path in ./usr/bin/edudns ./etc/edudns/edudns.toml ./etc/edudns/lists/adult.txt \
    ./usr/lib/systemd/system/edudns.service ./usr/share/doc/edudns/operations.md; do
  grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done
grep -q -- '-rw------- 0/0 .* ./etc/edudns/edudns.toml$' <<<"$contents" \
  || fail "edudns.toml must ship with mode 0600"
control=$(mktemp -d)
runner=""
cleanup() {
  rm -rf "$control"
  [ -n "$runner" ] && $sudo pkill -u edudns -f 'edudns serve' 2>/dev/null || true
}
trap cleanup EXIT
dpkg-deb -e "$deb1" "$control"
grep -qx /etc/edudns/edudns.toml "$control/conffiles" || fail "edudns.toml is not a conffile"
grep -q '^Depends:.*adduser' "$control/control" || fail "the package must depend on adduser"

step "the unit's sandbox (systemd-analyze security --offline)"
exposure=$(systemd-analyze security --offline=yes deploy/systemd/edudns.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for edudns.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' \
  || fail "exposure level $exposure is above 2.0: the unit lost some of its hardening"
echo "  exposure level $exposure (≤ 2.0)"

step "install $deb1"
$sudo apt-get purge -y -qq edudns >/dev/null 2>&1 || true
$sudo apt-get install -y -qq "./$deb1" >/dev/null
getent passwd edudns >/dev/null || fail "no edudns user after install"
[ "$(stat -c %U:%a /var/lib/edudns)" = edudns:750 ] || fail "/var/lib/edudns: $(stat -c %U:%a /var/lib/edudns)"
[ "$(stat -c %U:%a /etc/edudns/edudns.toml)" = edudns:600 ] || fail "edudns.toml: $(stat -c %U:%a /etc/edudns/edudns.toml)"

step "systemd-analyze verify (the installed unit and binary)"
systemd-analyze verify /usr/lib/systemd/system/edudns.service

step "check-config as the service user"
$sudo runuser -u edudns -- edudns check-config /etc/edudns/edudns.toml

step "a school's local edit: this machine's loopback as a second school"
# Appended to the conffile the way a school edits it; the upgrade below must keep it.
$sudo tee -a /etc/edudns/edudns.toml >/dev/null <<'TOML'

# local edit kept across upgrades
[[school]]
id = "ci-loopback"
name = "CI loopback"
networks = ["127.0.0.0/8"]
unknown_band = "thcs"
TOML
$sudo runuser -u edudns -- edudns check-config /etc/edudns/edudns.toml

step "run the installed service as edudns on loopback"
dns_port=15353
log=$(mktemp)
# A silent loopback upstream: only blocked names are asked, answered locally.
$sudo runuser -u edudns -- edudns serve -c /etc/edudns/edudns.toml \
  --dns-listen "127.0.0.1:$dns_port" --http-listen 127.0.0.1:18080 --upstream 127.0.0.1:9 \
  >"$log" 2>&1 &
runner=$!
sleep 0.3
kill -0 "$runner" 2>/dev/null || { cat "$log"; fail "the installed service exited at once"; }
up=""
for _ in $(seq 1 50); do
  if edudns health >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || { cat "$log"; fail "the installed service did not come up"; }
pid=$(pgrep -u edudns -f 'edudns serve' | head -1)
answer=$(dig +short +time=2 +tries=1 @127.0.0.1 -p "$dns_port" pornhub.com A)
[ -n "$answer" ] || { cat "$log"; fail "no answer for a blocked name"; }
echo "  pornhub.com → $answer (the sinkhole)"
$sudo kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q 'reload succeeded' "$log" && break; sleep 0.2; done
grep -q 'reload succeeded.*generation=2' "$log" || { cat "$log"; fail "SIGHUP did not reload"; }
[ -f /var/lib/edudns/compiled-lists.bin ] || fail "the service did not keep its compiled lists in /var/lib/edudns"
grep -q 'read from the cache' "$log" || { cat "$log"; fail "the reload (lists unchanged) did not read the compiled lists"; }
echo "  SIGHUP: reloaded from the compiled lists the start wrote"

$sudo kill -TERM "$pid"
status=0
wait "$runner" || status=$?
[ "$status" -eq 0 ] || { cat "$log"; fail "graceful stop exited $status"; }
queries=$($sudo sqlite3 /var/lib/edudns/stats.sqlite 'SELECT COALESCE(SUM(count), 0) FROM hourly' 2>/dev/null || echo "?")
echo "  stopped with exit 0; statistics flushed on stop: $queries queries in the database"
[ "$queries" != "?" ] && [ "$queries" -ge 1 ] || fail "the statistics were not flushed on stop"

step "upgrade to $deb2 over the local edit of edudns.toml"
$sudo apt-get install -y -qq -o Dpkg::Options::=--force-confold "./$deb2" >/dev/null
[ "$(dpkg-query -W -f '${Version}' edudns)" = "${version}-2" ] || fail "upgrade did not install ${version}-2"
grep -q '^# local edit kept across upgrades$' /etc/edudns/edudns.toml || fail "the upgrade replaced the edited edudns.toml"
[ -f /var/lib/edudns/stats.sqlite ] || fail "the upgrade lost the statistics database"
$sudo runuser -u edudns -- edudns check-config /etc/edudns/edudns.toml >/dev/null

step "remove keeps the configuration; purge removes it and keeps the statistics"
$sudo apt-get remove -y -qq edudns >/dev/null
[ ! -e /usr/bin/edudns ] || fail "/usr/bin/edudns still there after remove"
[ -f /etc/edudns/edudns.toml ] || fail "remove deleted the configuration"
$sudo apt-get purge -y -qq edudns >/dev/null 2>&1
[ ! -e /etc/edudns/edudns.toml ] || fail "purge left /etc/edudns/edudns.toml"
[ -f /var/lib/edudns/stats.sqlite ] || fail "purge deleted the statistics database"
[ ! -e /var/lib/edudns/compiled-lists.bin ] || fail "purge kept the compiled lists (a cache)"
$sudo rm -rf /var/lib/edudns
echo "package-check: OK"
