#!/usr/bin/env bash
# Start or stop the real services the integration tests run on — PostgreSQL (Debian package), Redis
# (Debian redis-server) and S3 (moto_server from the virtualenv) — on unusual loopback ports, with all
# their state under one throw-away folder (../shared/RECIPES.md shows each recipe).
#
#   scripts/services.sh start   # prints `export VAR=...` lines for DATABASE_URL, CELERY_BROKER_URL, S3
#   scripts/services.sh env     # prints the same lines again (services already started)
#   scripts/services.sh stop    # stops all three and deletes the state folder
#   scripts/services.sh status  # exit 0 only when all three answer
#
# Ports: SYNTHEX_IT_PG_PORT (54329), SYNTHEX_IT_REDIS_PORT (63799), SYNTHEX_IT_S3_PORT (59099); the state
# folder is SYNTHEX_IT_DIR (/tmp/synthex-it-<pg port>), so two checkouts with other ports run side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT="${SYNTHEX_IT_PG_PORT:-54329}"
REDIS_PORT="${SYNTHEX_IT_REDIS_PORT:-63799}"
S3_PORT="${SYNTHEX_IT_S3_PORT:-59099}"
DIR="${SYNTHEX_IT_DIR:-/tmp/synthex-it-${PG_PORT}}"
DB=synthex
BUCKET=synthex-it
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
VENV_BIN="$(pwd)/.venv/bin"

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

print_env() {
  cat <<ENV
export DATABASE_URL=postgres://postgres@127.0.0.1:${PG_PORT}/${DB}
export CELERY_BROKER_URL=redis://127.0.0.1:${REDIS_PORT}/0
export CELERY_RESULT_BACKEND=redis://127.0.0.1:${REDIS_PORT}/1
export SYNTHEX_S3_BUCKET=${BUCKET}
export SYNTHEX_S3_ENDPOINT_URL=http://127.0.0.1:${S3_PORT}
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_S3_REGION_NAME=us-east-1
export SYNTHEX_IT_REDIS_URL=redis://127.0.0.1:${REDIS_PORT}
ENV
}

wait_for_port() {  # port, name, pid file
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not open 127.0.0.1:$1 (log: $DIR/$2.log)" >&2
  return 1
}

start_postgres() {
  if [ -z "$PG_BIN" ]; then echo "PostgreSQL is not installed (scripts/system-deps.sh)" >&2; return 1; fi
  mkdir -p "$DIR/pg" "$DIR/pgsock"
  chown postgres: "$DIR/pg" "$DIR/pgsock"
  chmod 700 "$DIR/pg"
  if [ ! -s "$DIR/pg/PG_VERSION" ]; then
    as_postgres "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    touch "$DIR/postgres.log" && chown postgres: "$DIR/postgres.log"
    as_postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/postgres.log" -w start -o \
      "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pgsock -c fsync=off -c synchronous_commit=off \
       -c full_page_writes=off -c max_connections=200" >/dev/null
  fi
  if ! as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$DB"
  fi
}

start_redis() {
  if [ -s "$DIR/redis.pid" ] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then return 0; fi
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
  wait_for_port "$REDIS_PORT" redis
}

start_moto() {
  if [ -s "$DIR/moto.pid" ] && kill -0 "$(cat "$DIR/moto.pid")" 2>/dev/null; then return 0; fi
  setsid "$VENV_BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$DIR/moto.log" 2>&1 < /dev/null &
  echo $! >"$DIR/moto.pid"
  wait_for_port "$S3_PORT" moto
  "$VENV_BIN/python" - "$S3_PORT" "$BUCKET" <<'PY'
import sys

import boto3

s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
if sys.argv[2] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket=sys.argv[2])
PY
}

stop_pid_file() {  # pid file
  if [ -s "$1" ]; then
    local pid; pid="$(cat "$1")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$DIR"
    start_postgres
    start_redis
    start_moto
    print_env
    ;;
  env)
    print_env
    ;;
  stop)
    if [ -d "$DIR/pg" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
      as_postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null
    fi
    stop_pid_file "$DIR/redis.pid"
    stop_pid_file "$DIR/moto.pid"
    rm -rf "$DIR"
    ;;
  status)
    as_postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
    (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null
    (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null
    ;;
  *)
    echo "usage: $0 start|env|stop|status" >&2
    exit 2
    ;;
esac
