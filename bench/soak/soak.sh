#!/usr/bin/env bash
# Soak: wrk at 256 connections against the agent's REST endpoints (network metrics, markets
# health, receipts, /metrics, rotated by rotate.lua) while bb-devnode goes down every 30 s
# (its control endpoint's down window). Reports requests, failures (non-2xx/3xx and socket
# errors), p50/p99 latency, and the agent's RSS, threads and fds at start and end.
# Exits non-zero when a request failed or the agent's RSS grew more than 10 %.
# Not a test by itself; ctest runs it for 20 s as `soak_short` (label soak).
#
#   bench/soak/soak.sh [--seconds N] [--connections N] [--flap-every S] [--down-seconds S]
#                      [--bin-dir DIR] [--max-rss-growth PCT]
#
# DIR (default: build/bin) holds blockbuster-agent and bb-devnode, with the plugins in
# DIR/../lib/blockbuster/plugins. Everything listens on 127.0.0.1, on free ports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
seconds=600
connections=256
flap_every=30
down_seconds=5
bin_dir=$src/build/bin
max_rss_growth_pct=10

while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --flap-every) flap_every=$2; shift 2 ;;
    --down-seconds) down_seconds=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --max-rss-growth) max_rss_growth_pct=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
  esac
done
# A short run still flaps the node: at least twice.
if (( seconds < 3 * flap_every )); then
  flap_every=$(( seconds / 3 > 2 ? seconds / 3 : 2 ))
  (( down_seconds <= flap_every / 2 )) || down_seconds=$(( flap_every / 2 > 1 ? flap_every / 2 : 1 ))
