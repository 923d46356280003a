#!/usr/bin/env bash
# usage: run.sh BUILD_DIR EXAMPLE_DIR BIN_DIR
set -euo pipefail
build="$1" example="$2" bin="$3"
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
fail() { echo "sdk_consumer: FAIL: $*" >&2; exit 1; }

echo "== install the SDK to a temporary prefix"
cmake --install "$build" --component sdk --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/blockbuster/plugin_abi.h" || fail "plugin_abi.h not installed"

echo "== build the example out of tree with find_package(BlockBusterSDK)"
cmake -S "$example" -B "$work/hello" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/hello" >/dev/null
plugin="$work/hello/bb_hello.so"
test -f "$plugin" || fail "bb_hello.so was not built"
exported="$(nm -D --defined-only "$plugin" | awk '$2 == "T" {print $3}')"
[ "$exported" = "bb_plugin_entry" ] || fail "exports more than bb_plugin_entry: $exported"

echo "== build and run the example's tests out of tree, on the SDK's fake host (testing.h)"
test -f "$work/prefix/include/blockbuster/testing.h" || fail "testing.h not installed"
cmake -S "$example/test" -B "$work/hello-test" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/hello-test" >/dev/null
(cd "$work/hello-test" && ctest --output-on-failure) > "$work/hello-test.out" 2>&1 ||
  fail "the example's tests failed: $(cat "$work/hello-test.out")"
grep -q "100% tests passed" "$work/hello-test.out" || fail "no test ran: $(cat "$work/hello-test.out")"
brief="$("$work/hello-test/hello_test" --gtest_brief=1)" || fail "hello_test: $brief"
grep -q "PASSED.* 4 tests" <<<"$brief" || fail "the example's four tests did not all run: $brief"

echo "== the agent lists it"
mkdir "$work/plugins" && cp "$plugin" "$work/plugins/"
listing="$("$bin/blockbuster-agent" --list-plugins --plugin-dir "$work/plugins")"
grep -q "^hello 1.0.0 (ABI 1.1)" <<<"$listing" || fail "not listed: $listing"
grep -q "options.greeting" <<<"$listing" || fail "config key not listed: $listing"

echo "== the agent loads it and serves what it publishes"
"$bin/bb-devnode" --listen 127.0.0.1:0 --profile spec --block-ms 200 > "$work/node.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q ready "$work/node.out" && break; sleep 0.1; done
node_port="$(grep -o 'rpc=[^ ]*' "$work/node.out" | cut -d: -f2 || true)"
[ -n "$node_port" ] || fail "bb-devnode did not start: $(cat "$work/node.out")"
printf 'plugins:\n  hello:\n    interval_ms: 200\n    options:\n      greeting: "hi there"\n' \
  > "$work/agent.yaml"
HOME="$work" THEBLOCK_RPC_URL="http://127.0.0.1:$node_port" BLOCK_BUSTER_HTTP_HOST=127.0.0.1 \
  BLOCK_BUSTER_HTTP_PORT=0 BLOCK_BUSTER_WEB_PORT=-1 BLOCK_BUSTER_WS_HOST=127.0.0.1 \
  BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
  "$bin/blockbuster-agent" --config "$work/agent.yaml" --plugin-dir "$work/plugins" \
  > "$work/agent.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q "ready http=" "$work/agent.out" && break; sleep 0.1; done
port="$(grep -o 'http=[^ ]*' "$work/agent.out" | cut -d: -f2 || true)"
[ -n "$port" ] || fail "agent did not start: $(cat "$work/agent.out")"
body=""
for _ in $(seq 300); do
  body="$(curl -sf "http://127.0.0.1:$port/plugins/hello/hello" || true)"
  case "$body" in *'"height":'[0-9]*) break ;; esac
  sleep 0.1
done
case "$body" in
  *'"greeting":"hi there"'*'"height":'[0-9]*) ;;
  *) fail "unexpected body: $body; agent said: $(cat "$work/agent.out")" ;;
esac
# Into a variable first: grep -q closing the pipe early would fail curl under pipefail.
scrape="$(curl -sf "http://127.0.0.1:$port/metrics")" || fail "GET /metrics failed"
grep -q '^hello_chain_height [0-9]' <<<"$scrape" || fail "hello_chain_height not exported"
echo "sdk_consumer: OK ($body)"
