# syntax=docker/dockerfile:1
# One image with both binaries: svcnet-controller and svcnet-proxy (the Helm chart picks the command).
#
#   docker build -t ghcr.io/svcnet/svcnet:0.1.0 .
#
# The binaries are built against glibc in the same Debian release the runtime image uses (bookworm),
# so they run there as they are; the build needs no cross toolchain and works on any architecture
# docker buildx targets.

# The toolchain rust-toolchain.toml pins (1.95.0). RUSTUP_TOOLCHAIN selects the image's own copy of
# it, so rustup downloads nothing (the file also asks for rustfmt and clippy, which a build doesn't use).
FROM rust:1.95.0-bookworm AS builder
ENV RUSTUP_TOOLCHAIN=1.95.0
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p svcnet-controller -p svcnet-proxy \
       -p svcnet-e2e --bin svcnet-testserver \
 && install -D -m 0755 target/release/svcnet-controller /out/svcnet-controller \
 && install -D -m 0755 target/release/svcnet-proxy /out/svcnet-proxy \
 && install -D -m 0755 target/release/svcnet-testserver /out/svcnet-testserver

FROM debian:bookworm-slim
# nft: svcnet-proxy programs its tables through `nft -f -`. conntrack: svcnet-proxy deletes stale UDP
# flows with it after a sync. Unpinned: the
# bookworm versions, with their security updates, as of the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables conntrack \
 && rm -rf /var/lib/apt/lists/*
# svcnet-testserver: the e2e suite's test server and its traffic probe, for running that suite on kind
# (e2e/kind/run.sh).
COPY --from=builder /out/svcnet-controller /out/svcnet-proxy /out/svcnet-testserver /usr/local/bin/
# No USER and no ENTRYPOINT here: the chart sets the command of each container, runs svcnet-proxy as
# root with NET_ADMIN and NET_RAW only, and svcnet-controller as UID 65532 with no capabilities and a
# read-only root filesystem.
