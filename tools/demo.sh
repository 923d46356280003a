#!/usr/bin/env bash
# The demo: a simulated node (bb-devnode) and blockbuster-agent polling it, with the web
# dashboard. `tools/demo.sh --help` says what it does and which variables move its ports.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
Usage: tools/demo.sh [--profile spec|theblock]

Installs what is missing (Debian packages), builds what the demo runs (the agent, its plugins
and bb-devnode; no tests) in its own build folder, then runs a simulated node and
blockbuster-agent against it, with the web dashboard, until Ctrl-C.

  --profile spec      the node as the guide describes it (default)
  --profile theblock  the node as the real node of The Block behaves

Ports (the guide's defaults; set a variable to move one):
  BB_DEMO_NODE_PORT             9933  the simulated node's JSON-RPC
  BLOCK_BUSTER_HTTP_PORT        5000  the REST API and /metrics
  BLOCK_BUSTER_WS_PORT          5001  the WebSocket stream
  BLOCK_BUSTER_FEATURE_WS_PORT  5002  the feature stream
  BLOCK_BUSTER_WEB_PORT         4173  the web dashboard
Hosts: BLOCK_BUSTER_HTTP_HOST, BLOCK_BUSTER_WS_HOST, BLOCK_BUSTER_WEB_HOST (default 127.0.0.1).
Build folder: BB_DEMO_BUILD_DIR (default build-demo). The agent reads etc/config.yaml of this
tree and nothing else (no ~/.block-buster or /etc/block-buster file).

Try a fault while it runs: take the node down for 30 s and watch the dashboard show it,
  curl -X POST http://127.0.0.1:9933/_devnode/faults -d '{"down_seconds":30}'
or stop the node outright (the demo keeps running and shows the outage). Other faults (latency,
errors, garbage, a ban): bb-devnode --help and tools/devnode/README.md.
USAGE
}

profile=spec
while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs spec or theblock}"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in spec|theblock) ;; *) echo "demo.sh: --profile is spec or theblock" >&2; exit 2 ;; esac

node_port="${BB_DEMO_NODE_PORT:-9933}"
http_port="${BLOCK_BUSTER_HTTP_PORT:-5000}"
ws_port="${BLOCK_BUSTER_WS_PORT:-5001}"
feature_port="${BLOCK_BUSTER_FEATURE_WS_PORT:-5002}"
web_port="${BLOCK_BUSTER_WEB_PORT:-4173}"
build="${BB_DEMO_BUILD_DIR:-build-demo}"

tools/setup.sh
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBB_BUILD_TESTS=OFF >/dev/null
fi
echo "demo: building the agent, its plugins and bb-devnode in $build"
cmake --build "$build" -j"$(nproc)" --target blockbuster-agent bb-plugin-runner bb_tls \
  bb-devnode bb_network bb_compute bb_storage bb_energy bb_ads bb_receipts >/dev/null

state="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$build/bin/bb-devnode" --listen "127.0.0.1:$node_port" --profile "$profile" > "$state/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
for _ in $(seq 100); do grep -q ready "$state/node.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$state/node.log" || {
  echo "demo: bb-devnode did not start: $(cat "$state/node.log")" >&2
  echo "demo: move it with BB_DEMO_NODE_PORT=<free port>" >&2
  exit 1
}

THEBLOCK_RPC_URL="http://127.0.0.1:$node_port" \
BLOCK_BUSTER_HTTP_HOST="${BLOCK_BUSTER_HTTP_HOST:-127.0.0.1}" BLOCK_BUSTER_HTTP_PORT="$http_port" \
BLOCK_BUSTER_WS_HOST="${BLOCK_BUSTER_WS_HOST:-127.0.0.1}" BLOCK_BUSTER_WS_PORT="$ws_port" \
BLOCK_BUSTER_FEATURE_WS_PORT="$feature_port" \
BLOCK_BUSTER_WEB_HOST="${BLOCK_BUSTER_WEB_HOST:-127.0.0.1}" BLOCK_BUSTER_WEB_PORT="$web_port" \
HOME="$state" "$build/bin/blockbuster-agent" --config "$PWD/etc/config.yaml" \
  > "$state/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
for _ in $(seq 100); do grep -q ready "$state/agent.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$state/agent.log" || {
  echo "demo: blockbuster-agent did not start:" >&2
  cat "$state/agent.log" >&2
  exit 1
}

cat <<MSG

Block Buster is running against a simulated node (profile: $profile).

  Dashboard:  http://localhost:$web_port/#/theblock
  API:        http://localhost:$http_port/theblock/network/metrics
              http://localhost:$http_port/theblock/markets/health
              http://localhost:$http_port/theblock/receipts?limit=10
              http://localhost:$http_port/health
  Metrics:    http://localhost:$http_port/metrics
  Streams:    ws://localhost:$ws_port/  (features: ws://localhost:$feature_port/)
  Node:       http://127.0.0.1:$node_port  (pid $node_pid)
  Logs:       $state/agent.log, $state/node.log

Try a fault: the node down for 30 s, and the dashboard showing it:
  curl -X POST http://127.0.0.1:$node_port/_devnode/faults -d '{"down_seconds":30}'

Press Ctrl-C to stop.
MSG

# The demo lives as long as the agent: a node that stops is an outage to watch, not an end.
while kill -0 "$agent_pid" 2>/dev/null; do
  if [ -n "$node_pid" ] && ! kill -0 "$node_pid" 2>/dev/null; then
    echo "demo: the simulated node stopped; the agent keeps running and the dashboard shows the" \
      "outage (Ctrl-C to end the demo)" >&2
    node_pid=""
  fi
  sleep 1
done
status=0
wait "$agent_pid" || status=$?
# Ctrl-C reaches the agent too, which then stops cleanly (0): nothing to report.
[ "$status" = 0 ] && exit 0
echo "demo: blockbuster-agent exited (status $status); stopping. Its log:" >&2
tail -20 "$state/agent.log" >&2
exit 1
