#!/usr/bin/env bash
# Starts (or stops) the throwaway PostgreSQL 15 cluster the test suite uses.
# initdb refuses to run as root, so the cluster belongs to the `postgres` OS
# user that Debian's packages create; tests connect over TCP on loopback.
set -euo pipefail
cmd=${1:-start}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA=${OPENDOT_TEST_PGDATA:-/var/tmp/opendot-test-pg15}
PORT=${OPENDOT_TEST_PGPORT:-54330}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      mkdir -p "$PGDATA"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
      as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
      # fsync off and a small shared_buffers: this cluster holds only test data.
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w start -o \
        "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
    fi
    echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    ;;
  url)
    echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
    ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
