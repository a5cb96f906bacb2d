#!/usr/bin/env bash
# Interoperability check: clients nobody here wrote register themselves and sign in with a real
# browser. Builds oxidp, starts it on a free loopback port with a throw-away SQLite database and
# OXIDP_DYNAMIC_REGISTRATION=token, creates a user and an initial access token
# (oxidp registration-token create), then runs scripts/interop/authlib_flow.py: Python's authlib
# registers its own clients through /register (RFC 7591) with that token (a client_secret_basic
# one and a private_key_jwt one with its own keys), and Debian's headless Chromium, driven by
# playwright, fills in the login and consent pages. Installs what is missing (Chromium from
# Debian, the pinned Python packages into .venv-interop; no browser download, never
# `playwright install`). Always stops the server. Prints one line per check and ends with
# "interop: N passed, M failed"; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=scripts/interop
venv="$root/.venv-interop"

# A setup step failed before any check could run: say which, then the closing line.
setup_failed() {
  echo "interop: setup failed: $*" >&2
  echo "interop: 0 passed, 1 failed"
  exit 1
}

# The server gets only the configuration below, whatever the calling shell exported.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^OXIDP_' || true)

# -- the browser: Debian's Chromium, never a downloaded build
chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || setup_failed "apt-get install chromium"
fi
[ -x "$chromium" ] || setup_failed "no Chromium at $chromium"

# -- Python side: a virtualenv with the pinned client libraries (playwright without browsers)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || setup_failed "python3 -m venv $venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" \
  || setup_failed "pip install -r $here/requirements.txt"

# -- the server binary
cargo build --quiet --locked --bin oxidp || setup_failed "cargo build --locked --bin oxidp"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/oxidp"
[ -x "$bin" ] || setup_failed "no binary at $bin"

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OXIDP_BIND="127.0.0.1:$port"
export OXIDP_ISSUER="http://127.0.0.1:$port"
export OXIDP_DATABASE_URL="sqlite://$tmp/oxidp.db?mode=rwc"
export OXIDP_KEYS_DIR="$tmp/keys"
export OXIDP_REFRESH_REUSE_GRACE=0
export OXIDP_DYNAMIC_REGISTRATION=token
export OXIDP_TOKEN_EXCHANGE_AUDIENCES=registered-clients

email="interop-user@example.com"
password="authlib-Interop-passphrase-42"
redirect_uri="http://127.0.0.1:8765/callback"

# -- a user and an initial access token for the registrations (two are made; five allowed)
"$bin" migrate >"$tmp/migrate.out" 2>"$tmp/migrate.err" \
  || { cat "$tmp/migrate.err" >&2; setup_failed "oxidp migrate"; }
"$bin" user create --email "$email" --password "$password" >"$tmp/user.json" 2>"$tmp/user.err" \
  || { cat "$tmp/user.err" >&2; setup_failed "oxidp user create"; }
"$bin" registration-token create --uses 5 >"$tmp/token.json" 2>"$tmp/token.err" \
  || { cat "$tmp/token.err" >&2; setup_failed "oxidp registration-token create"; }
initial_token=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$tmp/token.json") \
  || setup_failed "no token in the output of oxidp registration-token create: $(cat "$tmp/token.json")"

# -- the server
"$bin" serve >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
server_log() {
  echo "--- oxidp serve stderr (last 40 lines):" >&2
  tail -n 40 "$tmp/server.log" >&2 || true
}
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    server_log
    setup_failed "oxidp serve exited before it was ready"
  fi
  if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$OXIDP_ISSUER/healthz" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { server_log; setup_failed "oxidp serve did not answer $OXIDP_ISSUER/healthz within 10 s"; }

# -- the flow
# (the initial access token goes through the environment, not the command line)
status=0
INTEROP_INITIAL_TOKEN="$initial_token" "$venv/bin/python" "$here/authlib_flow.py" \
  --issuer "$OXIDP_ISSUER" --email "$email" --password "$password" --chromium "$chromium" \
  --redirect-uri "$redirect_uri" --reuse-grace "$OXIDP_REFRESH_REUSE_GRACE" \
  >"$tmp/flow.out" 2>&1 || status=$?
closing=$(tail -n 1 "$tmp/flow.out")
if ! [[ "$closing" =~ ^interop:\ [0-9]+\ passed,\ [0-9]+\ failed$ ]]; then
  # the flow died before its summary: show what it printed and count it as one failure
  cat "$tmp/flow.out"
  status=1
  closing="interop: 0 passed, 1 failed"
else
  sed '$d' "$tmp/flow.out"
fi
if [ "$status" -ne 0 ]; then
  server_log
fi
cleanup
echo "$closing"
[ "$status" -eq 0 ] || exit 1
