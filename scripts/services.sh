#!/usr/bin/env bash
# Installs (when missing) and starts the services the tests use, then exports their URLs.
# Sourced by scripts/test; safe to run again while they are already running.
set -euo pipefail

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A private cluster, created afresh for every run: never the machine's own cluster, whose state
# (an unclean shutdown, thousands of old test databases to fsync in recovery) a clean clone
# cannot control. fsync is off because the data is thrown away.
start_postgres() {
  [ -d /usr/lib/postgresql ] || apt_install postgresql
  local bin dir port
  bin="/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -n | tail -n 1)/bin"
  dir="${TEST_POSTGRES_DIR:-/tmp/oxidp-test-postgres}"
  port="${TEST_POSTGRES_PORT:-55432}"
  as_postgres() { su postgres -s /bin/sh -c "$1"; }
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl -D $dir/data -m immediate -w -t 60 stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'oxidp-test\n' >"$dir/password"
  chown -R postgres:postgres "$dir"
  as_postgres "$bin/initdb -U postgres -A scram-sha-256 --pwfile=$dir/password -D $dir/data" >/dev/null
  as_postgres "$bin/pg_ctl -D $dir/data -l $dir/log -w -t 120 start -o '-p $port -k $dir \
    -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off \
    -c synchronous_commit=off -c full_page_writes=off'" >/dev/null \
    || { cat "$dir/log" >&2; return 1; }
  export TEST_POSTGRES_URL="postgres://postgres:oxidp-test@127.0.0.1:$port/postgres"
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no \
      --logfile /tmp/oxidp-test-redis.log
  fi
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export TEST_REDIS_URL="redis://127.0.0.1:6379"
}

start_postgres
start_redis
