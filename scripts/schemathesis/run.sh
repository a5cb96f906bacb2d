#!/usr/bin/env bash
# Schema test (issue #8): schemathesis against the running server's /openapi.json, every
# operation, twice: without credentials and with an administrator's Bearer token (plus the
# internal routes' secret). Checks: no 5xx, every response conforms to its documented schema
# and status codes. Builds oxidp, starts it on a free loopback port with a throw-away SQLite
# database, always stops it. Ends with "schemathesis: N passed, M failed" (one per operation
# and run); exits 1 on any failure.
#
# ST_MAX_EXAMPLES (default 20) and ST_MAX_TIME (seconds per run, default 75) bound the time;
# ST_HAR=1 also keeps every request and response in target/schemathesis/<run>.har.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=scripts/schemathesis
venv="$root/.venv-schemathesis"
max_examples="${ST_MAX_EXAMPLES:-20}"
max_time="${ST_MAX_TIME:-75}"
checks="not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"

setup_failed() {
  echo "schemathesis: setup failed: $*" >&2
  echo "schemathesis: 0 passed, 1 failed"
  exit 1
}

# The server gets only the configuration below, whatever the calling shell exported.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^OXIDP_' || true)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || setup_failed "python3 -m venv $venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" \
  || setup_failed "pip install -r $here/requirements.txt"

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
internal_secret=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
export OXIDP_BIND="127.0.0.1:$port"
export OXIDP_ISSUER="http://127.0.0.1:$port"
export OXIDP_DATABASE_URL="sqlite://$tmp/oxidp.db?mode=rwc"
export OXIDP_KEYS_DIR="$tmp/keys"
export OXIDP_MAIL_DIR="$tmp/mail"
export OXIDP_INTERNAL_SECRET="$internal_secret"

email="st-admin@example.com"
password="a-Long-schema-passphrase-42"
"$bin" migrate >"$tmp/migrate.out" 2>"$tmp/migrate.err" \
  || { cat "$tmp/migrate.err" >&2; setup_failed "oxidp migrate"; }
"$bin" user create --email "$email" --password "$password" --admin >"$tmp/user.json" 2>"$tmp/user.err" \
  || { cat "$tmp/user.err" >&2; setup_failed "oxidp user create"; }
# Resources whose ids the generated requests use part of the time, so operations on one resource
# reach their logic instead of answering 404 to random ids (see write_config below).
"$bin" user create --email st-user@example.com --password "$password" >"$tmp/other.json" 2>"$tmp/other.err" \
  || { cat "$tmp/other.err" >&2; setup_failed "oxidp user create (second user)"; }
"$bin" client create --name "st client" --redirect-uri http://127.0.0.1:9/callback >"$tmp/client.json" \
  2>"$tmp/client.err" || { cat "$tmp/client.err" >&2; setup_failed "oxidp client create"; }
"$bin" api-client create --name "st api client" >"$tmp/api-client.json" 2>"$tmp/api-client.err" \
  || { cat "$tmp/api-client.err" >&2; setup_failed "oxidp api-client create"; }

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

