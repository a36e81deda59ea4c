# syntax=docker/dockerfile:1
#
# One image with the three Citaflow services: /usr/local/bin/ingest-api, booking-processor and
# notifier. The Helm chart picks the binary per Deployment (`command:`); `ingest-api migrate`
# applies the database migrations (they are compiled into the binary).
#
#   docker build -t citaflow:0.1.0 .
#
# Stages: `chef` (cargo-chef), `planner` (dependency recipe of the workspace), `builder`
# (dependencies first, in their own cached layer, then the workspace), and a distroless runtime.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.77

FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
# The recipe holds only manifests and the lock file: it changes when dependencies change,
# not when the code does, so the `cook` layer below stays cached across code changes.
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# rdkafka builds its bundled librdkafka with ./configure and make (gcc, make and perl are in
# the rust:bookworm image); zlib is compiled in statically so the runtime needs no libz.
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
      --bins -p ingest-api -p booking-processor -p notifier
COPY . .
RUN cargo build --release --locked --bins -p ingest-api -p booking-processor -p notifier \
 && mkdir -p /out \
 && cp target/release/ingest-api target/release/booking-processor target/release/notifier /out/

# glibc 2.36 like the bookworm builder; CA certificates and tzdata included, no shell.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="citaflow" \
      org.opencontainers.image.description="Citaflow services: ingest-api, booking-processor, notifier" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
# The uid/gid the Helm chart's securityContext expects (runAsUser 10001).
USER 10001:10001
ENV CITAFLOW__HTTP__HOST=0.0.0.0
EXPOSE 8080
CMD ["/usr/local/bin/ingest-api"]
