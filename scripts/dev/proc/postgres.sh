#!/usr/bin/env bash
# The PostgreSQL server of the stack: own data directory under .run/postgres (initdb on the
# first start), settings that follow ./dev's (rewritten every start), then the postmaster
# itself in the foreground, as the PostgreSQL user when run as root.
. "$(dirname "$0")/common.sh"

pg_setup_user
find_pg_bin || die "PostgreSQL binaries not found (run ./dev up)"
mkdir -p "$RUN/postgres" "$PG_SOCK"
chmod 755 "$RUN/postgres" "$PG_SOCK"
if [[ $EUID -eq 0 ]]; then
  chown "$PG_USER" "$RUN/postgres" "$PG_SOCK"
  if [[ -d $PG_DATA && $(stat -c %U "$PG_DATA") != "$PG_USER" ]]; then chown -R "$PG_USER" "$PG_DATA"; fi
  "${PG_AS[@]}" test -w "$RUN/postgres" ||
    die "PostgreSQL runs as '$PG_USER', who cannot reach $RUN/postgres: a parent directory of the repository is not searchable by other users (chmod o+x it, or move the repository)"
fi
if ((${#PG_SOCK} + 16 > 107)); then
  die "socket path $PG_SOCK is too long for a unix socket; move the repository to a shorter path"
fi
cd "$RUN/postgres"
if [[ ! -s $PG_DATA/PG_VERSION ]]; then
  say "postgres: initdb ${PG_DATA#"$ROOT"/}"
  rm -rf "$PG_DATA"
  locale=C.UTF-8
  locales=$(locale -a 2>/dev/null || true)
  grep -qix 'c.utf-\?8' <<<"$locales" || locale=C
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale="$locale" \
    --auth-local=trust --auth-host=scram-sha-256 >"$RUN/logs/postgres-initdb.log" 2>&1 ||
    die_log postgres-initdb "initdb failed"
  echo "include_if_exists = 'citaflow-dev.conf'" >>"$PG_DATA/postgresql.conf"
fi
cat >"$PG_DATA/citaflow-dev.conf" <<CONF
# written by ./dev on every start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 128MB
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
# ./dev bench reads where the database's time goes (the extension is created by the bench)
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 1000
CONF
[[ $EUID -eq 0 ]] && chown "$PG_USER" "$PG_DATA/citaflow-dev.conf"
say "postgres: starting on 127.0.0.1:$PG_PORT"
# exec: this PID is the postmaster's, which process-compose stops with SIGINT (fast shutdown)
exec "${PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DATA"
