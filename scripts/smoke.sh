#!/usr/bin/env bash
# End-to-end smoke test against the services `./dev up` started, the way a user meets them:
# curl a booking in, see it confirmed through GET within 5 s, and find its email in Mailpit and
# its SMS (sent by the stack's own SMS notifier) in the SMS sink's JSON list; and the web app:
# a page of it (the SPA fallback) served as HTML under a Content-Security-Policy.
set -euo pipefail

api=${CITAFLOW_DEV_API_URL:-http://127.0.0.1:8080}
mailpit=${CITAFLOW_DEV_MAILPIT_URL:-http://127.0.0.1:8025}
sms_sink=${CITAFLOW_DEV_SMS_SINK_URL:-http://127.0.0.1:8026}
export NO_PROXY=127.0.0.1,localhost

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

admin_password=${CITAFLOW_DEV_ADMIN_PASSWORD:-$(cat "$(dirname "$0")/../.run/secrets/admin-password")}
token=$(curl -sS --fail-with-body -X POST "$api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"${CITAFLOW_DEV_ADMIN_USERNAME:-admin}\",\"password\":\"$admin_password\"}" | json "['access_token']")
auth=(-H "authorization: Bearer $token")
post() { curl -sS --fail-with-body -X POST "$api$1" "${auth[@]}" -H 'content-type: application/json' -d "$2"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

suffix=$(date +%s%N)
email="smoke-$suffix@example.test"
phone="+346${suffix: -8}" # E.164, unique per run
center=$(post /centers "{\"name\":\"Smoke Center $suffix\",\"address\":\"Calle Mayor 1, Madrid\",\"timezone\":\"Europe/Madrid\"}" | json "['id']")
doctor=$(post /doctors '{"name":"Dr. Smoke","specialty":"General"}' | json "['id']")
patient=$(post /patients "{\"name\":\"Smoke Patient\",\"email\":\"$email\",\"phone\":\"$phone\",\"language\":\"en\"}" | json "['id']")
start=$(date -u -d '+3 days' +%Y-%m-%dT%H:00:00Z)

status=$(curl -sS -o /tmp/smoke-booking.json -w '%{http_code}' -X POST "$api/bookings" "${auth[@]}" \
  -H 'content-type: application/json' \
  -d "{\"patient_id\":\"$patient\",\"doctor_id\":\"$doctor\",\"center_id\":\"$center\",\"start\":\"$start\",\"duration_minutes\":30}")
[[ $status == 202 ]] || fail "POST /bookings answered $status: $(cat /tmp/smoke-booking.json)"
booking=$(json "['booking_id']" </tmp/smoke-booking.json)
echo "smoke: POST /bookings -> 202, booking $booking"

deadline=$((SECONDS + 5))
state=pending
while ((SECONDS <= deadline)); do
  state=$(curl -sS "${auth[@]}" "$api/bookings/$booking" | json "['status']")
  [[ $state != pending ]] && break
  sleep 0.1
done
[[ $state == confirmed ]] || fail "booking is '$state' 5 s after the 202"
echo "smoke: GET /bookings/$booking -> confirmed"

deadline=$((SECONDS + 10))
count=0
while ((SECONDS <= deadline)); do
  count=$(curl -sS -G "$mailpit/api/v1/search" --data-urlencode "query=to:\"$email\"" | json "['messages_count']")
  ((count >= 1)) && break
  sleep 0.2
done
((count == 1)) || fail "expected 1 email to $email in Mailpit, found $count"
echo "smoke: email delivered to Mailpit"

deadline=$((SECONDS + 10))
count=0
while ((SECONDS <= deadline)); do
  count=$(curl -sS -G "$sms_sink/api/messages" --data-urlencode "to=$phone" | json "['total']")
  ((count >= 1)) && break
  sleep 0.2
done
((count == 1)) || fail "expected 1 SMS to $phone in the SMS sink, found $count"
echo "smoke: SMS delivered to the SMS sink"

headers=$(curl -sS -o /tmp/smoke-page.html -D - "$api/app/book" | tr -d '\r')
[[ $headers =~ ^HTTP/[0-9.]+\ 200 && ${headers,,} =~ content-type:\ text/html && ${headers,,} =~ content-security-policy: ]] ||
  fail "GET /app/book (the web app) answered: $(head -1 <<<"$headers")"
grep -q '<div id="root">' /tmp/smoke-page.html || fail "GET /app/book is not the web app's page"
echo "smoke: web app served (GET /app/book -> 200 text/html, Content-Security-Policy)"
echo "smoke: 1 passed, 0 failed"
