#!/usr/bin/env bash
# One-shot, once Kafka answers: creates the missing topics (TopicCommand JVMs in parallel).
# Kafka counts as ready for the services once TopicCommand --list succeeds (a real metadata
# call).
. "$(dirname "$0")/common.sh"
kafka_tool() { timeout 120 "$KAFKA_JAVA" "${TOOLS_JVM_OPTS[@]}" -cp "$KAFKA_LIBS/*" "$@"; }
out="__failed__"
for ((i = 0; i < 10; i++)); do
  if out=$(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list 2>"$RUN/logs/kafka-tools.log"); then
    break
  fi
  out="__failed__"
  sleep 2
done
[[ $out != __failed__ ]] || die_log kafka-tools "kafka does not answer TopicCommand --list (see .run/logs/kafka-tools.log)"
pids=() names=()
for spec in "${TOPICS[@]}"; do
  t=${spec%%:*} n=${spec##*:}
  if ! grep -qxF -- "$t" <<<"$out"; then
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --create --if-not-exists \
      --topic "$t" --partitions "$n" --replication-factor 1 >"$RUN/kafka/create-$t.out" 2>&1 &
    pids+=($!) names+=("$t:$n")
  fi
done
if ((${#pids[@]})); then
  say "kafka: creating topics ${names[*]}"
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || {
      cat "$RUN/kafka/create-${names[$i]%%:*}.out"
      die "creating topic ${names[$i]%%:*} failed"
    }
    rm -f "$RUN/kafka/create-${names[$i]%%:*}.out"
  done
fi
say "kafka: topics in place"
