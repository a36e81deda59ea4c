#!/usr/bin/env bash
# Mailpit: the SMTP sink the email notifier sends to, with its UI and search API.
. "$(dirname "$0")/common.sh"
[[ -x $MAILPIT_BIN ]] || die "mailpit is not installed (run ./dev up)"
mkdir -p "$RUN/mailpit"
cd "$RUN/mailpit"
say "mailpit: starting (SMTP 127.0.0.1:$SMTP_PORT, UI 127.0.0.1:$MAILPIT_UI_PORT)"
exec "$MAILPIT_BIN" \
  --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_UI_PORT" \
  --database "$RUN/mailpit/mailpit.db" --max 10000 \
  --smtp-auth-accept-any --smtp-auth-allow-insecure --smtp-disable-rdns \
  --disable-version-check --enable-chaos
