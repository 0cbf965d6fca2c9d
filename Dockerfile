# syntax=docker/dockerfile:1
# Frontdesk agent worker: release build, then a slim non-root runtime image.
#   docker build -t frontdesk .
#   docker run --env-file .env -p 8081:8081 frontdesk            # `frontdesk start`, production
# The LiveKit Cloud build service builds this same file (`lk agent deploy`, see livekit.yaml).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# gcc builds the bundled SQLite, cmake and g++ the bundled libopus; everything else is pure Rust
# (TLS by rustls, WebRTC by webrtc-rs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev cmake make \
 && rm -rf /var/lib/apt/lists/*
COPY rust-toolchain.toml Cargo.toml Cargo.lock ./
COPY actors actors
COPY src src
COPY sql sql
COPY config config
# The manifest names the benches, and the simulated caller's clips live under tests/fixtures.
COPY benches benches
COPY tests tests
# The playground page and its checked-in bundle are compiled into the binary (no npm here).
COPY web/playground/index.html web/playground/index.html
COPY web/playground/dist web/playground/dist
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin frontdesk \
 && cp target/release/frontdesk /usr/local/bin/frontdesk

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin frontdesk \
 && mkdir -p /app/data && chown frontdesk /app/data
WORKDIR /app
COPY --from=build /usr/local/bin/frontdesk /usr/local/bin/frontdesk
# Read at start (./config): mount another directory here, or set FRONTDESK_CONFIG, to change a
# prompt, model or base URL without a new image.
COPY config /app/config
USER 10001
ENV FRONTDESK_ENV=production \
    FRONTDESK_HTTP_PORT=8081
# WebRTC media: UDP on ephemeral ports to the LiveKit server (and TURN), outbound only.
EXPOSE 8081
# /health is 503 while a critical dependency (database, LiveKit) is down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8081/health >/dev/null || exit 1
# SIGTERM starts the drain (WS_FULL, calls finish up to worker.drain_timeout_ms); give the
# orchestrator a grace period at least that long. tini forwards signals to the worker as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "frontdesk"]
CMD ["start"]
