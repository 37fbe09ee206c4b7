#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit, page (AppTest) and browser tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k detection -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Chromium for the browser tests (Debian/Ubuntu apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if command -v apt-get >/dev/null; then
    ($SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null) \
      || echo "!! could not install chromium: the browser tests will be skipped"
  else
    echo "!! no apt-get: install Chromium yourself (or set CHROMIUM=/path); browser tests will be skipped"
  fi
fi
exec .venv/bin/python -m pytest "$@"