token=$("$venv/bin/python" - "$OXIDP_ISSUER" "$email" "$password" <<'PY'
import json, sys, urllib.request
issuer, email, password = sys.argv[1:4]
request = urllib.request.Request(
    issuer + "/api/v1/auth/login",
    data=json.dumps({"email": email, "password": password}).encode(),
    headers={"Content-Type": "application/json"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["access_token"])
PY
) || { server_log; setup_failed "POST /api/v1/auth/login"; }

# The ids above, plus an organization and an API key made through the API, as schemathesis
# dictionaries: each id parameter takes one of them half of the time and a generated value
# otherwise. The administrator's own id is among the user ids, so the guards that keep an
# administrator from removing themselves (409) are exercised too.
"$venv/bin/python" - "$OXIDP_ISSUER" "$token" "$tmp" >"$tmp/schemathesis.toml" <<'PY' \
  || { server_log; setup_failed "creating the test resources"; }
import json, sys, urllib.request
issuer, token, tmp = sys.argv[1:4]
def load(name):
    with open(f"{tmp}/{name}.json") as file:
        return json.load(file)
def post(path, body):
    request = urllib.request.Request(
        f"{issuer}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    return json.load(urllib.request.urlopen(request, timeout=10))
admin, other = load("user"), load("other")
organization = post("/admin/organizations", {"name": "Schema test", "slug": "schema-test"})
api_key = post("/users/me/api-keys", {"name": "schema test", "scopes": ["read:users"]})
dictionaries = {
    "user_ids": [admin["id"], other["id"]],
    "subs": [admin["sub"], other["sub"]],
    "client_ids": [load("client")["client_id"], "oxidp-api"],
    "api_client_ids": [load("api-client")["client_key"]],
    "organization_ids": [organization["id"]],
    "api_key_ids": [api_key["id"]],
}
bindings = [
    (r"^/admin/users/\{id\}", {"path.id": "user_ids"}),
    (r"^/admin/clients/\{id\}", {"path.id": "client_ids"}),
    (r"^/admin/api-clients/\{id\}", {"path.id": "api_client_ids"}),
    (r"^/admin/organizations/\{id\}", {"path.id": "organization_ids", "path.user_id": "user_ids"}),
    (r"^/users/me/api-keys/\{id\}", {"path.id": "api_key_ids"}),
    (r"^/internal/permissions/\{sub\}", {"path.sub": "subs"}),
    (r"^/admin/permissions/", {"body.sub": "subs", "body.scope_id": "organization_ids"}),
]
for name, values in dictionaries.items():
    print(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
for regex, parameters in bindings:
    print(f"[[operations]]\ninclude-path-regex = {json.dumps(regex)}")
    print("parameters = { " + ", ".join(
        f'{json.dumps(key)} = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in parameters.items()
    ) + " }\n")
PY

# One schemathesis run: $1 names it, the rest are extra options. Its JUnit report is summed up below.
run() {
  local name=$1 authenticated=0
  shift
  [ "$name" = authenticated ] && authenticated=1
  echo "== schemathesis ($name)"
  # From the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
  (cd "$tmp" && SCHEMATHESIS_HOOKS="$root/$here/hooks.py" ST_AUTHENTICATED="$authenticated" \
    "$venv/bin/st" --config-file "$tmp/schemathesis.toml" \
    run "$OXIDP_ISSUER/openapi.json" \
    --url "$OXIDP_ISSUER/api/v1" \
    --checks "$checks" \
    --phases examples,coverage,fuzzing \
    --max-examples "$max_examples" \
    --max-time "$max_time" \
    --seed 20260801 \
    --workers 2 \
    --request-timeout 10 \
    --no-color \
    --report "junit${ST_HAR:+,har}" --report-junit-path "$tmp/$name.xml" --report-har-path "$root/target/schemathesis/$name.har" \
    "$@" >"$tmp/$name.out" 2>&1) || true
  # The whole output (failures with reproducible curl commands) stays in target/schemathesis/.
  mkdir -p "$root/target/schemathesis"
  cp "$tmp/$name.out" "$root/target/schemathesis/$name.out"
  grep -E '^_{3,} .* _{3,}$|^- ST[0-9]+|^    Received:|^\[[0-9]{3}\]' "$tmp/$name.out" | head -n 60 || true
  echo "(full output: target/schemathesis/$name.out)"
}
start=$SECONDS
mkdir -p "$root/target/schemathesis"
run anonymous
run authenticated -H "Authorization: Bearer $token" -H "X-Internal-Secret: $internal_secret"

# One result per operation and run: passed when it had no failure and no error.
summary=$("$venv/bin/python" - "$tmp/anonymous.xml" "$tmp/authenticated.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
passed = failed = 0
for path in sys.argv[1:]:
    try:
        cases = ET.parse(path).getroot().iter("testcase")
    except (OSError, ET.ParseError) as error:
        print(f"schemathesis: no report at {path}: {error}", file=sys.stderr)
        failed += 1
        continue
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            print(f"  failed: {case.get('name')} ({path.rsplit('/', 1)[-1][:-4]})", file=sys.stderr)
        else:
            passed += 1
print(f"schemathesis: {passed} passed, {failed} failed")
PY
)
status=0
[[ "$summary" =~ ,\ 0\ failed$ ]] || status=1
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis: the server died during the run" >&2
  status=1
fi
if grep -q ' ERROR ' "$tmp/server.log"; then
  echo "--- errors the server logged:" >&2
  grep ' ERROR ' "$tmp/server.log" | head -n 20 >&2
fi
[ "$status" -eq 0 ] || server_log
echo "schemathesis: both runs took $((SECONDS - start)) s"
cleanup
echo "$summary"
[ "$status" -eq 0 ] || exit 1
