#!/usr/bin/env bash
# Start the local servers the tests talk to (PostgreSQL, Redis) if they are not already answering.
# Idempotent; prints one line per service. Tests use the real servers, never mocks.
set -u

if command -v pg_isready >/dev/null 2>&1; then
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "postgresql: running"
  elif command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start \
      && echo "postgresql: started" || echo "postgresql: could not start" >&2
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
else
  echo "postgresql: pg_isready not found (not needed by the market-data tests)"
fi

if command -v redis-cli >/dev/null 2>&1; then
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "redis: running"
  elif command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log && echo "redis: started" || echo "redis: could not start" >&2
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
else
  echo "redis: redis-cli not found (not needed by the market-data tests)"
fi
exit 0
