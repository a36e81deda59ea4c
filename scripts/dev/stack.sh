# scripts/dev/stack.sh — running the stack: ./dev up, down, status, logs, start, stop,
# restart. The processes, their order, readiness and logs are declared in
# scripts/dev/process-compose.yaml; process-compose runs them, and this file only talks to
# it (over the unix socket .run/process-compose.sock) and reports. Sourced by ./dev after
# lib.sh, install.sh and env.sh.

PC_YAML=$DEV_DIR/process-compose.yaml
PC_SOCK=$RUN/process-compose.sock
PC_SETTINGS=$RUN/process-compose.settings # the settings the running server was started with
ONESHOTS=(install-kafka install-registry install-mailpit pg-bootstrap kafka-topics build web migrate)

# ---- the process-compose server: started by us, known by its PID ------------------------
# .run/pids/process-compose.pid and .start (its start time in clock ticks since boot, from
# /proc/<pid>/stat): a PID only counts as ours when it is alive, has that start time and
# runs our binary. Only then is it signalled.
proc_starttime() {
  local stat rest
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  rest=${stat##*) }
  local -a f
  read -r -a f <<<"$rest"
  [[ ${f[0]} != Z && ${f[0]} != X ]] || return 1
  printf '%s\n' "${f[19]}"
}

server_pid() { # prints the PID of our process-compose server, if it runs
  local pidf=$RUN/pids/process-compose.pid pid want got
  [[ -f $pidf ]] || return 1
  pid=$(<"$pidf")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  got=$(proc_starttime "$pid") || return 1
  want=$(cat "$RUN/pids/process-compose.start" 2>/dev/null || true)
  [[ -n $want && $want == "$got" ]] || return 1
  # (the binary by its real path: .cache may be a symlink, e.g. shared with a git worktree)
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$PC_BIN")" ]] || return 1
  printf '%s\n' "$pid"
}

pc() { "$PC_BIN" --unix-socket "$PC_SOCK" "$@" 2>/dev/null; } # client call (its stderr is debug chatter)
server_up() { server_pid >/dev/null && [[ -S $PC_SOCK ]]; }

# state NAME field: one field of `process list -o json` (from the last refresh_states)
STATES='[]'
refresh_states() { STATES=$(pc process list -o json) || STATES='[]'; }
state() { jq -r --arg n "$1" --arg f "$2" '(.[] | select(.name == $n) | .[$f]) // empty' <<<"$STATES"; }
running_pid() { # NAME -> its PID when running
  local st pid
  st=$(state "$1" status)
  pid=$(state "$1" pid)
  [[ $st == Running || $st == Launched || $st == Launching ]] && [[ -n $pid && $pid != 0 ]] && [[ -d /proc/$pid ]] || return 1
  printf '%s\n' "$pid"
}

# The variables the graph reads (process-compose.yaml), for the server's environment.
graph_env() {
  find_pg_bin || true
  local kv
  while IFS= read -r kv; do printf '%s\n' "$kv"; done < <(settings_lines)
  printf '%s\n' "CITAFLOW_DEV_ROOT=$ROOT" "CITAFLOW_DEV_PG_BIN=$PG_BIN" "CITAFLOW_DEV_STOP_TIMEOUT=$STOP_TIMEOUT" \
    "CITAFLOW_DEV_READY_TIMEOUT=$READY_TIMEOUT" "CITAFLOW_DEV_PROFILE=$PROFILE"
}

