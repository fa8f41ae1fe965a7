# syntax=docker/dockerfile:1
# Build stage: compile the release binary with the pinned lockfile.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p rewind && cp target/release/rewind /usr/local/bin/rewind

# Run stage: a small Debian with git's CA bundle, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/rewind --create-home rewind
COPY --from=build /usr/local/bin/rewind /usr/local/bin/rewind
COPY config/default.toml /etc/rewind/rewind.toml
USER 10001:10001
WORKDIR /var/lib/rewind
# REWIND_CONFIG is read by `serve` and by `healthcheck`, which finds the
# port in server.listen (0.0.0.0 becomes 127.0.0.1).
ENV REWIND__SERVER__LISTEN=0.0.0.0:8080 REWIND_CONFIG=/etc/rewind/rewind.toml
EXPOSE 8080
# Healthy when /readyz answers 200: the database takes writes, so webhooks
# are recorded (a Git outage does not make the container unhealthy).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["rewind", "healthcheck"]
ENTRYPOINT ["rewind"]
CMD ["serve"]
