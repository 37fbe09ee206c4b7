#!/usr/bin/env bash
# Set up (if needed: venv, test packages, Chromium) and run the lab's benchmark: cold start,
# every page (first render, warm reruns), server memory over three tours, every model.
# Extra arguments go to `python -m benchmark`, e.g. scripts/bench.sh --part models --readme
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m benchmark "$@"
