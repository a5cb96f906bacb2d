#!/usr/bin/env bash
# Fuzzing (issue #8): runs each cargo-fuzz target under fuzz/ for FUZZ_SECONDS seconds
# (default 20) and prints one line per target, then "fuzz: N passed, M failed"; exits 1 when a
# target failed. `scripts/fuzz.sh params scope` runs only those targets. scripts/test (CI) runs
# it as a smoke test.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer); on this stable toolchain
# RUSTC_BOOTSTRAP=1 allows them. cargo-fuzz itself is installed from crates.io when missing.
# The committed seeds in fuzz/seeds/<target>/ are read-only inputs; what libFuzzer learns goes
# to fuzz/corpus/<target>/ (ignored by git), a crash to fuzz/artifacts/<target>/ — turn each
# crash into a regression test, then fix it.
#
# The instrumented build goes to fuzz/target/ inside the clone (FUZZ_TARGET_DIR elsewhere).
# Measured cold on 2 shared cores (load 3-4): with AddressSanitizer the build took 13.5 min (15
# min of CPU); without a sanitizer, and with SQLite's C at -O1 (fuzz/Cargo.toml), 8 min (about 9
# min of CPU), and the targets then run 2-8 times as many inputs in the same time. oxidp's
# library has no unsafe code, so AddressSanitizer finds little there, while panics, overflow
# checks (debug assertions stay on) and the targets' own assertions work without it: the smoke
# run uses none (FUZZ_SANITIZER=address for a long run). 16 codegen units (FUZZ_CODEGEN_UNITS)
# cost more CPU than they saved on two cores; cargo-fuzz's default is one.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
all=(params redirect_uri scope pkce jwt_hint cookie_header api_key_format basic_auth authorize_request token_request)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
# The same options for build and run, or `cargo fuzz run` rebuilds everything.
build_args=(--sanitizer "${FUZZ_SANITIZER:-none}")
if [ -n "${FUZZ_CODEGEN_UNITS:-}" ]; then build_args+=(--codegen-units "$FUZZ_CODEGEN_UNITS"); fi
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then build_args+=(--target-dir "$FUZZ_TARGET_DIR"); fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== cargo fuzz build (all targets: ${build_args[*]})"
started=$SECONDS
if ! cargo fuzz build "${build_args[@]}" >"$logs/build.log" 2>&1; then
  tail -n 40 "$logs/build.log"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi
echo "fuzz: build took $((SECONDS - started)) s"

passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
  log="$logs/$target.log"
  started=$SECONDS
  # -timeout: one input running longer than 10 s is a hang; -max_len bounds input size. The
  # targets driving a whole server state keep pools and caches alive between inputs: LeakSanitizer's
  # check after each input would only slow them down (it finds nothing to report), so it is off.
  case "$target" in
    params | redirect_uri | scope | pkce) leaks=1 ;;
    *) leaks=0 ;;
  esac
  # The outer timeout is a backstop: libFuzzer checks -max_total_time between inputs only.
  if timeout "$((seconds * 2 + 120))" cargo fuzz run "${build_args[@]}" "$target" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" -- -max_total_time="$seconds" -timeout=10 -max_len=4096 \
    -detect_leaks="$leaks" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    echo "fuzz: $target ok: $runs executions in $((SECONDS - started)) s, corpus $corpus"
    passed=$((passed + 1))
  else
    echo "fuzz: $target FAILED after $((SECONDS - started)) s:"
    grep -E 'panicked|ERROR: |SUMMARY|Test unit written|Running: ' "$log" | head -n 20 || tail -n 30 "$log"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
