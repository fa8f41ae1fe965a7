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
ENV REWIND__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["rewind"]
CMD ["serve", "--config", "/etc/rewind/rewind.toml"]
