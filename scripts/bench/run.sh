#!/usr/bin/env bash
# Issue #7's benchmark, one command: builds the release server and the load generator
# (benches/load), starts oxidp on a fresh SQLite database (and PostgreSQL when
# TEST_POSTGRES_URL is set), runs every scenario, measures the RSA-2048 signing limit with
# `openssl speed` and panva's oidc-provider under the same load, and writes the table into
# docs/PERFORMANCE.md and the chart docs/performance.svg.
#
#   scripts/bench/run.sh                      # full run (~4 min after the build; ~5 with PostgreSQL)
#   scripts/bench/run.sh --smoke              # 1 s per scenario, 4 connections, SQLite only,
#                                             # no peer, no openssl, docs untouched; fails on errors
#   scripts/bench/run.sh --profile code_flow  # oxidp on SQLite only, one scenario under `perf record`;
#                                             # writes target/bench/profile-SCENARIO.txt
#   options: --duration S --connections N --scenario a,b --no-peer --no-postgres --keep
#
# Everything runs on loopback; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

SMOKE=0
DURATION=10
WARMUP=1
CONNECTIONS=16
SCENARIO=all
PEER=1
OPENSSL=1
POSTGRES=1
KEEP=0
PROFILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; DURATION=1; WARMUP=0; CONNECTIONS=4; PEER=0; OPENSSL=0; POSTGRES=0 ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --scenario) SCENARIO=$2; shift ;;
    --no-peer) PEER=0 ;;
    --no-openssl) OPENSSL=0 ;;
    --no-postgres) POSTGRES=0 ;;
    --keep) KEEP=1 ;;
    --profile) PROFILE=$2; SCENARIO=$2; PEER=0; OPENSSL=0; POSTGRES=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n== %s\n' "$*"; }

