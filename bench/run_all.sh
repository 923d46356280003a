#!/usr/bin/env bash
# Runs every benchmark of bench/ in turn (about 12 minutes on 2 cores) and leaves the summaries
# in bench/results/*.md. BUILD_DIR (default build-bench) is a Release build configured with
# -DBB_BUILD_BENCH=ON holding the agent, its six plugins and bb-devnode (see bench/README.md).
# The WebSocket benchmark (bench/ws/run.sh) is run on its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
for b in micro startup nodecost freshness footprint rest; do
  echo "=== bench/$b" >&2
  "$here/$b/run.py" "$build"
done
