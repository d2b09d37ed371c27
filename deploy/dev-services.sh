#!/usr/bin/env bash
# Makes PostgreSQL and Redis available on 127.0.0.1 for development and the tests:
# starts them when installed but stopped, installs them with apt-get when missing (needs root),
# and creates the test database. Idempotent: running it again changes nothing.
set -euo pipefail

PGHOST_ADDR=127.0.0.1
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
TEST_DB=${TEST_DB:-test}

say() { printf 'dev-services: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; exit 1; fi; }

pg_up() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT" 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
wait_for() { # name check
  for _ in $(seq 1 60); do "$2" && return 0; sleep 0.5; done
  say "$1 did not come up within 30 s"; exit 1
}

apt_updated=0
apt_install() {
  if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if pg_up; then
  say "PostgreSQL is up on $PGHOST_ADDR:$PGPORT"
else
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL (apt-get)"
    apt_install postgresql postgresql-client
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ -z "$version" ]; then say "no PostgreSQL cluster found under /etc/postgresql"; exit 1; fi
  if [ ! -d "/etc/postgresql/$version/main" ]; then as_root pg_createcluster "$version" main; fi
  # Trust on loopback, as the tests expect (development machines only).
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_up
fi
if ! psql -h "$PGHOST_ADDR" -p "$PGPORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$TEST_DB'" | grep -q 1; then
  psql -h "$PGHOST_ADDR" -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE \"$TEST_DB\""
  say "created database $TEST_DB"
fi

# Redis
if redis_up; then
  say "Redis is up on 127.0.0.1:$REDIS_PORT"
else
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing Redis (apt-get)"
    apt_install redis-server
  fi
  say "starting Redis (nothing kept on disk)"
  mkdir -p /tmp/polyhome-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/polyhome-redis --logfile /tmp/polyhome-redis/redis.log
  wait_for Redis redis_up
fi
say "ready: DATABASE_URL=postgres://postgres@$PGHOST_ADDR:$PGPORT/$TEST_DB REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
