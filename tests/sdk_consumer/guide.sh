#!/usr/bin/env bash
# usage: guide.sh SOURCE_DIR BUILD_DIR BIN_DIR
# sdk/README.md as written: its plugin and CMakeLists (the first cpp and cmake blocks) and its
# tests (the blocks marked <!-- sdk-guide: test -->, checked against examples/hello/test), its
# commands (the sh blocks marked <!-- sdk-guide: run -->) run as they are in a fresh folder, with
# `build` the tree of this build and HOME a scratch one; its config (<!-- sdk-guide: config -->)
# with /home/you as that HOME. Then the agent runs with that config against bb-devnode of both
# profiles, the real node's with an empty chain first: the plugin must not crash its light client.
set -euo pipefail
src="$(cd "$1" && pwd)" build="$(cd "$2" && pwd)" bin="$(cd "$3" && pwd)"
work="$(mktemp -d)"
pids=()
# Killed, then waited for: an agent writes its state (the history file) as it stops, and rm -rf
# racing that write fails with "Directory not empty".
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "sdk_guide: FAIL: $*" >&2; exit 1; }
readme="$src/sdk/README.md"

block() {  # block LANG [MARKER]: the first block of LANG, or every one marked MARKER
  awk -v lang="$1" -v marker="${2:-}" '
    marker != "" && index($0, "<!-- sdk-guide: " marker " -->") { armed = 1; next }
    inside && /^```$/ { inside = 0; if (marker == "") exit; next }
    inside { print; next }
    /^```/ { if ($0 == "```" lang && (marker == "" || armed)) inside = 1; armed = 0 }' "$readme"
}

echo "== the page's plugin is the example, file for file"
mkdir -p "$work/guide/hello" "$work/home"
block cpp > "$work/guide/hello/hello.cc"
block cmake > "$work/guide/hello/CMakeLists.txt"
diff -u "$src/sdk/examples/hello/hello.cc" "$work/guide/hello/hello.cc" || fail "the page's hello.cc differs from examples/hello"
diff -u "$src/sdk/examples/hello/CMakeLists.txt" "$work/guide/hello/CMakeLists.txt" ||
  fail "the page's CMakeLists.txt differs from examples/hello"

echo "== the page's tests are the example's (examples/hello/test), file for file"
block cpp test > "$work/hello_test.cc"
block cmake test > "$work/hello_test.cmake"
diff -u "$src/sdk/examples/hello/test/hello_test.cc" "$work/hello_test.cc" ||
  fail "the page's hello_test.cc differs from examples/hello/test"
diff -u "$src/sdk/examples/hello/test/CMakeLists.txt" "$work/hello_test.cmake" ||
  fail "the page's test CMakeLists.txt differs from examples/hello/test"

echo "== the page's commands, as written"
commands="$(block sh run)"
grep -q 'cmake --install build --component sdk --prefix' <<<"$commands" || fail "no SDK install command"
# `cmake -S . -B build` of a checkout: here the checkout's tree is already configured as `build`.
ln -s "$build" "$work/guide/build"
(cd "$work/guide" && HOME="$work/home" PATH="$bin:$PATH" bash -euxo pipefail -c \
  "$(grep -v '^cmake -S \. -B build' <<<"$commands" | grep -v -- '--list-plugins\|--check-config')") \
  > "$work/commands.log" 2>&1 || fail "the page's commands failed: $(tail -20 "$work/commands.log")"
[ -f "$work/home/blockbuster-sdk/include/blockbuster/plugin_abi.h" ] || fail "the SDK was not installed"
[ -f "$work/home/blockbuster-plugins/bb_hello.so" ] || fail "the plugin was not built and copied"

echo "== the page's config: the built-in plugins and hello"
block yaml config | sed "s|/home/you|$work/home|" > "$work/guide/agent.yaml"
listing="$(cd "$work/guide" && HOME="$work/home" PATH="$bin:$PATH" blockbuster-agent --config agent.yaml --list-plugins)" ||
  fail "--list-plugins: $listing"
for p in network compute storage energy ads receipts hello; do
  grep -q "^$p " <<<"$listing" || fail "$p not listed: $listing"
done
check="$(cd "$work/guide" && HOME="$work/home" "$bin/blockbuster-agent" --config agent.yaml --check-config 2>&1)" ||
  fail "--check-config: $check"

for profile in theblock spec; do
  echo "== the agent with the page's config, $profile node"
  flags=(--block-ms 0)
  [ "$profile" = theblock ] && flags+=(--start-height 0)  # an empty chain: the hazard
  "$bin/bb-devnode" --listen 127.0.0.1:0 --profile "$profile" "${flags[@]}" > "$work/node-$profile.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q ready "$work/node-$profile.out" && break; sleep 0.1; done
  node_port="$(grep -o 'rpc=[^ ]*' "$work/node-$profile.out" | cut -d: -f2 || true)"
  [ -n "$node_port" ] || fail "bb-devnode did not start"
  sed 's/interval_ms: 2000/interval_ms: 200/' "$work/guide/agent.yaml" > "$work/fast.yaml"
  HOME="$work/home" THEBLOCK_RPC_URL="http://127.0.0.1:$node_port" BLOCK_BUSTER_HTTP_HOST=127.0.0.1 \
    BLOCK_BUSTER_HTTP_PORT=0 BLOCK_BUSTER_WEB_PORT=-1 BLOCK_BUSTER_WS_HOST=127.0.0.1 \
    BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
    "$bin/blockbuster-agent" --config "$work/fast.yaml" > "$work/agent-$profile.out" 2>&1 &
  agent=$!
  pids+=($agent)
  for _ in $(seq 300); do grep -q "ready http=" "$work/agent-$profile.out" && break; sleep 0.1; done
  port="$(grep -o 'http=[^ ]*' "$work/agent-$profile.out" | cut -d: -f2 || true)"
  [ -n "$port" ] || fail "agent did not start: $(cat "$work/agent-$profile.out")"
  plugins="$(curl -sf "http://127.0.0.1:$port/plugins")" || fail "GET /plugins"
  for p in network receipts hello; do
    grep -q "\"name\":\"$p\"" <<<"$plugins" || fail "$p not loaded: $plugins"
  done
  if [ "$profile" = theblock ]; then
    body=""
    for _ in $(seq 300); do
      body="$(curl -sf "http://127.0.0.1:$port/plugins/hello/hello" || true)"
      grep -q '"height":null' <<<"$body" && break
      sleep 0.1
    done
    grep -q '"greeting":"hi there","height":null' <<<"$body" || fail "empty chain: $body"
    state="$(curl -sf "http://127.0.0.1:$node_port/_devnode/state")"
    grep -q '"light_poisoned":false' <<<"$state" || fail "the plugin crashed the node's light client: $state"
  fi
  curl -sf -X POST "http://127.0.0.1:$node_port/_devnode/advance" -d '{"blocks":3}' >/dev/null
  body=""
  for _ in $(seq 300); do
    body="$(curl -sf "http://127.0.0.1:$port/plugins/hello/hello" || true)"
    grep -q '"height":[0-9]' <<<"$body" && break
    sleep 0.1
  done
  grep -q '"greeting":"hi there","height":[0-9]' <<<"$body" || fail "$profile: $body; $(tail -5 "$work/agent-$profile.out")"
  scrape="$(curl -sf "http://127.0.0.1:$port/metrics")" || fail "GET /metrics failed"
  grep -q '^hello_chain_height [0-9]' <<<"$scrape" || fail "hello_chain_height not exported"
  kill "$agent"
done
echo "sdk_guide: OK"
