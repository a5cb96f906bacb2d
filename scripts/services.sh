#!/usr/bin/env bash
# Installs (when missing) and starts the services the tests use, then exports their URLs.
# Sourced by scripts/test; safe to run again while they are already running.
set -euo pipefail

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_postgres() {
  command -v pg_lsclusters >/dev/null 2>&1 || apt_install postgresql
  local version cluster status
  read -r version cluster _ status _ < <(pg_lsclusters --no-header | head -n 1)
  if [ -z "${version:-}" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    pg_createcluster "$version" main >/dev/null
    cluster=main
    status=down
  fi
  if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$cluster" start
  fi
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
  done
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'oxidp-test'\"" >/dev/null
  export TEST_POSTGRES_URL="postgres://postgres:oxidp-test@127.0.0.1:5432/postgres"
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
