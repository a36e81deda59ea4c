#!/usr/bin/env bash
# sms-sink (the sms-sink/ crate): the Twilio-compatible SMS API the SMS notifier sends to,
# with the messages it received as a page and a JSON list (like Mailpit for email).
. "$(dirname "$0")/common.sh"
bin=$(svc_path sms-sink)
[[ -x $bin ]] || die "sms-sink: ${bin#"$ROOT"/} does not exist (not built yet?)"
say "sms-sink: starting on 127.0.0.1:$SMS_SINK_PORT (${bin#"$ROOT"/})"
exec "$bin" "127.0.0.1:$SMS_SINK_PORT" </dev/null
