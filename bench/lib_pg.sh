# Sourced by bench/vex_consensus.sh and bench/vex_ingest.sh: a throwaway
# Postgres cluster of Debian's postgresql (initdb + pg_ctl on a free port,
# as bench/serve.sh and stella-testkit's postgres::Cluster do), with the
# roles docs/service.md names. Sets PG_DIR PG_PORT PG_OWNER_URL
# PG_SERVICE_URL and exports STELLA_DATABASE / STELLA_MIGRATION_DATABASE.
# PG_EXTRA_OPTS: more server options for pg_ctl (bench/serve.sh raises
# max_connections).
PG_PW=stella-bench-pw
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_USER=
PG_DIR=
pg_as() { if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# pg_psql DB SQL: as the superuser over the cluster's socket
pg_psql() { pg_as "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U stella_super -d "$1" -c "$2"; }
# pg_psql_file DB [psql flags]: stdin as the superuser
pg_psql_file() { local db=$1; shift; pg_as "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U stella_super -d "$db" "$@" >/dev/null; }
pg_start() {
  [ -x "$PG_BIN/initdb" ] || { echo "needs postgresql (initdb)" >&2; exit 2; }
  PG_DIR=$(mktemp -d /tmp/stella-bench-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    PG_USER=postgres; id postgres >/dev/null 2>&1 || PG_USER=nobody
    chown "$PG_USER" "$PG_DIR"
  fi
  echo "$PG_PW" >"$PG_DIR/pw"
  if [ -n "$PG_USER" ]; then chown "$PG_USER" "$PG_DIR/pw"; fi
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U stella_super -E UTF8 --locale=C --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$PG_DIR/pw" >/dev/null
  PG_PORT=$(free_port)
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 ${PG_EXTRA_OPTS:-}" start >/dev/null
  pg_psql postgres "CREATE ROLE stella_app NOLOGIN"
  pg_psql postgres "CREATE ROLE stella_owner LOGIN PASSWORD '$PG_PW'"
  pg_psql postgres "CREATE ROLE stella_svc LOGIN PASSWORD '$PG_PW' IN ROLE stella_app"
  pg_psql postgres "CREATE DATABASE stella OWNER stella_owner"
  PG_SERVICE_URL="postgres://stella_svc:$PG_PW@127.0.0.1:$PG_PORT/stella"
  PG_OWNER_URL="postgres://stella_owner:$PG_PW@127.0.0.1:$PG_PORT/stella"
  export STELLA_DATABASE=$PG_SERVICE_URL STELLA_MIGRATION_DATABASE=$PG_OWNER_URL
}
pg_stop() {
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
  rm -rf "$PG_DIR"; PG_DIR=
}
