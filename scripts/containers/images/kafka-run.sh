#!/bin/bash
# The broker: server.properties from the KAFKA_* environment, storage formatted with
# CLUSTER_ID on the first start, then kafka.Kafka in the foreground (PID 1).
set -euo pipefail
props=/opt/kafka/config/server.properties
: >"$props"
while IFS='=' read -r name value; do
  case $name in KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS) continue ;; esac
  key=${name#KAFKA_}
  key=${key,,}
  printf '%s=%s\n' "${key//_/.}" "$value" >>"$props"
done < <(env | grep -E '^KAFKA_[A-Z0-9_]+=' | sort)
grep -q '^log.dirs=' "$props" || printf 'log.dirs=/var/lib/kafka/data\n' >>"$props"
log_dir=$(sed -n 's/^log.dirs=//p' "$props" | cut -d, -f1)
java_opts=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml ${KAFKA_OPTS:-})
if [[ ! -f $log_dir/meta.properties ]]; then
  : "${CLUSTER_ID:?CLUSTER_ID is required to format the storage}"
  java -Xmx256m -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml -cp '/opt/kafka/libs/*' \
    kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props"
fi
exec java "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
