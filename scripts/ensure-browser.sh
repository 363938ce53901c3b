#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/e2e/test_browser.py, driven by Playwright for Python with
# executable_path): installed once with apt-get, never downloaded by Playwright. Idempotent.
set -u
CHROMIUM=${TICKFAN_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $CHROMIUM"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
if [ -x "$CHROMIUM" ]; then echo "chromium: installed"; else echo "chromium: could not install (apt-get install chromium)" >&2; fi
exit 0
