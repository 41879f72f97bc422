#!/usr/bin/env bash
# Headless Chromium from Debian's packages, for the test that opens the MLflow UI link m9 prints in a real browser
# (tests/test_ui.py). Idempotent: installs once, as root; prints the browser's path.
#
#   sudo bash tools/chromium.sh
set -euo pipefail
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "tools/chromium.sh: run as root to install chromium" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  }
fi
command -v chromium