fi
command -v wrk >/dev/null || { echo "soak.sh: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
for b in blockbuster-agent bb-devnode; do
  [[ -x $bin_dir/$b ]] || { echo "soak.sh: $bin_dir/$b not found; build it or pass --bin-dir" >&2; exit 2; }
done
# Each connection is a socket on both sides.
ulimit -n "$(( $(ulimit -Hn) < 4096 ? $(ulimit -Hn) : 4096 ))"

work=$(mktemp -d)
cleanup() {
  [[ -n ${flapper_pid:-} ]] && kill "$flapper_pid" 2>/dev/null || true
  [[ -n ${agent_pid:-} ]] && kill "$agent_pid" 2>/dev/null || true
  [[ -n ${node_pid:-} ]] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # wait_for FILE PATTERN
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "soak.sh: no '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$bin_dir/bb-devnode" --listen 127.0.0.1:0 --profile spec --block-ms 1000 \
  >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
wait_for "$work/node.out" "bb-devnode ready"
rpc=$(grep -o 'rpc=[0-9.:]*' "$work/node.out" | cut -d= -f2)

cat >"$work/agent.yaml" <<YAML
plugins:
  network:
    interval_ms: 1000
  receipts:
    interval_ms: 1000
YAML
HOME=$work THEBLOCK_RPC_URL=http://$rpc BLOCK_BUSTER_HTTP_HOST=127.0.0.1 BLOCK_BUSTER_HTTP_PORT=0 \
  BLOCK_BUSTER_WS_HOST=127.0.0.1 BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
  BLOCK_BUSTER_WEB_PORT=-1 BLOCK_BUSTER_LOG_LEVEL=warn \
  "$bin_dir/blockbuster-agent" --config "$work/agent.yaml" >"$work/agent.out" 2>"$work/agent.err" &
agent_pid=$!
wait_for "$work/agent.out" "blockbuster-agent ready"
port=$(sed -n 's/.* http=[^ ]*:\([0-9]*\).*/\1/p' "$work/agent.out" | head -1)
base=http://127.0.0.1:$port
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/theblock/receipts?limit=1" || true)
  [[ $code == 200 ]] && curl -sf -o /dev/null "$base/theblock/network/metrics" && break
  sleep 0.2
done

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status"; }
threads() { ls "/proc/$agent_pid/task" | wc -l; }
fds() { ls "/proc/$agent_pid/fd" | wc -l; }

# Warm-up: the first seconds at full concurrency grow the server's thread pool and buffers once;
# growth is measured from after it.
wrk -t2 -c"$connections" -d3s -s "$here/rotate.lua" "$base" >/dev/null 2>&1 || true
rss_start=$(rss_kb); threads_start=$(threads); fds_start=$(fds)

flapper() {
  while sleep "$flap_every"; do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d "{\"down_seconds\": $down_seconds}" "http://$rpc/_devnode/faults" || true
    echo "$(date +%s) node down for ${down_seconds}s" >>"$work/flaps"
  done
}
flapper &
flapper_pid=$!

echo "soak: ${seconds}s, $connections connections, node down ${down_seconds}s every ${flap_every}s"
wrk -t2 -c"$connections" -d"${seconds}s" --timeout 5s --latency -s "$here/rotate.lua" "$base" \
  >"$work/wrk.out" 2>&1 || true
kill "$flapper_pid" 2>/dev/null || true
wait "$flapper_pid" 2>/dev/null || true
flapper_pid=

alive=yes
kill -0 "$agent_pid" 2>/dev/null || alive=no
if [[ $alive == yes ]]; then
  rss_end=$(rss_kb); threads_end=$(threads); fds_end=$(fds)
else
  rss_end=0; threads_end=0; fds_end=0
fi
line=$(grep '^SOAK ' "$work/wrk.out" || true)
if [[ -z $line ]]; then
  echo "soak.sh: wrk gave no summary:" >&2; cat "$work/wrk.out" >&2; exit 1
fi
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
requests=$(val requests)
failed=$(( $(val non2xx) + $(val connect) + $(val read) + $(val write) + $(val timeout) ))
flaps=$(wc -l <"$work/flaps" 2>/dev/null || echo 0)
growth_pct=$(awk -v a="$rss_start" -v b="$rss_end" 'BEGIN { printf "%.1f", (b - a) * 100.0 / a }')

printf 'requests        %s (%s/s)\n' "$requests" "$(( requests / seconds ))"
printf 'failed          %s (non-2xx/3xx %s, connect %s, read %s, write %s, timeout %s)\n' \
  "$failed" "$(val non2xx)" "$(val connect)" "$(val read)" "$(val write)" "$(val timeout)"
printf 'latency         p50 %.2f ms, p99 %.2f ms, max %.2f ms\n' \
  "$(awk -v u="$(val p50_us)" 'BEGIN{print u/1000}')" \
  "$(awk -v u="$(val p99_us)" 'BEGIN{print u/1000}')" \
  "$(awk -v u="$(val max_us)" 'BEGIN{print u/1000}')"
printf 'node flaps      %s\n' "$flaps"
printf 'agent RSS       %s kB -> %s kB (%s %%)\n' "$rss_start" "$rss_end" "$growth_pct"
printf 'agent threads   %s -> %s\n' "$threads_start" "$threads_end"
printf 'agent fds       %s -> %s\n' "$fds_start" "$fds_end"
printf 'agent alive     %s\n' "$alive"

status=0
[[ $alive == yes ]] || { echo "FAIL: the agent exited" >&2; cat "$work/agent.err" >&2; status=1; }
(( failed == 0 )) || { echo "FAIL: $failed requests failed" >&2; status=1; }
(( requests > 0 )) || { echo "FAIL: no request completed" >&2; status=1; }
(( flaps > 0 )) || { echo "FAIL: the node never went down during the run" >&2; status=1; }
if awk -v g="$growth_pct" -v m="$max_rss_growth_pct" 'BEGIN { exit !(g > m) }'; then
  echo "FAIL: RSS grew ${growth_pct} % (limit ${max_rss_growth_pct} %)" >&2; status=1
fi
exit "$status"
