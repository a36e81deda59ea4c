#
# One image with the three Citaflow services: /usr/local/bin/ingest-api, booking-processor and
# notifier. The Helm chart and compose.yaml pick the binary per workload (`command:`);
# `ingest-api migrate` applies the database migrations (they are compiled into the binary).
# The web app (web/, built here) is in /usr/share/citaflow/web, which ingest-api serves at /.
# /usr/local/bin/sms-sink, the local Twilio-compatible SMS sink, is there for compose.yaml.
#
#   DOCKER_BUILDKIT=1 docker build -t citaflow:0.1.0 .
#
# Needs BuildKit (Docker 20.10+, the default since 23; buildah/podman build too) for the cache
# mounts: cargo's registry and target directory persist in the engine's build cache, so a
# rebuild after a code change compiles only what changed. The built-in Dockerfile frontend is
# enough (no `# syntax=` line, so nothing is pulled for it).
#
# The base images are build arguments: the public ones by default; `./dev image` builds this
# same file with bases made locally from Debian packages (scripts/containers/bases.sh).
#   BUILDER_IMAGE  Rust toolchain on Debian 12 (glibc 2.36), with gcc, make and perl for the
#                  bundled librdkafka and OpenSSL headers for its TLS support
#   WEB_BUILDER_IMAGE  Node.js 20.19+ and npm on Debian 12 (the web app's build; it runs the
#                  builder's ingest-api to generate the API client from the OpenAPI document)
#   RUNTIME_IMAGE  glibc, libgcc, libssl3, CA certificates and tzdata; no shell

ARG BUILDER_IMAGE=rust:1.95-bookworm
ARG WEB_BUILDER_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
# zlib is compiled in statically so the runtime needs no libz. The release profile keeps line
# tables (debug = "line-tables-only"); the image's copies are stripped of them (a quarter of the
# size; symbols stay, so a backtrace still names its functions).
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=citaflow-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=citaflow-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=citaflow-target,sharing=locked,target=/src/target \
    cargo build --release --locked --bins -p ingest-api -p booking-processor -p notifier -p sms-sink \
 && mkdir -p /out \
 && cp target/release/ingest-api target/release/booking-processor target/release/notifier \
       target/release/sms-sink /out/ \
 && strip --strip-debug /out/*

FROM ${WEB_BUILDER_IMAGE} AS web
WORKDIR /web
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,id=citaflow-npm,target=/root/.npm npm ci
COPY web/ ./
COPY --from=builder /out/ingest-api /usr/local/bin/ingest-api
RUN CITAFLOW_INGEST_API_BIN=/usr/local/bin/ingest-api npm run build

FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="citaflow" \
      org.opencontainers.image.description="Citaflow services: ingest-api, booking-processor, notifier" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
COPY --from=web /web/dist/ /usr/share/citaflow/web/
# The uid/gid the Helm chart's securityContext expects (runAsUser 10001). Nothing is written
# to the root file system: it runs read-only (readOnlyRootFilesystem in the chart).
USER 10001:10001
ENV CITAFLOW__HTTP__HOST=0.0.0.0 \
    CITAFLOW__API__WEB_DIR=/usr/share/citaflow/web
EXPOSE 8080
CMD ["/usr/local/bin/ingest-api"]
