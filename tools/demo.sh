#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: a simulated node (bb-devnode) and
# blockbuster-agent polling it, with the web dashboard. Ctrl-C stops both.
#
#   tools/demo.sh [--profile spec|theblock]
#
# Ports: the guide's (node 9933, API 5000, web 4173); override with THEBLOCK_RPC_URL's port via
# BB_DEMO_NODE_PORT, BLOCK_BUSTER_HTTP_PORT and BLOCK_BUSTER_WEB_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=spec
while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs spec or theblock}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
case "$profile" in spec|theblock) ;; *) echo "demo.sh: --profile is spec or theblock" >&2; exit 2 ;; esac

tools/setup.sh
tools/build.sh
build="${BB_BUILD_DIR:-build}"
node_port="${BB_DEMO_NODE_PORT:-9933}"
http_port="${BLOCK_BUSTER_HTTP_PORT:-5000}"
web_port="${BLOCK_BUSTER_WEB_PORT:-4173}"
state="$(mktemp -d)"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT INT TERM

"$build/bin/bb-devnode" --listen "127.0.0.1:$node_port" --profile "$profile" > "$state/node.out" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$state/node.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$state/node.out" || { echo "demo: bb-devnode did not start (port $node_port busy?)" >&2; exit 1; }

THEBLOCK_RPC_URL="http://127.0.0.1:$node_port" \
BLOCK_BUSTER_HTTP_HOST="${BLOCK_BUSTER_HTTP_HOST:-127.0.0.1}" BLOCK_BUSTER_HTTP_PORT="$http_port" \
BLOCK_BUSTER_WEB_HOST="${BLOCK_BUSTER_WEB_HOST:-127.0.0.1}" BLOCK_BUSTER_WEB_PORT="$web_port" \
BLOCK_BUSTER_WS_HOST="${BLOCK_BUSTER_WS_HOST:-127.0.0.1}" \
HOME="$state" "$build/bin/blockbuster-agent" > "$state/agent.out" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$state/agent.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$state/agent.out" || { echo "demo: blockbuster-agent did not start" >&2; exit 1; }

cat <<MSG

Block Buster is running against a simulated node (profile: $profile).

  Dashboard:  http://localhost:$web_port/#/theblock
  API:        http://localhost:$http_port/theblock/network/metrics
              http://localhost:$http_port/theblock/markets/health
              http://localhost:$http_port/theblock/receipts?limit=10
              http://localhost:$http_port/health
  Metrics:    http://localhost:$http_port/metrics
  Node:       http://127.0.0.1:$node_port  (bb-devnode --help for its faults)

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "demo: a process exited; stopping" >&2