start_server() { # process names to start (with what they depend on)
  local -a envs
  mapfile -t envs < <(graph_env)
  rm -f "$PC_SOCK"
  settings_lines >"$PC_SETTINGS"
  printf '\n===== %s ./dev starts process-compose: %s =====\n' "$(date '+%F %T')" "$*" >>"$RUN/logs/process-compose.log"
  # own session (Ctrl-C on ./dev or the end of a CI step does not reach it), no stdin, not
  # holding the launcher's lock (fd 9)
  (cd "$ROOT" && exec env "${envs[@]}" setsid "$PC_BIN" up --config "$PC_YAML" --unix-socket "$PC_SOCK" \
    --log-file "$RUN/logs/process-compose.log" --tui=false --disable-dotenv --ordered-shutdown "$@") \
    >/dev/null 2>>"$RUN/logs/process-compose.log" </dev/null 9>&- &
  local pid=$! i st
  for ((i = 0; i < 100; i++)); do
    st=$(proc_starttime "$pid") || die_log process-compose "process-compose exited at once"
    if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$PC_BIN" ]]; then break; fi
    sleep 0.05
  done
  printf '%s\n' "$pid" >"$RUN/pids/process-compose.pid"
  printf '%s\n' "$st" >"$RUN/pids/process-compose.start"
  for ((i = 0; i < 100; i++)); do
    [[ -S $PC_SOCK ]] && pc process list >/dev/null && return 0
    proc_starttime "$pid" >/dev/null || die_log process-compose "process-compose exited during start-up"
    sleep 0.1
  done
  die_log process-compose "process-compose does not answer on ${PC_SOCK#"$ROOT"/}"
}

# The running stack must have been started with the current settings (ports, ...).
check_running_settings() {
  server_up || return 0
  local old new
  old=$(cat "$PC_SETTINGS" 2>/dev/null || true)
  new=$(settings_lines)
  [[ $old == "$new" ]] && return 0
  die "the stack is running with other settings than now: $(diff <(echo "$old") <(echo "$new") | sed -n 's/^> //p' | tr '\n' ' ')
  './dev down' first to apply them"
}

check_port_free() { # component port setting-name
  if port_busy "$2"; then
    local who=""
    if command -v ss >/dev/null 2>&1; then who=$(ss -ltnpH "sport = :$2" 2>/dev/null | head -n 3 || true); fi
    die "$1: port 127.0.0.1:$2 is already in use by a process ./dev did not start${who:+:
$who}
  stop that process or choose another port with $3=<port>"
  fi
}

comp_ports() { # component -> "port SETTING" lines
  case $1 in
  postgres) echo "$PG_PORT CITAFLOW_DEV_PG_PORT" ;;
  kafka) printf '%s\n' "$KAFKA_PORT CITAFLOW_DEV_KAFKA_PORT" "$KAFKA_CONTROLLER_PORT CITAFLOW_DEV_KAFKA_CONTROLLER_PORT" ;;
  registry) printf '%s\n' "$REGISTRY_PORT CITAFLOW_DEV_REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT CITAFLOW_DEV_REGISTRY_MANAGEMENT_PORT" ;;
  mailpit) printf '%s\n' "$SMTP_PORT CITAFLOW_DEV_SMTP_PORT" "$MAILPIT_UI_PORT CITAFLOW_DEV_MAILPIT_UI_PORT" ;;
  ingest-api) echo "$API_PORT CITAFLOW_DEV_API_PORT" ;;
  booking-processor) echo "$PROCESSOR_PORT CITAFLOW_DEV_PROCESSOR_PORT" ;;
  notifier-email) echo "$NOTIFIER_EMAIL_PORT CITAFLOW_DEV_NOTIFIER_EMAIL_PORT" ;;
  notifier-sms) echo "$NOTIFIER_SMS_PORT CITAFLOW_DEV_NOTIFIER_SMS_PORT" ;;
  sms-sink) echo "$SMS_SINK_PORT CITAFLOW_DEV_SMS_SINK_PORT" ;;
  esac
}
check_ports_free() { # components that are about to start
  local c port var
  for c in "$@"; do
    while read -r port var; do [[ -n $port ]] && check_port_free "$c" "$port" "$var"; done < <(comp_ports "$c")
  done
}

