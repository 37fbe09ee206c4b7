#!/usr/bin/env bash
# Set up (if needed) and start CV Interview Lab on http://localhost:8501
# Extra arguments go to `streamlit run`, e.g. scripts/run.sh --server.port 8600
#
# Classroom LAN: browsers allow the camera only on https:// pages (or http://localhost), so
#   scripts/run.sh --https              serves HTTPS with a self-signed certificate made (once,
#                                       remade when the LAN addresses change) in .certs/ for
#                                       localhost and this machine's LAN addresses
#   scripts/run.sh --https CERT KEY     serves HTTPS with your own certificate and key (PEM)
# Students open https://<this machine's address>:8501 and accept the browser's warning once.
set -euo pipefail
cd "$(dirname "$0")/.."

https=0 cert="" key="" args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --https)
      https=1
      shift
      if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then  # a path follows: CERT KEY
        if [ $# -lt 2 ] || [ "${2#-}" != "$2" ]; then
          echo "!! --https takes no argument (self-signed certificate) or two: --https CERT KEY" >&2
          exit 2
        fi
        cert="$1" key="$2"
        shift 2
      fi
      ;;
    *) args+=("$1"); shift ;;
  esac
done

bash scripts/setup.sh
if [ "$https" = 1 ]; then
  if [ -n "$cert" ]; then
    files="$(.venv/bin/python -m core.lan check "$cert" "$key")"
  else
    files="$(.venv/bin/python -m core.lan cert .certs)"
  fi
  { read -r cert; read -r key; } <<<"$files"
  args=(--server.sslCertFile "$cert" --server.sslKeyFile "$key" ${args[@]+"${args[@]}"})
  echo "==> HTTPS: students open the Network URL below (https://...) and accept the browser's" \
       "warning about the self-signed certificate once" >&2
fi
# Streamlit runs each script run in its own thread, and glibc gives threads their own malloc
# arenas (up to 8 per core) whose freed memory other threads do not reuse: with the default,
# every tour of the app by a new session left the server 20-30 MB bigger; with 2 arenas, about
# 10 MB (benchmark/driver.py starts its server the same way).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/python -m streamlit run Home.py ${args[@]+"${args[@]}"}
