#!/usr/bin/env bash
# Set up (if needed) and start CV Interview Lab on http://localhost:8501
# Extra arguments go to `streamlit run`, e.g. scripts/run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Streamlit runs each script run in its own thread, and glibc gives threads their own malloc
# arenas (up to 8 per core) whose freed memory other threads do not reuse: with the default,
# every tour of the app by a new session left the server 20-30 MB bigger; with 2 arenas, about
# 10 MB (benchmark/driver.py starts its server the same way).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/python -m streamlit run Home.py "$@"