say "build (release server, load generator)"
cargo build --release --locked --bin oxidp
LOAD=$(cargo bench --locked --bench load --no-run --message-format=json 2>/dev/null \
  | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[ -x "$LOAD" ] || { echo "run.sh: could not find the load generator binary" >&2; exit 1; }
OXIDP=$ROOT/target/release/oxidp

WORK=$(mktemp -d /tmp/oxidp-bench.XXXXXX)
PIDS=()
PG_DROP=""
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DROP" ]; then
    psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS $PG_DROP" >/dev/null 2>&1 || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

wait_http() { # URL PID LOG
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then echo "server exited; log:" >&2; tail -n 30 "$3" >&2; return 1; fi
    sleep 0.1
  done
  echo "run.sh: $1 did not answer in 10 s" >&2
  return 1
}

RESOURCE=https://api.bench.test
REDIRECT=http://127.0.0.1:9/cb
EMAIL=bench@example.com
PASSWORD=load-test-pw-0123456789
LOAD_ARGS=(--duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS"
  --redirect-uri "$REDIRECT" --email "$EMAIL" --password "$PASSWORD")

declare -A BASE PID_OF ARGS_OF
LABELS=()

start_oxidp() { # LABEL DATABASE_URL
  local label=$1 database_url=$2 port client client_id client_secret pid
  port=$("$LOAD" free-port)
  export OXIDP_DATABASE_URL=$database_url OXIDP_KEYS_DIR=$WORK/keys-$label \
    OXIDP_ISSUER=http://127.0.0.1:$port OXIDP_BIND=127.0.0.1:$port
  mkdir -p "$OXIDP_KEYS_DIR"
  "$OXIDP" migrate
  "$OXIDP" user create --email "$EMAIL" --password "$PASSWORD" >/dev/null
  client=$("$OXIDP" client create --name bench --redirect-uri "$REDIRECT" --first-party \
    --grant-types authorization_code,refresh_token,client_credentials \
    --scopes "openid profile email offline_access api" --resource "$RESOURCE")
  client_id=$(printf '%s' "$client" | grep -o '"client_id":"[^"]*"' | cut -d'"' -f4)
  client_secret=$(printf '%s' "$client" | grep -o '"client_secret":"[^"]*"' | cut -d'"' -f4)
  "$OXIDP" serve >"$WORK/$label.out" 2>"$WORK/$label.log" &
  pid=$!
  PIDS+=("$pid")
  unset OXIDP_DATABASE_URL OXIDP_KEYS_DIR OXIDP_ISSUER OXIDP_BIND
  wait_http "http://127.0.0.1:$port/readyz" "$pid" "$WORK/$label.log"
  echo "oxidp-$label: pid $pid on 127.0.0.1:$port (log level info, log in $WORK/$label.log)"
  LABELS+=("$label")
  BASE[$label]=http://127.0.0.1:$port
  PID_OF[$label]=$pid
  # `=` keeps a secret that starts with "-" (base64url) from reading as an option.
  ARGS_OF[$label]="--label oxidp-$label --client-id=$client_id --client-secret=$client_secret --resource $RESOURCE"
}

start_peer() {
  local port pid secret=bench-peer-secret-0123456789abcdef
  (cd scripts/bench/peer && { [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --silent; })
  port=$("$LOAD" free-port)
  NODE_ENV=production PORT=$port CLIENT_ID=bench CLIENT_SECRET=$secret RESOURCE=$RESOURCE \
    REDIRECT_URI=$REDIRECT node scripts/bench/peer/peer.mjs >"$WORK/peer.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/.well-known/openid-configuration" "$pid" "$WORK/peer.log"
  echo "oidc-provider: pid $pid on 127.0.0.1:$port (one node process, in-memory adapter)"
  LABELS+=(peer)
  BASE[peer]=http://127.0.0.1:$port
  PID_OF[peer]=$pid
  # The peer refuses to introspect JWTs (unsupported_token_type): it introspects its opaque token.
  ARGS_OF[peer]="--label oidc-provider --client-id bench --client-secret $secret --resource $RESOURCE --flow-resource $RESOURCE --introspect-opaque"
}

rsa_sign() { # single-core RSA-2048 signs per second
  openssl speed -seconds 3 -multi 1 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }' | tail -n 1
}

ec_ed_sign() { # single-core ECDSA P-256 and Ed25519 signs per second: "ES256 EDDSA"
  openssl speed -seconds 2 -multi 1 ecdsap256 ed25519 2>/dev/null \
    | awk '/\(nistp256\)/ { es = $(NF-1) } /\(Ed25519\)/ { ed = $(NF-1) } END { print es, ed }'
}

RSA1="" RSA2=""
if [ "$OPENSSL" = 1 ]; then
  say "openssl speed -seconds 3 -multi 1 rsa2048 (before)"
  RSA1=$(rsa_sign); echo "sign/s: $RSA1"
fi

say "start servers"
start_oxidp sqlite "sqlite://$WORK/oxidp.db?mode=rwc"
if [ "$PEER" = 1 ]; then start_peer; fi
if [ "$POSTGRES" = 1 ] && [ -n "${TEST_POSTGRES_URL:-}" ]; then
  PG_ADMIN_URL=$TEST_POSTGRES_URL
  PG_DROP=oxidp_bench_$(date +%s)_$$
  psql "$PG_ADMIN_URL" -q -c "CREATE DATABASE $PG_DROP" >/dev/null
  start_oxidp postgres "${PG_ADMIN_URL%/*}/$PG_DROP"
fi
sleep 1

# Scenario by scenario, every server back to back, so that the machine's background load
# drifts as little as possible between the numbers a ratio compares.
if [ "$SCENARIO" = all ]; then
  SCENARIOS=(client_credentials introspection jwks discovery code_flow refresh)
else
  IFS=, read -r -a SCENARIOS <<<"$SCENARIO"
fi
profile_start() { # PID: sample the server's stacks (software clock: works without hardware counters)
  PERF_PID=""
  [ -n "$PROFILE" ] || return 0
  command -v perf >/dev/null || { echo "run.sh: --profile needs perf (apt-get install linux-perf)" >&2; exit 1; }
  perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -o "$WORK/perf.data" -p "$1" 2>"$WORK/perf.err" &
  PERF_PID=$!
  sleep 0.5
}

profile_stop() { # SCENARIO
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  local out=target/bench/profile-$1.txt
  mkdir -p target/bench
  {
    echo "# perf record -e cpu-clock --call-graph dwarf -p <oxidp>, scenario $1 (the per-connection setup, e.g. logins, included)"
    echo "# self time by library, then by symbol"
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -n 8
    echo
    perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep '%' | head -n 40
    echo
    echo "# inclusive time of selected subsystems"
    perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' \
      | grep -E 'flume|sqlx_core::pool|tracing_core::event::Event::dispatch|new_v4|PrometheusRecorder|Signer|RsaJws|josekit|argon2|sendto|recvfrom|epoll_wait|fdatasync|fsync' \
      | head -n 30
  } | sed -e 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' >"$out" || true
  echo "profile: $out"
  head -n 60 "$out"
}

for scenario in "${SCENARIOS[@]}"; do
  say "$scenario"
  profile_start "${PID_OF[sqlite]}"
  for label in "${LABELS[@]}"; do
    # shellcheck disable=SC2086 # ARGS_OF holds words without spaces
    "$LOAD" --base "${BASE[$label]}" --pid "${PID_OF[$label]}" ${ARGS_OF[$label]} "${LOAD_ARGS[@]}" \
      --scenario "$scenario" --json "$WORK/$label-$scenario.json"
  done
  profile_stop "$scenario"
done
for label in "${LABELS[@]}"; do
  kill "${PID_OF[$label]}" 2>/dev/null || true
done

if [ "$OPENSSL" = 1 ]; then
  say "openssl speed -seconds 3 -multi 1 rsa2048 (after)"
  RSA2=$(rsa_sign); echo "sign/s: $RSA2"
fi

SIGNING=""
if [ -z "$PROFILE" ] && [ "$SMOKE" != 1 ]; then
  say "signing algorithms (oxidp key manager, one thread; openssl speed ecdsap256 ed25519)"
  "$LOAD" sign-rates --seconds 2 --json "$WORK/signing.json" && SIGNING="$WORK/signing.json"
  if [ "$OPENSSL" = 1 ]; then
    read -r ES_LIMIT ED_LIMIT < <(ec_ed_sign); echo "openssl sign/s: ES256 ${ES_LIMIT:-–}, EdDSA ${ED_LIMIT:-–}"
  fi
fi

mkdir -p target/bench
cp "$WORK"/*.json target/bench/ 2>/dev/null || true

if [ -n "$PROFILE" ]; then exit 0; fi

if [ "$SMOKE" = 1 ]; then
  # Every scenario must have run without errors.
  if grep -l '"failed"' "$WORK"/sqlite-*.json >/dev/null 2>&1 || grep -Eq '"errors": [1-9]' "$WORK"/sqlite-*.json \
    || grep -Eq '"ops": 0,' "$WORK"/sqlite-*.json; then
    echo "smoke: FAILED (see target/bench/sqlite-*.json)" >&2
    exit 1
  fi
  echo "smoke: ok"
  exit 0
fi

# The limit: the better of the two measurements (the conservative choice for the targets).
RSA=$(printf '%s\n%s\n' "$RSA1" "$RSA2" | awk 'NF && $1 > m { m = $1 } END { if (m) print m }')
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
MACHINE="$(nproc) cores ($CPU), $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -sr)"
REPORT=(report --machine "$MACHINE" --date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  --command "scripts/bench/run.sh" --out docs/PERFORMANCE.md --svg docs/performance.svg --readme README.md
  --peer-name "oidc-provider $(node -p 'require("./scripts/bench/peer/node_modules/oidc-provider/package.json").version' 2>/dev/null || true)")
for scenario in "${SCENARIOS[@]}"; do
  REPORT+=(--sqlite "$WORK/sqlite-$scenario.json")
  [ -f "$WORK/postgres-$scenario.json" ] && REPORT+=(--postgres "$WORK/postgres-$scenario.json")
  [ -f "$WORK/peer-$scenario.json" ] && REPORT+=(--peer "$WORK/peer-$scenario.json")
done
[ -n "$RSA" ] && REPORT+=(--rsa-sign "$RSA")
[ -n "$SIGNING" ] && REPORT+=(--signing "$SIGNING")
[ -n "${ES_LIMIT:-}" ] && REPORT+=(--openssl-es256 "$ES_LIMIT")
[ -n "${ED_LIMIT:-}" ] && REPORT+=(--openssl-eddsa "$ED_LIMIT")
say "report (openssl sign/s: before ${RSA1:-–}, after ${RSA2:-–})"
mkdir -p docs
"$LOAD" "${REPORT[@]}"
