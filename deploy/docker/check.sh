#!/usr/bin/env bash
# Builds the container image from the repo's Dockerfile and runs it the
# way docs/scaling.md says (non-root, read-only root filesystem, all
# capabilities dropped but NET_BIND_SERVICE, state in a volume), then
# checks: it answers DNS, blocks a listed name, runs as uid 10053, and
# Docker's HEALTHCHECK (`edudns health`) reports healthy. Loopback only.
#
#   bash deploy/docker/check.sh
#
# Not part of CI (a release build inside the image takes ~10 minutes on 2
# cores). Needs a Docker daemon (Debian: apt install docker.io; dockerd).
# Where Docker Hub cannot be reached, the two base images are made
# locally when missing: debian:bookworm-slim with debootstrap from the
# Debian mirror, and a stand-in for rust:1-bookworm holding this machine's
# Rust toolchain (BASE_MIRROR, TOOLCHAIN to change them).
set -euo pipefail
cd "$(dirname "$0")/../.."

mirror=${BASE_MIRROR:-http://deb.debian.org/debian}
toolchain=${TOOLCHAIN:-$(rustc --print sysroot)}
image=edudns:check
name=edudns-check
work=$(mktemp -d)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm -f edudns-check-state >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "docker-check: FAIL: $*" >&2; docker logs "$name" 2>&1 | tail -20 >&2 || true; exit 1; }
step() { echo "docker-check: $*"; }

docker info >/dev/null 2>&1 || { echo "docker-check: no Docker daemon: start dockerd first" >&2; exit 2; }
# BuildKit (RUN --mount) needs buildx with recent clients; Debian's
# docker.io client (20.10) has it built in.
builder=docker
if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then
  builder=/usr/bin/docker
fi

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  step "debian:bookworm-slim not here: debootstrap from $mirror"
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >/dev/null
  tar -C "$work/rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
  rm -rf "$work/rootfs"
fi
if ! docker image inspect rust:1-bookworm >/dev/null 2>&1; then
  step "rust:1-bookworm not here: a stand-in with the toolchain at $toolchain"
  mkdir -p "$work/rust"
  cp -a "$toolchain" "$work/rust/toolchain"
  rm -rf "$work/rust/toolchain/share/doc"
  # The stand-in trusts what this machine trusts (here, a TLS-inspecting
  # egress proxy's CA), so cargo can fetch crates inside the build.
  cp /etc/ssl/certs/ca-certificates.crt "$work/rust/host-ca.crt"
  cat > "$work/rust/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:$PATH CARGO_HOME=/usr/local/cargo \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt
EOF
  docker build -q -t rust:1-bookworm "$work/rust" >/dev/null
  rm -rf "$work/rust"
fi

step "docker build (release build inside the image)"
started=$(date +%s)
DOCKER_BUILDKIT=1 "$builder" build -q -t "$image" . >/dev/null
step "  built in $(( $(date +%s) - started )) s; image $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MiB", $1/1048576}')"

# A configuration for this machine: a loopback school, loopback listeners
# (host networking, so the server sees the real client address), a silent
# loopback upstream. The management listener stays on 127.0.0.1:9153,
# where the image's HEALTHCHECK asks.
if ss -ltn 2>/dev/null | grep -q '127.0.0.1:9153 '; then
  fail "127.0.0.1:9153 is in use on this machine (the health check's address)"
fi
cat > "$work/edudns.toml" <<'EOF'
[server]
dns_listen = ["127.0.0.1:15355"]
http_listen = ["127.0.0.1:18082"]
management_listen = "127.0.0.1:9153"

[upstream]
servers = ["127.0.0.1:9"]

[blocking]
sinkhole_ipv4 = "127.0.0.1"

[stats]
database = "/var/lib/edudns/stats.sqlite"

[lists]
cache_dir = "/var/lib/edudns/lists"

[warning_page]
ca_dir = "/var/lib/edudns/ca"

[[category]]
id = "adult"
lists = ["/usr/share/edudns/lists/adult.txt"]

[[band]]
id = "students"
block = ["adult"]

[[school]]
id = "container-check"
networks = ["127.0.0.0/8"]
EOF
chmod 0644 "$work/edudns.toml"

step "docker run --read-only --cap-drop ALL --cap-add NET_BIND_SERVICE (host network)"
docker run -d --name "$name" --network host --read-only --tmpfs /tmp \
  --cap-drop ALL --cap-add NET_BIND_SERVICE --security-opt no-new-privileges \
  -v edudns-check-state:/var/lib/edudns \
  -v "$work/edudns.toml:/etc/edudns/edudns.toml:ro" \
  --health-interval 2s --health-start-period 2s --health-retries 3 \
  "$image" >/dev/null

answer=""
for _ in $(seq 1 50); do
  answer=$(dig +short +time=1 +tries=1 @127.0.0.1 -p 15355 pornhub.com A 2>/dev/null || true)
  [ -n "$answer" ] && break
  sleep 0.2
done
[ "$answer" = 127.0.0.1 ] || fail "pornhub.com answered '$answer', expected the sinkhole 127.0.0.1"
step "  pornhub.com → $answer (blocked, sinkhole)"

uid=$(docker exec "$name" id -u)
[ "$uid" = 10053 ] || fail "runs as uid $uid, not 10053"
docker exec "$name" sh -c 'touch /usr/local/bin/x' 2>/dev/null && fail "the root filesystem is writable"
step "  uid $uid, root filesystem read-only"

health=""
for _ in $(seq 1 30); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$name")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || fail "HEALTHCHECK says '$health'"
step "  HEALTHCHECK: $health"

docker stop -t 10 "$name" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "docker stop: exit code $code"
step "  docker stop: exit 0 (statistics flushed)"
echo "docker-check: OK"
