#!/usr/bin/env bash
# A local Redis Cluster from Debian's redis-server: three masters, three replicas, on loopback.
#
#   scripts/redis-cluster.sh start DIR [BASE_PORT]   # ports BASE_PORT..BASE_PORT+5 (default 7000), data in DIR
#   scripts/redis-cluster.sh stop DIR                # stops every node started in DIR
#   scripts/redis-cluster.sh status DIR              # CLUSTER INFO of the first node
#
# Idempotent: `start` on a DIR whose cluster answers "cluster_state:ok" does nothing. Nodes keep nothing on
# disk beyond their nodes.conf (no RDB, no AOF): a test cluster is thrown away with its DIR. The tests start
# their own on free ports (tests/conftest.py); `make demo ARGS='--redis redis+cluster://127.0.0.1:7000'`
# works against one started by hand.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
base=${3:-7000}
if [[ -z "$cmd" || -z "$dir" || "$cmd" == "-h" || "$cmd" == "--help" ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
command -v redis-server >/dev/null || { echo "redis-cluster: redis-server not found (Debian package redis-server)" >&2; exit 1; }

ports_of() { cat "$dir/ports" 2>/dev/null || true; }

case "$cmd" in
start)
  mkdir -p "$dir"
  if [[ -f "$dir/ports" ]] && redis-cli -p "$(head -n1 "$dir/ports")" cluster info 2>/dev/null | grep -q "cluster_state:ok"; then
    echo "redis-cluster: running on $(tr '\n' ' ' < "$dir/ports")"
    exit 0
  fi
  : > "$dir/ports"
  for i in 0 1 2 3 4 5; do
    port=$((base + i))
    node="$dir/$port"
    mkdir -p "$node"
    rm -f "$node/nodes.conf"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$node/nodes.conf" \
      --cluster-node-timeout 1000 --cluster-replica-validity-factor 0 --save "" --appendonly no \
      --dir "$node" --daemonize yes --pidfile "$node/redis.pid" --logfile "$node/redis.log" \
      --protected-mode no
    echo "$port" >> "$dir/ports"
  done
  for port in $(ports_of); do
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  hosts=$(for port in $(ports_of); do printf '127.0.0.1:%s ' "$port"; done)
  # shellcheck disable=SC2086
  redis-cli --cluster create $hosts --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { cat "$dir/create.log" >&2; exit 1; }
  for _ in $(seq 1 200); do
    ok=1
    for port in $(ports_of); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q "cluster_state:ok" || ok=0
    done
    [[ $ok == 1 ]] && break
    sleep 0.05
  done
  [[ $ok == 1 ]] || { echo "redis-cluster: not ok after 10 s" >&2; exit 1; }
  echo "redis-cluster: started on $(tr '\n' ' ' < "$dir/ports")"
  ;;
stop)
  for port in $(ports_of); do
    pidfile="$dir/$port/redis.pid"
    if [[ -f "$pidfile" ]]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  for port in $(ports_of); do
    for _ in $(seq 1 100); do [[ -f "$dir/$port/redis.pid" ]] && kill -0 "$(cat "$dir/$port/redis.pid")" 2>/dev/null || break; sleep 0.05; done
  done
  echo "redis-cluster: stopped"
  ;;
status)
  redis-cli -p "$(head -n1 "$dir/ports")" cluster info
  ;;
*)
  echo "redis-cluster: unknown command $cmd (start, stop, status)" >&2
  exit 2
  ;;
esac
