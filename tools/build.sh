#!/usr/bin/env bash
# Configures and builds Block Buster into build/ (or $BB_BUILD_DIR). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BB_BUILD_DIR:-build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
elif [ "$#" -gt 0 ]; then
  cmake -S . -B "$build" "$@" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
