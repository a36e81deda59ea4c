# citaflow-local/rust:1.95-bookworm — the builder base made here, in the role of the public
# rust:1.95-bookworm: Debian's C toolchain (for the bundled librdkafka and aws-lc), OpenSSL
# headers, and Rust from static.rust-lang.org through rustup (profile minimal). extra-ca/ holds
# the certificates this machine trusts on top of Debian's (/usr/local/share/ca-certificates,
# e.g. an HTTPS proxy's CA): rustup and cargo in the builder reach the network as the host does.
# Only the builder has them; the runtime image keeps Debian's CA bundle.
ARG BASE
FROM ${BASE}
ARG RUST_VERSION=1.95.0
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y ca-certificates curl gcc g++ libc6-dev make perl pkg-config libssl-dev \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init \
      https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y -q --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}" \
 && rm /tmp/rustup-init \
 && rustc --version && cargo --version
