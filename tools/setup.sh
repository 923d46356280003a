#!/usr/bin/env bash
# Installs what Block Buster needs from Debian 12's packages (and, for the browser tests, the
# npm registry). Idempotent: installs only what is missing, near-instant when all is there.
#
#   tools/setup.sh            build dependencies only
#   tools/setup.sh --test     also what the tests use (chromium, prometheus, node, wrk,
#                             clang-format, clang-tidy, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (use --test or nothing)" >&2; exit 2 ;;
  esac
done

packages=(cmake make g++ pkg-config libpoco-dev libsqlite3-dev zlib1g-dev libboost-dev
          libyaml-cpp-dev prometheus-cpp-dev libgtest-dev libgmock-dev googletest curl
          ca-certificates)
if [ "$want_test" = 1 ]; then
  packages+=(chromium prometheus prometheus-alertmanager jq wrk nginx-light libbenchmark-dev clang
             libclang-rt-14-dev clang-format clang-tidy lintian dpkg-dev)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Debian's prometheus packages start services; the tests run their own servers instead.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$want_test" = 1 ] && [ -f tests/browser/package.json ]; then
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "setup: installing the browser tests' npm packages"
    # The browser is Debian's chromium: never let an npm package download one.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund \
      --loglevel=error
  fi
fi
