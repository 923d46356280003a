#!/usr/bin/env bash
# usage: run.sh BUILD_DIR BIN_DIR
set -euo pipefail
build="$1" bin="$2"
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
# The operator's monitoring files (docs/operating.md, "Quick start").
for f in grafana/dashboards/blockbuster.json grafana/provisioning/dashboards/blockbuster.yaml \
         grafana/provisioning/datasources/prometheus.yaml prometheus/prometheus.yml \
         prometheus/alerts.yml prometheus/targets/blockbuster.yml alertmanager/alertmanager.yml \
         grafana/dashboards/blockbuster-fleet.json; do
  grep -q " ./usr/share/blockbuster/$f\$" <<<"$agent_files" || fail "no /usr/share/blockbuster/$f"
done

echo "== maintainer scripts reload systemd (run for real, in a mount namespace with systemd 'booted')"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no executable $s in the package"
done
stub="$work/stub"
mkdir -p "$stub"
for tool in systemctl deb-systemd-invoke; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$tool" "$work" > "$stub/$tool"
  chmod +x "$stub/$tool"
done
# Each case: arguments dpkg passes, then the calls expected (";"-separated, in order).
run_script() {  # script, args...: prints the calls it made with systemd running
  rm -f "$work/calls"
  unshare -m sh -c 'mount -t tmpfs none /run/systemd 2>/dev/null || mount -t tmpfs none /run
                    mkdir -p /run/systemd/system && PATH="$0:$PATH" exec "$@"' \
    "$stub" "$work/control/$1" "${@:2}" || fail "$1 ${*:2} failed"
  tr '\n' ';' < "$work/calls" 2>/dev/null || true
}
[ "$(run_script postinst configure '')" = "systemctl --system daemon-reload;" ] ||
  fail "postinst on install: $(run_script postinst configure '')"
[ "$(run_script postinst configure 0.9.0)" = \
  "systemctl --system daemon-reload;deb-systemd-invoke try-restart blockbuster-agent.service;" ] ||
  fail "postinst on upgrade: $(run_script postinst configure 0.9.0)"
[ "$(run_script prerm remove)" = "deb-systemd-invoke stop blockbuster-agent.service;" ] ||
  fail "prerm on remove: $(run_script prerm remove)"
[ -z "$(run_script prerm upgrade 1.0.0)" ] || fail "prerm on upgrade must leave the agent running"
[ "$(run_script postrm remove)" = "systemctl --system daemon-reload;" ] ||
  fail "postrm on remove: $(run_script postrm remove)"
# Without systemd (a container, a chroot) they do nothing and succeed.
rm -f "$work/calls"
PATH="$stub:$PATH" "$work/control/postinst" configure '' || fail "postinst without systemd failed"
[ ! -s "$work/calls" ] || [ -d /run/systemd/system ] || fail "postinst called systemd without it"

echo "== cmake --install into a prefix stays inside it"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install failed"
[ -f "$prefix/etc/block-buster/config.yaml" ] || fail "no config under the prefix"
[ -f "$prefix/share/blockbuster/grafana/dashboards/blockbuster.json" ] ||
  fail "no Grafana dashboard under the prefix"
outside="$(grep -v "^$prefix/" "$build/install_manifest.txt" || true)"
[ -z "$outside" ] || fail "cmake --install wrote outside its prefix: $outside"

if command -v systemd-analyze >/dev/null; then
  echo "== systemd-analyze verify"
  out="$(systemd-analyze verify "$(dirname "$0")/../../packaging/systemd/blockbuster-agent.service" 2>&1 || true)"
  # Outside a booted systemd the binary path is missing; anything else is a real finding.
  echo "$out" | grep -v -e 'blockbuster-agent: No such file' -e 'Command /usr/bin/blockbuster-agent is not executable' \
    -e '^$' && fail "systemd-analyze verify: $out" || true
fi

echo "== the operator's quick start (docs/operating.md), the package in a scratch root"
root="$work/root"
dpkg -x "$agent_deb" "$root"
# The real node's profile, with its token; the agent gets both from the environment file the
# unit reads, sourced as the quick start's --check-config line does.
token="quick-start-Node-T0ken"
"$bin/bb-devnode" --listen 127.0.0.1:0 --profile theblock --auth-token "$token" --block-ms 200 \
  > "$work/node.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q ready "$work/node.out" && break; sleep 0.1; done