# Wait until every named process is ready (daemons) or has completed successfully
# (one-shots), saying so as each gets there; on a failure, show its log and stop.
wait_for() {
  local -A t0=() done=()
  local deadline_all=$((SECONDS + 3600)) c st health code left
  while :; do
    refresh_states
    left=0
    for c in "$@"; do
      [[ -n ${done[$c]:-} ]] && continue
      st=$(state "$c" status)
      health=$(state "$c" is_ready)
      code=$(state "$c" exit_code)
      case $st in
      Running | Launched | Launching)
        [[ -n ${t0[$c]:-} ]] || t0[$c]=$SECONDS
        if [[ $health == Ready ]]; then
          say "$c: ready ($((SECONDS - t0[$c]))s)"
          done[$c]=1
          continue
        fi
        # One-shots (installs, the build) take what they take on a cold machine; the
        # readiness bound is for daemons.
        if [[ " ${ONESHOTS[*]} " != *" $c "* ]] && ((SECONDS - t0[$c] > READY_TIMEOUT)); then
          die_log "$c" "$c not ready after ${READY_TIMEOUT}s (CITAFLOW_DEV_READY_TIMEOUT)"
        fi
        ;;
      Completed | Error)
        if [[ " ${ONESHOTS[*]} " == *" $c "* && $code == 0 ]]; then
          done[$c]=1
          continue
        fi
        if [[ $c == build ]]; then
          tail -n 60 "$RUN/logs/cargo-build.log" >&2
          die "cargo build --bins failed (full log: .run/logs/cargo-build.log). The infrastructure is up; use './dev up --infra-only' (or CITAFLOW_DEV_SERVICES=0) to skip the services."
        fi
        if [[ " ${ONESHOTS[*]} " == *" $c "* ]]; then die_log "$c" "$c failed (exit $code)"; fi
        die_log "$c" "$c exited during start-up (exit $code)"
        ;;
      Skipped) die_log "$c" "$c was not started: something it depends on failed (see ./dev status and .run/logs/)" ;;
      "") die "$c: unknown to process-compose" ;;
      esac
      left=1
    done
    ((left)) || return 0
    ((SECONDS < deadline_all)) || die "the stack did not come up within an hour"
    sleep 0.5
  done
}

services_mode() { cat "$RUN/services.mode" 2>/dev/null || echo off; }

# A running service whose binary was rebuilt since it started (or is of another build
# profile) is restarted.
service_stale() { # name pid
  local bin running
  bin=$(svc_path "$1")
  running=$(readlink "/proc/$2/exe" 2>/dev/null || true)
  [[ -x $bin ]] || return 1
  [[ ${running% (deleted)} != "$bin" || $(stat -c %Y "$bin") -gt $(stat -c %Y "/proc/$2") ]]
}

