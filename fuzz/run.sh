#!/usr/bin/env bash
# Builds the fuzz targets and fuzzes each for RUNS executions (default 10^7).
#
#   fuzz/run.sh [RUNS] [TARGET...]        targets: scenario onnx_meta (default: both)
#
# Works on the stable toolchain: cargo-fuzz passes nightly flags (-Zsanitizer=address), which
# stable rustc accepts with RUSTC_BOOTSTRAP=1. Needs `cargo install cargo-fuzz`.
# Before fuzzing, each input under tests/data/fuzz/<target>/ is replayed once and reported.
# Fuzzing runs libFuzzer in fork mode with one worker and -ignore_crashes=1, so a crash is saved
# under fuzz/artifacts/<target>/ and the run goes on; set STOP_ON_CRASH=1 to stop at the first.
# CARGO_TARGET_DIR picks the build folder (default fuzz/target).
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
RUNS="${1:-10000000}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(scenario onnx_meta)
TARGET_DIR="${CARGO_TARGET_DIR:-$FUZZ_DIR/target}"

export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
NICE=(nice -n "${NICE_LEVEL:-19}")

max_len() {
  case "$1" in
    scenario) echo 4096 ;;
    *) echo 65536 ;;
  esac
}

cd "$ROOT"
for t in "${TARGETS[@]}"; do
  "${NICE[@]}" cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" "$t"
done

for t in "${TARGETS[@]}"; do
  bin="$TARGET_DIR/x86_64-unknown-linux-gnu/release/$t"
  echo "== $t: regression inputs"
  for f in "$ROOT"/tests/data/fuzz/"$t"/*; do
    [ -f "$f" ] || continue
    if "$bin" -runs=1 "$f" >/dev/null 2>&1; then echo "ok     ${f#"$ROOT"/}"; else echo "CRASH  ${f#"$ROOT"/}"; fi
  done

  echo "== $t: fuzzing for $RUNS executions"
  mkdir -p "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/artifacts/$t"
  mode=(-fork=1 -ignore_crashes=1)
  [ "${STOP_ON_CRASH:-0}" = 1 ] && mode=()
  "${NICE[@]}" "$bin" "${mode[@]}" \
    "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" \
    -runs="$RUNS" -max_len="$(max_len "$t")" -rss_limit_mb=4096 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$t/" || echo "$t: libFuzzer exited with $?"
done
ls -l "$FUZZ_DIR"/artifacts/*/ 2>/dev/null || true
