#!/usr/bin/env bash
# usage: run.sh SOURCE_DIR BUILD_DIR
# tools/demo.sh as a new user runs it: --help, then the demo itself with every port moved to a
# free one (the only change from what the user types), a stray config where the agent would
# look for one, the node stopped under it, and Ctrl-C. BB_DEMO_BUILD_DIR points the demo at the
# test build, whose targets are built already.
set -euo pipefail
src="$(cd "$1" && pwd)" build="$(cd "$2" && pwd)"
work="$(mktemp -d)"
demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill -TERM -- "-$demo_pid" 2>/dev/null || true
  # The demo's agent writes its state as it stops: wait for it before removing the folder.
  [ -n "$demo_pid" ] && wait "$demo_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo_test: FAIL: $*" >&2; [ -f "$work/demo.out" ] && cat "$work/demo.out" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== tools/demo.sh --help"
help="$(bash "$src/tools/demo.sh" --help)" || fail "--help exited non-zero"
grep -q '^#' <<<"$help" && fail "--help prints script comments: $help"
for v in BB_DEMO_NODE_PORT BLOCK_BUSTER_HTTP_PORT BLOCK_BUSTER_WS_PORT \
         BLOCK_BUSTER_FEATURE_WS_PORT BLOCK_BUSTER_WEB_PORT; do
  grep -q "$v" <<<"$help" || fail "--help does not name $v"
done
for p in 9933 5000 5001 5002 4173; do grep -qw "$p" <<<"$help" || fail "--help does not name $p"; done
grep -q '_devnode/faults' <<<"$help" || fail "--help names no fault to try"

echo "== the demo, ports moved"
node_port="$(free_port)" http_port="$(free_port)" ws_port="$(free_port)"
feature_port="$(free_port)" web_port="$(free_port)"
# A stray home config that would point the agent elsewhere: the demo must not read it.
mkdir -p "$work/home/.block-buster"
printf 'rpc_url: http://127.0.0.1:1\nlog_level: error\n' > "$work/home/.block-buster/config.yaml"
HOME="$work/home" BB_DEMO_BUILD_DIR="$build" BB_DEMO_NODE_PORT="$node_port" \
  BLOCK_BUSTER_HTTP_PORT="$http_port" BLOCK_BUSTER_WS_PORT="$ws_port" \
  BLOCK_BUSTER_FEATURE_WS_PORT="$feature_port" BLOCK_BUSTER_WEB_PORT="$web_port" \
  setsid bash "$src/tools/demo.sh" > "$work/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 1200); do grep -q 'Press Ctrl-C' "$work/demo.out" && break; sleep 0.25; done
grep -q 'Press Ctrl-C' "$work/demo.out" || fail "the demo did not start"
grep -q "_devnode/faults" "$work/demo.out" || fail "the banner names no fault to try"
agent_log="$(grep -o '/[^ ,]*/agent.log' "$work/demo.out" | head -1)"
[ -f "$agent_log" ] || fail "the banner names no agent log"
grep -q "$src/etc/config.yaml" "$agent_log" || fail "the agent did not read the tree's config: $(cat "$agent_log")"

echo "== every port as passed"
code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
[ "$(code "http://127.0.0.1:$http_port/health")" = 200 ] || fail "API not on $http_port"
[ "$(code "http://127.0.0.1:$ws_port/")" = 426 ] || fail "WebSocket stream not on $ws_port"
[ "$(code "http://127.0.0.1:$feature_port/")" = 426 ] || fail "feature stream not on $feature_port"
[ "$(code "http://127.0.0.1:$web_port/")" = 200 ] || fail "web dashboard not on $web_port"
runtime="$(curl -sf "http://127.0.0.1:$web_port/bb-config.json")"
grep -q "\"ws_port\":$ws_port" <<<"$runtime" || fail "the page is not told the ws port: $runtime"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http_port/health" | grep -q '"reachable":true' && break
  sleep 0.2
done

echo "== the node stops: the demo shows the outage and runs on"
node_pid="$(grep -o 'pid [0-9]*' "$work/demo.out" | head -1 | cut -d' ' -f2)"
[ -n "$node_pid" ] || fail "the banner names no node pid"
kill "$node_pid"
for _ in $(seq 100); do grep -q 'simulated node stopped' "$work/demo.out" && break; sleep 0.1; done
grep -q 'simulated node stopped' "$work/demo.out" || fail "no word of the node stopping"
health=""
for _ in $(seq 150); do
  health="$(curl -s "http://127.0.0.1:$http_port/health" || true)"
  grep -q '"reachable":false' <<<"$health" && break
  sleep 0.2
done
grep -q '"reachable":false' <<<"$health" || fail "the agent does not show the node down: $health"
kill -0 "$demo_pid" 2>/dev/null || fail "the demo ended with the node"

echo "== Ctrl-C ends it"
kill -INT -- "-$demo_pid"
for _ in $(seq 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$demo_pid" 2>/dev/null && fail "the demo did not stop on Ctrl-C"
[ "$(code "http://127.0.0.1:$http_port/health")" = 000 ] || fail "the agent outlived the demo"
grep -q 'blockbuster-agent exited' "$work/demo.out" && fail "Ctrl-C reported as the agent failing"
demo_pid=""
echo "demo_test: OK"