cmd_up() {
  local services=${CITAFLOW_DEV_SERVICES:-1} a
  for a in "$@"; do
    case $a in
    --infra-only) services=0 ;;
    --with-services) services=1 ;;
    *) die "up: unknown option '$a'" ;;
    esac
  done
  check_settings
  lock
  check_running_settings
  save_settings
  local t0 t1 t2
  t0=$SECONDS
  # What the graph needs to start; the rest (Kafka, the registry, Mailpit) is installed by
  # the graph's install-* steps while cargo builds (or here, when the graph runs already).
  "$DEV_DIR/install.sh" core
  if server_up; then "$DEV_DIR/install.sh" stack; fi
  t1=$SECONDS
  write_env_file
  printf '%s\n' "$PROFILE" >"$RUN/services.profile"
  local -a want=(install-kafka install-registry install-mailpit "${INFRA[@]}" pg-bootstrap kafka-topics)
  if [[ $services == 1 ]]; then
    echo on >"$RUN/services.mode"
    want+=(build web migrate "${SERVICES[@]}")
  else
    echo off >"$RUN/services.mode"
  fi

  if ! server_up; then
    check_ports_free "${INFRA[@]}" "${SERVICES[@]}"
    say "starting the process graph (scripts/dev/process-compose.yaml) with process-compose; logs: .run/logs/"
    start_server "${want[@]}"
    wait_for "${want[@]}"
  else
    # The graph runs already: start what is down, build again, restart what was rebuilt.
    local c pid
    refresh_states
    for c in "${INFRA[@]}"; do
      if ! running_pid "$c" >/dev/null; then
        check_ports_free "$c"
        pc process start "$c" >/dev/null || die "process-compose could not start $c"
      fi
    done
    wait_for "${INFRA[@]}"
    bash "$DEV_DIR/proc/pg-bootstrap.sh" >>"$RUN/logs/pg-bootstrap.log" 2>&1 || die_log pg-bootstrap "pg-bootstrap failed"
    bash "$DEV_DIR/proc/kafka-topics.sh" >>"$RUN/logs/kafka-topics.log" 2>&1 || die_log kafka-topics "kafka-topics failed"
    if [[ $services == 1 ]]; then
      PC_PROC_NAME=build bash "$DEV_DIR/proc/build.sh" >>"$RUN/logs/cargo-build.log" 2>&1 || {
        tail -n 60 "$RUN/logs/cargo-build.log" >&2
        die "cargo build --bins failed (full log: .run/logs/cargo-build.log). The infrastructure is up; use './dev up --infra-only' (or CITAFLOW_DEV_SERVICES=0) to skip the services."
      }
      bash "$DEV_DIR/proc/migrate.sh" >>"$RUN/logs/migrate.log" 2>&1 || die_log migrate "'ingest-api migrate' failed"
      PC_PROC_NAME=web bash "$DEV_DIR/proc/web.sh" >>"$RUN/logs/web.log" 2>&1 || die_log web "building the web app failed"
      refresh_states
      # The graph's own one-shot steps gate the services (ingest-api needs `web` to have
      # completed): one that failed in an earlier `./dev up` (since fixed and built just now)
      # is run again in the graph, or process-compose would refuse to start what depends on it.
      for c in build migrate web; do
        [[ $(state "$c" status) == Completed && $(state "$c" exit_code) != 0 ]] || continue
        pc process start "$c" >/dev/null || die "process-compose could not start $c"
        local tick
        for ((tick = 0; tick < 600; tick++)); do
          sleep 0.5 # (right after the start it may still report the old run)
          refresh_states
          [[ $(state "$c" status) == Completed ]] && break
        done
        [[ $(state "$c" exit_code) == 0 ]] || die_log "$c" "$c failed again in the process graph"
      done
      for c in "${SERVICES[@]}"; do
        if pid=$(running_pid "$c"); then
          if service_stale "$c" "$pid"; then
            say "$c: binary is newer than the running process (or another build profile); restarting"
            # Stop, wait for the old process to be gone (a processor drains its partitions
            # first and holds its ports meanwhile), then start: a restart that starts the new
            # one while the old still drains fails on "Address already in use".
            pc process stop "$c" >/dev/null || die "process-compose could not stop $c"
            local tick
            for ((tick = 0; tick < (STOP_TIMEOUT + 5) * 10; tick++)); do
              kill -0 "$pid" 2>/dev/null || break
              sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && die "$c (PID $pid) did not stop within $((STOP_TIMEOUT + 5)) s"
            pc process start "$c" >/dev/null || die "process-compose could not start $c"
            # Ready before the next one restarts: a service started while what it depends on
            # is still coming back is skipped by process-compose (notifier-sms behind sms-sink).
            sleep 1.5
            wait_for "$c"
          fi
        else
          check_ports_free "$c"
          pc process start "$c" >/dev/null || die "process-compose could not start $c"
        fi
      done
      sleep 1.5 # process-compose reports a process it just started a moment later
      wait_for "${SERVICES[@]}"
    fi
  fi
  [[ $services == 1 ]] || say "services: not started (infra only)"
  t2=$SECONDS
  unlock

  cat <<EOF

Citaflow dev stack is up$([[ $services == 1 ]] || echo " (infrastructure only)")
  Web app        http://127.0.0.1:$API_PORT/   (patients sign up there; staff sign in)
  API            http://127.0.0.1:$API_PORT
  API docs       http://127.0.0.1:$API_PORT/docs   (OpenAPI: /openapi.json)
  Admin login    admin / password in .run/secrets/admin-password
  Processor      http://127.0.0.1:$PROCESSOR_PORT   Notifiers: email http://127.0.0.1:$NOTIFIER_EMAIL_PORT  sms http://127.0.0.1:$NOTIFIER_SMS_PORT
  Mailpit UI     http://127.0.0.1:$MAILPIT_UI_PORT   (SMTP 127.0.0.1:$SMTP_PORT)
  SMS sink       http://127.0.0.1:$SMS_SINK_PORT   (JSON: /api/messages; Twilio API for the SMS notifier)
  Registry       http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7   (UI http://127.0.0.1:$REGISTRY_PORT/ui)
  Kafka          127.0.0.1:$KAFKA_PORT
  Postgres       postgres://citaflow:citaflow@127.0.0.1:$PG_PORT/citaflow
  Environment    .run/stack.env  (. .run/stack.env)   logs: .run/logs/   ./dev status | logs | down
  install step   $((t1 - t0))s
  start step     $((t2 - t1))s
EOF
}

