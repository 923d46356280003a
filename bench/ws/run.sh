#!/usr/bin/env bash
# WebSocket fan-out benchmark: N clients on the dashboard stream of the real agent, polling the
# simulated node (bb-devnode) whose chain moves every --block-ms. Prints the delivery latency
# (from the agent's snapshot change, i.e. the message's timestamp, to the client) and the agent's
# RSS under load. Not a test; see docs/websocket.md for figures.
#
#   bench/ws/run.sh [BUILD_DIR]
#
# Clients connect at most RAMP (200) handshakes at a time; latency counts once all are upgraded.
# Environment: CLIENTS (1000), SECONDS_ (30), BLOCK_MS (1000), PATH_ (/theblock/ws), RAMP (200),
#   MAIN_PORT=1 (connect to the main HTTP port instead of the WS port), AGENT (another
#   blockbuster-agent binary, e.g. a RelWithDebInfo build; it still loads BUILD_DIR's plugins),
#   AGENT_LOG (copy the agent's stderr there), BENCH (another bb-ws-bench binary), DEFLATE (1:
#   the clients offer permessage-deflate as browsers do and inflate what the agent compresses,
#   each distinct compressed message once; 0: they offer no extension). The agent runs at log
#   level debug: its "fan-out #N ... ms after the change" lines give the agent-side
#   delay (change -> the last client's bytes handed to its socket, on every loop), printed at
#   the end next to the client-side figures. The client also prints the agent's and its own
#   CPU time per delivered message over the measured window (the figure load moves least).
#
# BUILD_DIR (default: build) must hold bin/blockbuster-agent, bin/bb-devnode and the plugins
# (cmake --build BUILD_DIR --target blockbuster-agent bb-devnode bb_network bb_compute bb_storage
#  bb_energy bb_ads bb_receipts). The client is built here with g++ unless BUILD_DIR/bin/bb-ws-bench
# exists (cmake -DBB_BUILD_BENCH=ON ... --target bb-ws-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
clients=${CLIENTS:-1000}
seconds=${SECONDS_:-30}
block_ms=${BLOCK_MS:-1000}
ws_path=${PATH_:-/theblock/ws}
agent_bin=${AGENT:-$build/bin/blockbuster-agent}

# Each client is a socket on both sides.
ulimit -n "$(( clients * 2 + 1024 > $(ulimit -Hn) ? $(ulimit -Hn) : clients * 2 + 1024 ))"

bench=${BENCH:-$build/bin/bb-ws-bench}
if [[ ! -x $bench ]]; then
  bench=$(mktemp -d)/bb-ws-bench
  g++ -std=c++17 -O2 -I "$src/agent" "$src/bench/ws/ws_bench.cc" "$src/agent/ws/frame.cc" "$src/agent/util/utf8.cc" -o "$bench" -lz
fi

work=$(mktemp -d)
cleanup() {
  [[ -n ${agent_pid:-} ]] && kill "$agent_pid" 2>/dev/null || true
  [[ -n ${node_pid:-} ]] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$build/bin/bb-devnode" --listen 127.0.0.1:0 --profile spec --block-ms "$block_ms" \
  >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 100); do grep -q "bb-devnode ready" "$work/node.out" && break; sleep 0.1; done
rpc=$(grep -o 'rpc=[0-9.:]*' "$work/node.out" | cut -d= -f2)

cat >"$work/agent.yaml" <<YAML
plugins:
  network:
    interval_ms: 500
  receipts:
    interval_ms: 1000
YAML
HOME=$work THEBLOCK_RPC_URL=http://$rpc BLOCK_BUSTER_HTTP_HOST=127.0.0.1 BLOCK_BUSTER_HTTP_PORT=0 \
  BLOCK_BUSTER_WS_HOST=127.0.0.1 BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
  BLOCK_BUSTER_WEB_PORT=-1 BLOCK_BUSTER_LOG_LEVEL=debug \
  "$agent_bin" --config "$work/agent.yaml" --plugin-dir "$build/lib/blockbuster/plugins" >"$work/agent.out" 2>"$work/agent.err" &
agent_pid=$!
for _ in $(seq 100); do grep -q "blockbuster-agent ready" "$work/agent.out" && break; sleep 0.1; done
ready=$(grep "blockbuster-agent ready" "$work/agent.out")
ws_port=$(sed -n 's/.* ws=[^ ]*:\([0-9]*\).*/\1/p' <<<"$ready")
http_port=$(sed -n 's/.* http=[^ ]*:\([0-9]*\).*/\1/p' <<<"$ready")
[[ ${MAIN_PORT:-0} == 1 ]] && ws_port=$http_port
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$agent_pid/status"; }
sleep 3  # let the plugins publish once
echo "agent $ready ($agent_bin)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "agent RSS before clients: $(rss)"
echo "bench: $clients clients on 127.0.0.1:$ws_port$ws_path for ${seconds}s, block every ${block_ms} ms"
deflate=()
[[ ${DEFLATE:-1} != 0 ]] && deflate=(--deflate)
${BENCH_WRAP:-} "$bench" --port "$ws_port" --path "$ws_path" --clients "$clients" --seconds "$seconds" --ramp "${RAMP:-200}" \
  --agent-pid "$agent_pid" "${deflate[@]}" &
bench_pid=$!
sleep "$(( seconds > 4 ? seconds - 2 : 2 ))"
echo "agent RSS with $clients clients: $(rss)"
echo "agent threads: $(ls /proc/$agent_pid/task | wc -l)"
status=0
wait "$bench_pid" || status=$?
curl -s "http://127.0.0.1:$http_port/metrics" | grep '^blockbuster_ws_' || true
# Only fan-outs to every client; agents before issue 17's fan-out work also logged snapshot-only
# refreshes, which carry no change time (a figure of about 1.8e12 ms): left out.
grep -o "to $clients client(s) handed to the sockets [0-9]* ms" "$work/agent.err" |
  awk '$(NF-1) < 1e9 {print $(NF-1)}' | sort -n |
  awk '{v[NR]=$1} END {if (NR) printf "agent_side_fanout_ms (change -> last client'"'"'s socket): fan-outs=%d p50=%d p99=%d max=%d\n", NR, v[int(NR*0.5+0.5)], v[int(NR*0.99+0.5)], v[NR]}'
[[ -n ${AGENT_LOG:-} ]] && cp "$work/agent.err" "$AGENT_LOG"
exit "$status"
