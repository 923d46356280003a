#!/usr/bin/env bash
# Installs what is missing, builds, checks the C++ (tools/lint.sh: clang-format on every file,
# clang-tidy on the changed ones), and runs every test: unit, integration against real processes,
# browser, Prometheus, packaging (ctest), then a bounded fuzz run of every fuzz target.
#   tools/test.sh [ctest arguments...]      e.g. tools/test.sh -L integration (no lint, no fuzz)
# BB_FUZZ_SECONDS (default 20: eight targets, under 3 minutes) bounds the fuzz run per target; 0 skips it.
# BB_LINT=0 skips the lint.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
tools/build.sh
build="${BB_BUILD_DIR:-build}"
status=0
if [ "$#" -eq 0 ] && [ "${BB_LINT:-1}" != 0 ]; then
  tools/lint.sh || status=1
fi
# Two at a time: the machine this is sized for has 2 cores, and integration tests start
# processes of their own.
ctest --test-dir "$build" --output-on-failure -j2 "$@" || status=$?
fuzz_seconds="${BB_FUZZ_SECONDS:-20}"
if [ "$#" -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
  tools/fuzz.sh "$fuzz_seconds" || status=1
fi
exit "$status"
