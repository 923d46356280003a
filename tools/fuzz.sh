#!/usr/bin/env bash
# Builds the fuzz targets with clang + libFuzzer (build-fuzz/) and runs each for a bounded time.
#   tools/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# New inputs that found coverage go to build-fuzz/corpus/<target>; a crash stops with the input
# saved as build-fuzz/crash-*, and the exit status is non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${BB_FUZZ_BUILD_DIR:-build-fuzz}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DBB_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
targets=(query config json plugin_logic http_head ws_frames rpc_envelope yaml_alias)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  echo "== fuzz_$t for ${seconds}s"
  # Seeds: the committed corpus; findings go to the build's corpus dir (first argument).
  if ! "$build/fuzz/fuzz_$t" "$build/corpus/$t" "tests/fuzz/corpus/$t" \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/" -print_final_stats=1 2>"$build/fuzz_$t.log"; then
    echo "fuzz_$t FAILED: see $build/fuzz_$t.log and $build/crash-*" >&2
    tail -30 "$build/fuzz_$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/fuzz_$t.log" || true
  fi
done
exit "$status"
