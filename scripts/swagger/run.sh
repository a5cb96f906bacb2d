#!/usr/bin/env bash
# Swagger UI check in headless Chromium: builds oxidp, starts it on a free loopback port with a
# throw-away SQLite database, creates a user, and runs scripts/swagger/check.mjs (playwright-core
# driving the system Chromium), which loads /docs, runs the Authorize button's authorization-code
# flow with PKCE as the built-in client oxidp-api, and calls GET /api/v1/users/me with the token.
# Installs what is missing (Chromium from Debian, playwright-core from npm; no browser download).
# Prints one line per check and ends with "swagger: N passed, M failed"; exits 1 on any failure.
# Screenshot: /tmp/swagger.png (SWAGGER_SCREENSHOT overrides). The server is always stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here="$root/scripts/swagger"

setup_failed() {
  echo "swagger: setup failed: $*" >&2
  echo "swagger: 0 passed, 1 failed"
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
command -v node >/dev/null 2>&1 || setup_failed "node is not installed"
command -v npm >/dev/null 2>&1 || setup_failed "npm is not installed"

# -- playwright-core, pinned by package-lock.json (it downloads no browser)
locked_version() {
  (cd "$here" && node -e 'const locked = require("./package-lock.json").packages["node_modules/playwright-core"].version;
    const installed = require("./node_modules/playwright-core/package.json").version;
    process.exit(locked === installed ? 0 : 1);') 2>/dev/null
}
if ! locked_version; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null) \
    || setup_failed "npm ci in scripts/swagger"
fi

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

port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });') \
  || setup_failed "no free port"
export OXIDP_BIND="127.0.0.1:$port"
export OXIDP_ISSUER="http://127.0.0.1:$port"
export OXIDP_DATABASE_URL="sqlite://$tmp/oxidp.db?mode=rwc"
export OXIDP_KEYS_DIR="$tmp/keys"
export OXIDP_MAIL_DIR="$tmp/mail"

email="swagger-user@example.com"
password="Swagger-check-passphrase-42"

"$bin" migrate >"$tmp/migrate.out" 2>"$tmp/migrate.err" \
  || { cat "$tmp/migrate.err" >&2; setup_failed "oxidp migrate"; }
"$bin" user create --email "$email" --password "$password" >"$tmp/user.json" 2>"$tmp/user.err" \
  || { cat "$tmp/user.err" >&2; setup_failed "oxidp user create"; }

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
  if node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "$OXIDP_ISSUER/healthz" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { server_log; setup_failed "oxidp serve did not answer $OXIDP_ISSUER/healthz within 10 s"; }

# -- the browser check
status=0
SWAGGER_ISSUER="$OXIDP_ISSUER" SWAGGER_EMAIL="$email" SWAGGER_PASSWORD="$password" \
  SWAGGER_CHROMIUM="$chromium" SWAGGER_PROFILE="$tmp/chromium-profile" \
  SWAGGER_SCREENSHOT="${SWAGGER_SCREENSHOT:-/tmp/swagger.png}" \
  node "$here/check.mjs" >"$tmp/check.out" 2>&1 || status=$?
closing=$(tail -n 1 "$tmp/check.out")
if ! [[ "$closing" =~ ^swagger:\ [0-9]+\ passed,\ [0-9]+\ failed$ ]]; then
  # the check died before its summary: show what it printed and count it as one failure
  cat "$tmp/check.out"
  status=1
  closing="swagger: 0 passed, 1 failed"
else
  sed '$d' "$tmp/check.out"
fi
if [ "$status" -ne 0 ]; then
  server_log
fi
cleanup
echo "$closing"
[ "$status" -eq 0 ] || exit 1
