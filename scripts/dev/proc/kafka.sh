#!/usr/bin/env bash
# Kafka, single node in KRaft mode (combined broker + controller): server.properties that
# follow ./dev's settings (rewritten every start), storage formatted on the first start,
# then the broker in the foreground.
. "$(dirname "$0")/common.sh"
kafka_tool() { timeout 120 "$KAFKA_JAVA" "${TOOLS_JVM_OPTS[@]}" -cp "$KAFKA_LIBS/*" "$@"; }

mkdir -p "$RUN/kafka/data"
if [[ ! -s $RUN/kafka/cluster.id ]]; then
  # a Kafka cluster id is 16 random bytes, base64url without padding (and, like
  # Kafka's own random-uuid, never starting with '-', which would read as an option)
  id="-"
  while [[ $id == -* ]]; do id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); done
  printf '%s\n' "$id" >"$RUN/kafka/cluster.id"
fi
# static quorum (controller.quorum.voters): the ports can change between runs
cat >"$RUN/kafka/server.properties" <<PROPS
# written by ./dev on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/kafka/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
log.retention.hours=168
PROPS
if [[ ! -f $RUN/kafka/data/meta.properties ]]; then
  say "kafka: formatting storage ${RUN#"$ROOT"/}/kafka/data"
  rm -rf "$RUN/kafka/data"
  mkdir -p "$RUN/kafka/data"
  kafka_tool kafka.tools.StorageTool format -t "$(<"$RUN/kafka/cluster.id")" -c "$RUN/kafka/server.properties" \
    >"$RUN/logs/kafka-format.log" 2>&1 || die_log kafka-format "kafka storage format failed"
fi
say "kafka: starting on 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
cd "$RUN/kafka"
exec "$KAFKA_JAVA" "${KAFKA_HEAP_OPTS[@]}" "${KAFKA_JVM_OPTS[@]}" \
  "-Dlog4j2.configurationFile=$SCRIPTS/kafka/log4j2.xml" "-Dkafka.logs.dir=$RUN/kafka" \
  -cp "$KAFKA_LIBS/*" kafka.Kafka "$RUN/kafka/server.properties"
