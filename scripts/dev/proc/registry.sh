#!/usr/bin/env bash
# Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7), its storage the registry
# database of our PostgreSQL (CITAFLOW_DEV_REGISTRY_STORAGE=memory: in-memory H2).
. "$(dirname "$0")/common.sh"
java=$("$DEV_DIR/install.sh" registry-java)
if [[ $REGISTRY_STORAGE == postgres ]]; then
  storage=(
    APICURIO_STORAGE_KIND=sql
    APICURIO_STORAGE_SQL_KIND=postgresql
    "APICURIO_DATASOURCE_URL=jdbc:postgresql://127.0.0.1:$PG_PORT/registry"
    APICURIO_DATASOURCE_USERNAME=citaflow
    APICURIO_DATASOURCE_PASSWORD=citaflow
    APICURIO_DATASOURCE_JDBC_INITIAL_SIZE=2
    APICURIO_DATASOURCE_JDBC_MIN_SIZE=2
    APICURIO_DATASOURCE_JDBC_MAX_SIZE=20
  )
else
  storage=(APICURIO_STORAGE_KIND=sql APICURIO_STORAGE_SQL_KIND=h2) # in-memory H2: lost on restart
fi
mkdir -p "$RUN/registry/tmp"
cd "$RUN/registry"
say "registry: starting Apicurio Registry on 127.0.0.1:$REGISTRY_PORT (storage: $REGISTRY_STORAGE)"
exec env "${storage[@]}" \
  QUARKUS_HTTP_HOST=127.0.0.1 "QUARKUS_HTTP_PORT=$REGISTRY_PORT" \
  QUARKUS_MANAGEMENT_HOST=127.0.0.1 "QUARKUS_MANAGEMENT_PORT=$REGISTRY_MANAGEMENT_PORT" \
  "APICURIO_STORAGE_SNAPSHOT_LOCATION=$RUN/registry/tmp" "APICURIO_IMPORT_WORK_DIR=$RUN/registry/tmp" \
  "$java" "${REGISTRY_JVM_OPTS[@]}" "-Djava.io.tmpdir=$RUN/registry/tmp" \
  -jar "$APICURIO_HOME/quarkus-run.jar"