node_port="$(grep -o 'rpc=[^ ]*' "$work/node.out" | cut -d: -f2 || true)"
[ -n "$node_port" ] || fail "bb-devnode did not start"
grep -q '^EnvironmentFile=-/etc/default/blockbuster-agent$' \
  "$root/usr/lib/systemd/system/blockbuster-agent.service" || fail "the unit reads no environment file"
envfile="$work/default-blockbuster-agent"  # /etc/default/blockbuster-agent
install -m 0600 /dev/null "$envfile"
printf 'THEBLOCK_RPC_URL=http://127.0.0.1:%s\nTHEBLOCK_AUTH_TOKEN=%s\n' "$node_port" "$token" > "$envfile"
check="$(set -a; . "$envfile"; HOME="$work" "$root/usr/bin/blockbuster-agent" \
  --config "$root/etc/block-buster/config.yaml" --check-config 2>&1)" ||
  fail "--check-config of the quick start: $check"
grep -q "$token" <<<"$check" && fail "--check-config shows the token"
grep -q 'THEBLOCK_AUTH_TOKEN -> auth_token' <<<"$check" || fail "the token was not applied: $check"
(set -a; . "$envfile"; HOME="$work" BLOCK_BUSTER_HTTP_HOST=127.0.0.1 \
  BLOCK_BUSTER_HTTP_PORT=0 BLOCK_BUSTER_WEB_HOST=127.0.0.1 BLOCK_BUSTER_WEB_PORT=0 \
  BLOCK_BUSTER_WS_HOST=127.0.0.1 BLOCK_BUSTER_WS_PORT=0 BLOCK_BUSTER_FEATURE_WS_PORT=0 \
  exec "$root/usr/bin/blockbuster-agent" --config "$root/etc/block-buster/config.yaml") \
  > "$work/agent.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q "ready http=" "$work/agent.out" && break; sleep 0.1; done
port="$(grep -o ' http=[^ ]*' "$work/agent.out" | cut -d: -f2 || true)"
web="$(grep -o ' web=[^ ]*' "$work/agent.out" | cut -d: -f2 || true)"
[ -n "$port" ] && [ -n "$web" ] || fail "installed agent did not start: $(cat "$work/agent.out")"
# The first line names the version, the file read and the overrides applied.
grep -q "starting: config file $root/etc/block-buster/config.yaml, environment overrides: THEBLOCK_RPC_URL -> rpc_url, THEBLOCK_AUTH_TOKEN -> auth_token" \
  "$work/agent.out" || fail "no start-up line naming the config and overrides: $(head -3 "$work/agent.out")"
grep -q "$token" "$work/agent.out" && fail "the agent logged the node's token"
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
# The token reached the node: energy.* needs it on the real node.
energy=""
for _ in $(seq 300); do
  energy="$(curl -sf "http://127.0.0.1:$port/theblock/markets/health" || true)"
  grep -q '"energy":{"status":"[a-z]*","total_credits":[0-9]' <<<"$energy" && break
  sleep 0.1
done
grep -q '"energy":{"status":"[a-z]*","total_credits":[0-9]' <<<"$energy" ||
  fail "no energy data: the node refused the agent's token? $energy"

echo "== the monitoring files as shipped"
share="$root/usr/share/blockbuster"
if command -v promtool >/dev/null; then
  promtool check config "$share/prometheus/prometheus.yml" >/dev/null ||
    fail "promtool check config of the shipped prometheus.yml"
else
  fail "promtool is not installed (tools/setup.sh --test installs prometheus)"
fi
for f in "$share"/grafana/dashboards/*.json; do
  python3 -m json.tool "$f" >/dev/null || fail "$f is not JSON"
done

# The installed agent finds the installed runner: isolation: process passes its check.
printf 'plugins:\n  network: {isolation: process}\n' > "$work/isolated.yaml"
HOME="$work" "$root/usr/bin/blockbuster-agent" --config "$work/isolated.yaml" \
  --plugin-dir "$root/usr/lib/blockbuster/plugins" --check-config > "$work/check.out" 2>&1 \
  || fail "isolation: process refused by the installed agent: $(cat "$work/check.out")"
echo "deb_package: OK"
