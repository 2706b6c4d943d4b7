# syntax=docker/dockerfile:1
# The three Pulse binaries in one image; the compose file picks one per service with `command`.
#
#   docker build -t pulse .
#   docker run --rm -e PULSE_DATABASE_URL=... -e PULSE_KAFKA_BROKERS=... pulse pulse-api
#
# Migrations are compiled into the binaries (`pulse-api migrate`); the image needs no files
# from the repository at run time.

FROM rust:1-bookworm AS builder
# rdkafka-sys builds the bundled librdkafka from source: a C toolchain, make, pkg-config and
# zlib (already in rust:1-bookworm's buildpack base, listed so the need is written down), and
# cmake/libssl-dev/libsasl2-dev for when the rdkafka `cmake-build`, `ssl` or `gssapi` features
# are turned on for TLS/SASL brokers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake pkg-config zlib1g-dev libssl-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the binaries are
# copied out because the cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pulse-api --bin pulse-worker --bin pulse-scheduler \
    && mkdir -p /out \
    && cp target/release/pulse-api target/release/pulse-worker target/release/pulse-scheduler /out/

FROM debian:bookworm-slim AS runtime
# The binaries link libc, libm, libgcc_s, zlib (all in the slim base) and OpenSSL (libssl3, for
# TLS and SASL to Kafka). curl answers the compose healthchecks (GET /readyz); ca-certificates
# for TLS to databases, brokers and webhook receivers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pulse \
    && useradd --system --uid 10001 --gid pulse --no-create-home --shell /usr/sbin/nologin pulse
COPY --from=builder /out/ /usr/local/bin/
USER pulse:pulse
WORKDIR /tmp
# Containers listen on all interfaces; logs as JSON lines for the log shipper.
ENV PULSE_API_ADDR=0.0.0.0:8080 \
    PULSE_WORKER_ADDR=0.0.0.0:9101 \
    PULSE_SCHEDULER_ADDR=0.0.0.0:9102 \
    PULSE_LOG_FORMAT=json
EXPOSE 8080 9101 9102
# SIGTERM is the graceful stop every binary handles (promise 7); give it
# PULSE_SHUTDOWN_TIMEOUT_SECS plus a margin with `stop_grace_period` / `--stop-timeout`.
STOPSIGNAL SIGTERM
CMD ["pulse-api"]
