#!/usr/bin/env bash
# usage: run.sh BUILD_DIR BIN_DIR
set -euo pipefail
build="$1" bin="$2"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "deb_package: FAIL: $*" >&2; exit 1; }

echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/pkg" >/dev/null) || fail "cpack failed"
agent_deb="$(ls "$work"/pkg/blockbuster-agent_*.deb)"
sdk_deb="$(ls "$work"/pkg/blockbuster-sdk-dev_*.deb)"

echo "== lintian (no errors allowed)"
if command -v lintian >/dev/null; then
  lint="$(lintian --tag-display-limit 0 "$agent_deb" "$sdk_deb" 2>&1 | grep -v 'root privileges' || true)"
  echo "$lint"
  if echo "$lint" | grep -q '^E:'; then fail "lintian found errors"; fi
else
  fail "lintian is not installed (tools/setup.sh --test installs it)"
fi

echo "== contents"
# Listings go to variables: grep -q closing a pipe early would kill dpkg under pipefail.
agent_files="$(dpkg -c "$agent_deb")"
sdk_files="$(dpkg -c "$sdk_deb")"
grep -q ' ./etc/block-buster/config.yaml$' <<<"$agent_files" || fail "no default config"
dpkg -e "$agent_deb" "$work/control"
grep -qx /etc/block-buster/config.yaml "$work/control/conffiles" || fail "config is not a conffile"
grep -q ' ./usr/lib/systemd/system/blockbuster-agent.service$' <<<"$agent_files" \
  || fail "no systemd unit"
grep -q ' ./usr/lib/blockbuster/plugins/bb_network.so$' <<<"$agent_files" || fail "no plugins"
grep -q ' ./usr/share/blockbuster/web/index.html$' <<<"$agent_files" || fail "no web files"
grep -q ' ./usr/lib/blockbuster/bb_tls.so$' <<<"$agent_files" || fail "no TLS module"
grep -q ' ./usr/libexec/blockbuster/bb-plugin-runner$' <<<"$agent_files" \
  || fail "no bb-plugin-runner (isolation: process)"
if grep -q 'bb-devnode' <<<"$agent_files"; then fail "bb-devnode must not be shipped"; fi
grep -q ' ./usr/include/blockbuster/plugin_abi.h$' <<<"$sdk_files" || fail "no SDK header"

if command -v systemd-analyze >/dev/null; then
  echo "== systemd-analyze verify"
  out="$(systemd-analyze verify "$(dirname "$0")/../../packaging/systemd/blockbuster-agent.service" 2>&1 || true)"
  # Outside a booted systemd the binary path is missing; anything else is a real finding.
  echo "$out" | grep -v -e 'blockbuster-agent: No such file' -e 'Command /usr/bin/blockbuster-agent is not executable' \
    -e '^$' && fail "systemd-analyze verify: $out" || true
fi

echo "== run the installed agent from a scratch root"
root="$work/root"
dpkg -x "$agent_deb" "$root"
"$bin/bb-devnode" --listen 127.0.0.1:0 --profile spec --block-ms 200 > "$work/node.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q ready "$work/node.out" && break; sleep 0.1; done
node_port="$(grep -o 'rpc=[^ ]*' "$work/node.out" | cut -d: -f2 || true)"
[ -n "$node_port" ] || fail "bb-devnode did not start"
HOME="$work" THEBLOCK_RPC_URL="http://127.0.0.1:$node_port" BLOCK_BUSTER_HTTP_HOST=127.0.0.1 \
  BLOCK_BUSTER_HTTP_PORT=0 BLOCK_BUSTER_WEB_HOST=127.0.0.1 BLOCK_BUSTER_WEB_PORT=0 \
  BLOCK_BUSTER_WS_HOST=127.0.0.1 BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
  "$root/usr/bin/blockbuster-agent" --config "$root/etc/block-buster/config.yaml" \
  > "$work/agent.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q "ready http=" "$work/agent.out" && break; sleep 0.1; done
port="$(grep -o ' http=[^ ]*' "$work/agent.out" | cut -d: -f2 || true)"
web="$(grep -o ' web=[^ ]*' "$work/agent.out" | cut -d: -f2 || true)"
[ -n "$port" ] && [ -n "$web" ] || fail "installed agent did not start: $(cat "$work/agent.out")"
plugins="$(curl -sf "http://127.0.0.1:$port/plugins")" || fail "GET /plugins failed"
for p in network compute storage energy ads receipts; do
  grep -q "\"name\":\"$p\"" <<<"$plugins" || fail "plugin $p not loaded from the package: $plugins"
done
grep -q "$root/usr/lib/blockbuster/plugins" "$work/agent.out" || fail "plugins not from the scratch root"
page="$(curl -sf "http://127.0.0.1:$web/")" || fail "web page not served"
grep -qi '<!doctype html>' <<<"$page" || fail "web page is not HTML"
runtime="$(curl -sf "http://127.0.0.1:$web/bb-config.json")" || fail "no bb-config.json"
grep -q "\"api_port\":$port" <<<"$runtime" || fail "runtime config does not point at the API"
metrics=""
for _ in $(seq 300); do
  metrics="$(curl -sf "http://127.0.0.1:$port/theblock/network/metrics" || true)"
  grep -q '"block_height":[0-9]' <<<"$metrics" && break
  sleep 0.1
done
grep -q '"block_height":[0-9]' <<<"$metrics" || fail "no network metrics from the installed agent"
# The installed agent finds the installed runner: isolation: process passes its check.
printf 'plugins:\n  network: {isolation: process}\n' > "$work/isolated.yaml"
HOME="$work" "$root/usr/bin/blockbuster-agent" --config "$work/isolated.yaml" \
  --plugin-dir "$root/usr/lib/blockbuster/plugins" --check-config > "$work/check.out" 2>&1 \
  || fail "isolation: process refused by the installed agent: $(cat "$work/check.out")"
echo "deb_package: OK"
