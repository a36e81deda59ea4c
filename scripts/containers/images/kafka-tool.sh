#!/bin/bash
# kafka-topics.sh / kafka-storage.sh (by the name it is called with), or kafka-run-class.sh CLASS.
set -euo pipefail
case $(basename "$0") in
kafka-topics.sh) class=org.apache.kafka.tools.TopicCommand ;;
kafka-storage.sh) class=kafka.tools.StorageTool ;;
*) class=$1 && shift ;;
esac
exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2-tools.xml -cp '/opt/kafka/libs/*' "$class" "$@"
