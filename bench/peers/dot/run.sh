#!/usr/bin/env bash
# Install (once), set up a fresh database and start the django-oauth-toolkit peer on
# 127.0.0.1:PORT, one worker process pinned to core 1.
#   bench/peers/dot/run.sh [PORT]          # default 8002
#   bench/peers/dot/run.sh --install-only
# Environment:
#   BCRYPT_ROUNDS      user password cost (default 12)
#   DOT_SERVER         gunicorn-gthread (default) | gunicorn-sync | granian
#   DOT_THREADS        threads of the one worker for gthread/granian (default 4)
#   DOT_DATABASE_URL   default: a fresh SQLite file bench/.work/dot/PORT/db.sqlite3; a
#                      postgresql://... URL must name an empty database (the harness makes one)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$(cd "$here/../.." && pwd)"
venv="$bench/.work/dot-venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x "$venv/bin/python" ]; then "$python" -m venv "$venv"; fi
if ! cmp -s "$here/requirements.txt" "$venv/.installed" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.installed"
fi
if [ "${1:-}" = "--install-only" ]; then exit 0; fi

port="${1:-${PORT:-8002}}"
work="$bench/.work/dot/$port"
mkdir -p "$work"
export DOT_PORT="$port"
export DOT_BCRYPT_ROUNDS="${BCRYPT_ROUNDS:-12}"
export BENCH_CLIENTS="${BENCH_CLIENTS:-$here/../clients.json}"
export DOT_SECRET_KEY="${DOT_SECRET_KEY:-$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')}"
export DOT_OIDC_KEY_FILE="$work/oidc-rsa.pem"
export DJANGO_SETTINGS_MODULE=benchsite.settings
if [ ! -f "$DOT_OIDC_KEY_FILE" ]; then
  "$venv/bin/python" - "$DOT_OIDC_KEY_FILE" <<'PY'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(sys.argv[1], "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
fi
if [ -z "${DOT_DATABASE_URL:-}" ]; then
  rm -f "$work"/db.sqlite3*
  export DOT_DATABASE_URL="sqlite:///$work/db.sqlite3"
fi

cd "$here"
"$venv/bin/python" manage.py migrate --verbosity 0
"$venv/bin/python" manage.py bench_setup

threads="${DOT_THREADS:-4}"
core="${BENCH_SERVER_CORE:-1}"
case "${DOT_SERVER:-gunicorn-gthread}" in
  gunicorn-sync)
    exec taskset -c "$core" "$venv/bin/gunicorn" --workers 1 --worker-class sync --bind "127.0.0.1:$port" \
      --backlog 2048 --log-level warning benchsite.wsgi:application ;;
  gunicorn-gthread)
    exec taskset -c "$core" "$venv/bin/gunicorn" --workers 1 --worker-class gthread --threads "$threads" \
      --worker-connections 1000 --keep-alive 75 --bind "127.0.0.1:$port" --backlog 2048 --log-level warning \
      benchsite.wsgi:application ;;
  granian)
    exec taskset -c "$core" "$venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port" --workers 1 \
      --blocking-threads "$threads" --backlog 2048 --log-level warning benchsite.wsgi:application ;;
  *) echo "unknown DOT_SERVER=${DOT_SERVER}" >&2; exit 2 ;;
esac
