#!/usr/bin/env bash
# Readiness of Kafka: a Kafka ApiVersions v0 request over bash's /dev/tcp proves the broker
# speaks the protocol on the bootstrap port, without starting a JVM.
set -euo pipefail
port=${1:?usage: kafka-ready.sh PORT}
# shellcheck disable=SC2016 # $0 expands in the inner bash
hex=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x04cdev" >&3
    head -c 10 <&3' "$port" 2>/dev/null | od -An -v -tx1 | tr -d ' \n') || exit 1
# size(4) correlation-id(4)=42 error-code(2)=0
[[ ${hex:8:12} == 0000002a0000 ]]
