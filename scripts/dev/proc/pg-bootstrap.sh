#!/usr/bin/env bash
# One-shot, once PostgreSQL is ready: role citaflow, databases citaflow and registry
# (idempotent).
. "$(dirname "$0")/common.sh"
find_pg_bin || die "PostgreSQL binaries not found"
psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres "$@"; }
psql_admin >/dev/null <<'SQL' || die "creating role citaflow failed"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citaflow') THEN
    CREATE ROLE citaflow LOGIN CREATEDB PASSWORD 'citaflow';
  ELSE
    ALTER ROLE citaflow LOGIN CREATEDB PASSWORD 'citaflow';
  END IF;
END
$$;
SQL
for db in citaflow registry; do
  if [[ $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") != 1 ]]; then
    psql_admin -c "CREATE DATABASE $db OWNER citaflow" >/dev/null || die "CREATE DATABASE $db failed"
  fi
done
say "postgres: role citaflow, databases citaflow and registry in place"
