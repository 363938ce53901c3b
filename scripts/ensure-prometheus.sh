#!/usr/bin/env bash
# Debian's prometheus (the server and promtool) for the metrics tests (tests/tickfan/test_prometheus.py,
# tests/tickfan/test_promtool.py): installed once with apt-get, never downloaded. Idempotent.
set -u
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: $(command -v prometheus)"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
if command -v apt-get >/dev/null 2>&1; then
  # --no-install-recommends: the server and promtool only, not the node exporter and friends
  $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi
if command -v promtool >/dev/null 2>&1; then echo "prometheus: installed"; else echo "prometheus: could not install (apt-get install prometheus)" >&2; fi
exit 0
