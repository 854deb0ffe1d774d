#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer, starting the locally
# installed servers if they are not running, and installing them with apt-get when missing and root.
# Leaves servers that already run alone.
set -euo pipefail

say() { printf '[services] %s\n' "$*"; }

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

install_missing() {
  local packages=()
  command -v pg_ctlcluster >/dev/null 2>&1 || packages+=(postgresql postgresql-client)
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  [ ${#packages[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${packages[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    say "missing: ${packages[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${packages[*]}) and run again."
    exit 1
  fi
}

if ! pg_up || ! redis_up; then install_missing; fi

if ! pg_up; then
  say "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! redis_up; then
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

for _ in $(seq 1 60); do
  if pg_up && redis_up; then
    # Tests connect as postgres without a password over TCP.
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
      say "PostgreSQL answers but refuses postgres@127.0.0.1 without a password; allow trust auth for local tests."
      exit 1
    fi
    say "PostgreSQL and Redis are up"
    exit 0
  fi
  sleep 1
done
pg_up || say "PostgreSQL did not come up on 127.0.0.1:5432"
redis_up || say "Redis did not come up on 127.0.0.1:6379"
exit 1