cmd_down() {
  lock
  local pid c p i
  if ! pid=$(server_pid); then
    say "nothing was running"
    rm -f "$RUN/pids/process-compose.pid" "$RUN/pids/process-compose.start"
    unlock
    return 0
  fi
  local -a stopped=()
  refresh_states
  for c in "${SERVICES[@]}" "${INFRA[@]}"; do
    if p=$(running_pid "$c"); then stopped+=("$c:$p"); fi
  done
  # process-compose stops its processes (services first; each SIGTERM or its own signal,
  # SIGKILL after CITAFLOW_DEV_STOP_TIMEOUT) and exits
  pc down >/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local st
  st=$(<"$RUN/pids/process-compose.start")
  for ((i = 0; i < (STOP_TIMEOUT * ${#stopped[@]} + 30) * 5; i++)); do
    [[ $(proc_starttime "$pid" 2>/dev/null || true) == "$st" ]] || break
    sleep 0.2
  done
  if [[ $(proc_starttime "$pid" 2>/dev/null || true) == "$st" ]]; then
    warn "process-compose (pid $pid) still running; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for c in "${stopped[@]}"; do
    if [[ -d /proc/${c#*:} && $(proc_starttime "${c#*:}" 2>/dev/null) ]]; then
      warn "${c%%:*} (pid ${c#*:}) is still running"
    else
      say "${c%%:*}: stopped (pid ${c#*:})"
    fi
  done
  say "process-compose: stopped (pid $pid)"
  rm -f "$RUN/pids/process-compose.pid" "$RUN/pids/process-compose.start" "$PC_SOCK"
  unlock
}

rss_mib() { # pid -> RSS of it and its children, MiB
  local kb
  kb=$({
    ps -o rss= -p "$1"
    ps -o rss= --ppid "$1"
  } 2>/dev/null | awk '{s+=$1} END {print s+0}')
  echo $((kb / 1024))
}

component_url() {
  case $1 in
  postgres) echo "postgres://citaflow:citaflow@127.0.0.1:$PG_PORT/citaflow" ;;
  kafka) echo "127.0.0.1:$KAFKA_PORT" ;;
  registry) echo "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7" ;;
  mailpit) echo "http://127.0.0.1:$MAILPIT_UI_PORT (smtp 127.0.0.1:$SMTP_PORT)" ;;
  *) echo "http://127.0.0.1:$(svc_port "$1")" ;;
  esac
}

cmd_status() {
  local mode s pid state rc=0 mem
  mode=$(services_mode)
  if server_up; then refresh_states; else STATES='[]'; fi
  printf '%-18s %-8s %-6s %-8s %s\n' COMPONENT PID STATE RSS URL
  for s in "${INFRA[@]}" "${SERVICES[@]}"; do
    pid=$(running_pid "$s") || pid=""
    mem="-"
    if [[ -n $pid ]]; then
      mem="$(rss_mib "$pid")M"
      if [[ $(state "$s" is_ready) == Ready ]]; then state=ready; else
        state=down # running but not answering
        rc=1
      fi
    elif is_service "$s" && [[ $mode != on ]]; then
      state=off # infra-only stack: services not expected
    else
      state=down
      rc=1
    fi
    printf '%-18s %-8s %-6s %-8s %s\n' "$s" "${pid:--}" "$state" "$mem" "$(component_url "$s")"
  done
  return "$rc"
}

# PIDs of the running services, "name pid" a line (for scripts/bench.py)
cmd_pids() {
  server_up || return 0
  refresh_states
  local s pid
  for s in "${INFRA[@]}" "${SERVICES[@]}"; do
    if pid=$(running_pid "$s"); then printf '%s %s\n' "$s" "$pid"; fi
  done
}

canon() { # user-facing name -> component
  case $1 in
  postgres | postgresql | pg) echo postgres ;;
  kafka) echo kafka ;;
  registry | apicurio | schema-registry) echo registry ;;
  mailpit | smtp) echo mailpit ;;
  ingest-api | api) echo ingest-api ;;
  booking-processor | processor) echo booking-processor ;;
  notifier | notifier-email) echo notifier-email ;;
  notifier-sms) echo notifier-sms ;;
  sms-sink | sms) echo sms-sink ;;
  *) die "unknown component '$1' (postgres kafka registry mailpit ingest-api booking-processor notifier-email notifier-sms sms-sink)" ;;
  esac
}

