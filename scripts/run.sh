#!/usr/bin/env bash
# Set up (if needed) and start CV Interview Lab on http://localhost:8501
# Extra arguments go to `streamlit run`, e.g. scripts/run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run Home.py "$@"
