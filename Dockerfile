# edudns container image: a release build in a Rust image, then only the
# binary, the curated lists and the example configurations on Debian slim.
#
#     docker build -t edudns:0.1.0 .
#     docker run -d --name edudns --read-only --tmpfs /tmp \
#         -v edudns-state:/var/lib/edudns \
#         -v /srv/edudns/edudns.toml:/etc/edudns/edudns.toml:ro \
#         -p 53:53/udp -p 53:53/tcp -p 80:80/tcp -p 127.0.0.1:9153:9153 \
#         --cap-drop ALL --cap-add NET_BIND_SERVICE edudns:0.1.0
#
# Kubernetes: deploy/kubernetes/README.md. Why each line is here:
# deploy/kubernetes/README.md, "The image".

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Cargo.lock pins every dependency (--locked). The sources, the embedded
# demo configuration and the curated lists (compiled into the binary).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY blocklists ./blocklists
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin edudns \
    && install -D -m 0755 target/release/edudns /out/edudns

FROM ${RUNTIME_IMAGE}
# ca-certificates: list downloads and [takedown] feeds over HTTPS check
# the server against the system's roots. libcap2-bin only for setcap,
# removed again in the same layer. The binary gets the NET_BIND_SERVICE
# file capability so that the unprivileged user can bind 53 and 80 where
# the port range is not opened by a sysctl (host networking); a container
# that drops ALL capabilities must add NET_BIND_SERVICE back, or exec fails.
RUN --mount=type=bind,from=build,source=/out,target=/out \
    apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
    && install -m 0755 /out/edudns /usr/local/bin/edudns \
    && setcap cap_net_bind_service=+ep /usr/local/bin/edudns \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10053 edudns \
    && useradd --system --uid 10053 --gid 10053 --home-dir /var/lib/edudns \
        --no-create-home --shell /usr/sbin/nologin edudns \
    && install -d -m 0750 -o edudns -g edudns /var/lib/edudns \
    && install -d -m 0755 /etc/edudns /usr/share/edudns/lists /usr/share/edudns/examples

# The curated lists where deploy/kubernetes/base/edudns.toml reads them,
# and the example configurations to start from. No configuration is
# installed in /etc/edudns: mount yours (a missing file exits 78).
COPY blocklists/curated/*.txt /usr/share/edudns/lists/
COPY config/examples/school.toml /usr/share/edudns/examples/school.toml
COPY deploy/kubernetes/base/edudns.toml /usr/share/edudns/examples/container.toml

USER 10053:10053
WORKDIR /var/lib/edudns
VOLUME ["/var/lib/edudns"]
# DNS, the warning page, metrics and the management API.
EXPOSE 53/udp 53/tcp 80/tcp 9153/tcp
STOPSIGNAL SIGTERM

# `edudns health`: GET http://127.0.0.1:9153/healthz, exit 0 on 200,
# otherwise 1 (no shell, no curl in the image). A configuration with the
# management listener elsewhere needs `--management ADDR` here; one with
# admin.tls_cert (HTTPS only) cannot be checked this way.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["edudns", "health"]

ENTRYPOINT ["edudns"]
CMD ["serve", "-c", "/etc/edudns/edudns.toml"]
