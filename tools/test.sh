#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration against real
# processes, browser, Prometheus). Exit status is ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
tools/build.sh
build="${BB_BUILD_DIR:-build}"
# Two at a time: the machine this is sized for has 2 cores, and integration tests start
# processes of their own.
ctest --test-dir "$build" --output-on-failure -j2 "$@"