cmd_logs() {
  local follow=auto n=100 a name=""
  for a in "$@"; do
    case $a in
    -f | --follow) follow=yes ;;
    --no-follow) follow=no ;;
    -n*) n=${a#-n} ;;
    *)
      if [[ -f $RUN/logs/$a.log ]]; then name=$a; else name=$(canon "$a"); fi
      ;;
    esac
  done
  [[ $n =~ ^[0-9]+$ ]] || die "logs: -n needs a number, e.g. -n200"
  [[ $follow == auto ]] && { [[ -t 1 ]] && follow=yes || follow=no; }
  local -a files
  if [[ -n $name ]]; then
    files=("$RUN/logs/$name.log")
    [[ -f ${files[0]} ]] || die "no log yet: ${files[0]#"$ROOT"/}"
  else
    # the long-running processes (+ the last migration run); other files in
    # .run/logs (install-*, cargo-build, kafka-topics, process-compose, ...) by name
    local c
    files=()
    for c in "${INFRA[@]}" migrate "${SERVICES[@]}"; do
      [[ -f $RUN/logs/$c.log ]] && files+=("$RUN/logs/$c.log")
    done
    ((${#files[@]})) || die "no logs yet in .run/logs"
  fi
  if [[ $follow == yes ]]; then
    exec tail -n "$n" -F "${files[@]}"
  else
    tail -n "$n" "${files[@]}"
  fi
}

one_component_cmd() { # start|stop|restart name
  local op=$1
  [[ $# -eq 2 ]] || die "usage: ./dev $op <component>"
  local name pid
  name=$(canon "$2")
  check_settings
  lock
  check_running_settings
  if server_up; then refresh_states; else STATES='[]'; fi
  if [[ $op == stop || $op == restart ]]; then
    if pid=$(running_pid "$name"); then
      pc process stop "$name" >/dev/null || die "process-compose could not stop $name"
      say "$name: stopped (pid $pid)"
    elif [[ $op == stop ]]; then
      say "$name: not running"
    fi
  fi
  if [[ $op == start || $op == restart ]]; then
    if is_service "$name" && [[ ! -x $(svc_path "$name") ]]; then
      warn "$name: $(svc_path "$name" | sed "s|^$ROOT/||") does not exist (not built yet?)"
      die "$name could not be started"
    fi
    case $name in postgres | kafka | registry | mailpit) "$DEV_DIR/install.sh" stack ;; esac
    write_env_file
    [[ -s $RUN/services.profile ]] || printf '%s\n' "$PROFILE" >"$RUN/services.profile"
    if ! server_up; then
      # nothing runs: start this component and what it depends on
      check_ports_free "$name"
      save_settings
      is_service "$name" && echo on >"$RUN/services.mode"
      start_server "$name"
      wait_for "$name"
    elif ! running_pid "$name" >/dev/null; then
      check_ports_free "$name"
      pc process start "$name" >/dev/null || die "process-compose could not start $name"
      wait_for "$name"
      case $name in
      postgres) bash "$DEV_DIR/proc/pg-bootstrap.sh" >>"$RUN/logs/pg-bootstrap.log" 2>&1 || die_log pg-bootstrap "pg-bootstrap failed" ;;
      kafka) bash "$DEV_DIR/proc/kafka-topics.sh" >>"$RUN/logs/kafka-topics.log" 2>&1 || die_log kafka-topics "kafka-topics failed" ;;
      esac
    else
      say "$name: already running"
    fi
    save_settings
  fi
  unlock
}

# One lock so two ./dev invocations never start the same thing twice. fd 9 is closed in
# the process-compose server (start_server), so nothing it runs holds it.
lock() {
  mkdirs
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$RUN/.lock"
    flock -w 900 9 || die "another ./dev command holds $RUN/.lock"
  fi
}
unlock() { { exec 9>&-; } 2>/dev/null || true; }
