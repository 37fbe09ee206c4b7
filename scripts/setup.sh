#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv) — sourced by run.sh and test.sh.
#   scripts/setup.sh          runtime packages (requirements.txt)
#   scripts/setup.sh dev      runtime + test packages (requirements-dev.txt) + Chromium (apt),
#                             for the browser tests and the benchmark
# Re-running is cheap: pip runs only when the requirements files changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
REQ=requirements.txt
[ "${1:-}" = "dev" ] && REQ=requirements-dev.txt

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$REQ" .txt)"
want="$(cat requirements.txt "$REQ" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing $REQ into .venv (first time: a few minutes; torch is large)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # requirements.txt takes CPU-only torch from PyTorch's index; where that index cannot be
  # reached, scripts/requirements.py writes a copy without it (same versions) and says so.
  install="$(.venv/bin/python scripts/requirements.py "$REQ" .venv/requirements-offline)"
  .venv/bin/python -m pip install --quiet -r "$install"
  # Both OpenCV wheels stay installed, at the same pinned version (see requirements.txt):
  # the same files Community Cloud's installer ends up with.
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "dev" ] && ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Chromium for the browser tests and the benchmark (Debian/Ubuntu apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if command -v apt-get >/dev/null; then
    ($SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null) \
      || echo "!! could not install chromium: the browser tests will be skipped"
  else
    echo "!! no apt-get: install Chromium yourself (or set CHROMIUM=/path); browser tests will be skipped"
  fi
fi
