#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit, page (AppTest) and browser tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k detection -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest "$@"
