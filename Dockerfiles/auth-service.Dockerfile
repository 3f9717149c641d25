# auth-service: HTTP on 4005. Generated from the stack model by
# `PULSETRACK_BLESS=1 cargo test -p pulsetrack-stacks --test containers` from
# stacks/templates/service.Dockerfile: edit that, not this file.
# Built from the one workspace, with the repository root as the context:
#   docker build -f Dockerfiles/auth-service.Dockerfile -t pulsetrack/auth-service:latest .

# Toolchain plus cargo-chef (from crates.io). The full (non-slim) image has what the
# bundled librdkafka build needs (bash, make, gcc and g++ for its configure script);
# protobuf is compiled by protox, so no protoc is needed.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

# The dependency recipe: every member's manifest, Cargo.lock and dummy targets. It
# changes only when dependencies do, so the cook layer below stays cached.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The dependencies of this service only (the cached layer).
RUN cargo chef cook --release --locked --package auth-service --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package auth-service --bin auth-service \
    && install -D -m 0755 target/release/auth-service /out/auth-service

# Runtime: the builder's glibc (bookworm); nothing speaks TLS, so no packages are added.
FROM debian:bookworm-slim AS runtime
RUN groupadd --system --gid 10001 pulsetrack \
    && useradd --system --uid 10001 --gid pulsetrack --no-create-home --shell /usr/sbin/nologin pulsetrack \
    && install -d -o pulsetrack -g pulsetrack -m 0700 /var/lib/pulsetrack/anchors
COPY --from=builder /out/auth-service /usr/local/bin/auth-service
# Amazon RDS's CA bundle: DATABASE_SSL_ROOT_CERT on AWS (Postgres TLS is rustls, no packages).
COPY certs/rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=4005
EXPOSE 4005
# The binary probes its own /health on PORT, so the image needs no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/auth-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-service"]
