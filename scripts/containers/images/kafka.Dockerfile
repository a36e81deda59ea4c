# citaflow-local/kafka:<version> — Apache Kafka (KRaft) from the Maven jars the launcher
# installs (.cache/kafka/<version>/libs) on Debian's OpenJDK 17, in the role of the
# apache/kafka image for machines that cannot pull it: the same layout for what we use
# (/opt/kafka/bin/kafka-topics.sh, /opt/kafka/bin/kafka-storage.sh, /etc/kafka/docker/run)
# and the same configuration by environment: every KAFKA_<NAME> variable becomes the
# property <name> (underscores to dots, lower case); CLUSTER_ID formats the storage on the
# first start.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 1000 appuser && useradd --system --uid 1000 --gid 1000 --home-dir /opt/kafka appuser \
 && mkdir -p /opt/kafka/bin /opt/kafka/config /var/lib/kafka/data /etc/kafka/docker \
 && chown -R appuser:appuser /var/lib/kafka /opt/kafka/config
COPY libs/ /opt/kafka/libs/
COPY kafka-run.sh /etc/kafka/docker/run
COPY kafka-tool.sh /opt/kafka/bin/kafka-run-class.sh
COPY log4j2.xml log4j2-tools.xml /opt/kafka/config/
RUN ln -s kafka-run-class.sh /opt/kafka/bin/kafka-topics.sh \
 && ln -s kafka-run-class.sh /opt/kafka/bin/kafka-storage.sh
ENV PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER appuser
WORKDIR /opt/kafka
EXPOSE 9092
CMD ["/etc/kafka/docker/run"]
