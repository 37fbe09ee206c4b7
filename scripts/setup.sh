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
  .venv/bin/python -m pip install --quiet -r "$REQ"
  # ultralytics pulls in opencv-python (needs libGL); both provide the cv2 module, so keep
  # exactly one: the headless build, which runs on servers, Docker and Community Cloud.
  if .venv/bin/python -m pip show --quiet opencv-python >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall --quiet -y opencv-python opencv-python-headless
    .venv/bin/python -m pip install --quiet --no-deps "$(grep -E '^opencv-python-headless' requirements.txt)"
  fi
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
