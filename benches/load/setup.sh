# Sourced by every load script first: the repository root, the shared data,
# dnsperf and unbound (installed from Debian when missing), the release
# build, and a work directory removed (with every background job) on exit.
# Sets: root, data, work.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[1]}")/../.."
root=$(pwd)
data="$root/../shared/data"
for tool in dnsperf unbound; do
  command -v "$tool" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf unbound >/dev/null; break; }
done
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# The server: block every load script's unbound starts with (foreground,
# no chroot, one thread, loopback clients allowed). Usage: unbound_head PORT
unbound_head() {
  printf '%s\n' "server:" "  interface: 127.0.0.1@$1" "  do-daemonize: no" \
    "  use-syslog: no" '  chroot: ""' '  username: ""' '  pidfile: ""' \
    "  num-threads: 1" "  access-control: 127.0.0.0/8 allow" "  so-rcvbuf: 4m"
}
