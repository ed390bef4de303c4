#!/usr/bin/env bash
# The throwaway PostgreSQL 15 cluster the test suite uses.
#
#   scripts/test-postgres.sh start|stop|status|url
#   scripts/test-postgres.sh with COMMAND...   # start if needed, run COMMAND, then stop
#                                              # the cluster only if this call started it
#
# initdb refuses to run as root, so the cluster belongs to the `postgres` OS
# user that Debian's packages create; tests connect over TCP on loopback.
# Several checkouts may share one cluster: `with` never stops a cluster that was
# already running, nor one another client is still connected to.
#
# Overrides: OPENDOT_TEST_PGPORT (54330), OPENDOT_TEST_PGDATA
# (/var/tmp/opendot-test-pg15), PGBIN (/usr/lib/postgresql/15/bin).
set -euo pipefail
cmd=${1:-start}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA=${OPENDOT_TEST_PGDATA:-/var/tmp/opendot-test-pg15}
PORT=${OPENDOT_TEST_PGPORT:-54330}
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

start() {
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! running; then
    # fsync off and a small shared_buffers: this cluster holds only test data.
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w start -o \
      "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
  fi
}

stop() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
}

# Clients other than this query: another checkout's tests still at work.
others_connected() {
  local count
  count=$(psql "$URL" -XAtqc \
    "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()" \
    2>/dev/null || echo 0)
  [ "${count:-0}" -gt 0 ]
}

case "$cmd" in
  start)
    start
    echo "$URL"
    ;;
  stop)
    stop
    ;;
  status)
    running
    ;;
  url)
    echo "$URL"
    ;;
  with)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 with COMMAND..." >&2; exit 2; }
    started=""
    if ! running; then
      start
      started=1
    fi
    finish() {
      if [ -n "$started" ]; then
        if others_connected; then
          echo "test-postgres: leaving the cluster on port $PORT running: another client uses it" >&2
        else
          stop
        fi
      fi
    }
    trap finish EXIT
    trap 'exit 130' INT TERM
    "$@"
    ;;
  *) echo "usage: $0 start|stop|status|url|with COMMAND..." >&2; exit 2 ;;
esac
