#!/usr/bin/env bash
# usage: dockerfile_lint.sh SOURCE_DIR
# The guide's `docker build -t block-buster .` needs ./Dockerfile. Where a container engine runs
# (`docker info` answers) it builds the image for real; elsewhere (CI here has a docker client and
# no engine) it checks what can be checked without one: the stages, the build dependencies
# against tools/setup.sh, the CMake options against CMakeLists.txt (and configures the tree with
# exactly the Dockerfile's flags), the published ports against the documented `docker run`.
set -euo pipefail
src="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "dockerfile_lint: FAIL: $*" >&2; exit 1; }
df="$src/Dockerfile"

[ -f "$df" ] || fail "no Dockerfile at the root of the tree (the guide runs 'docker build .')"
# Instructions, continuation lines joined, comments dropped.
instructions="$(sed -e '/^[[:space:]]*#/d' "$df" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')"

echo "== stages"
stages=()
while read -r line; do
  image="$(awk '{print $2}' <<<"$line")"
  [ "$image" = debian:12 ] || fail "FROM $image: the project builds and runs on Debian 12"
  name="$(awk 'toupper($3) == "AS" {print $4}' <<<"$line")"
  [ -n "$name" ] && stages+=("$name")
done < <(grep -E '^FROM ' <<<"$instructions")
[ "${#stages[@]}" -ge 1 ] || fail "no named build stage"
for from in $(grep -oE 'COPY --from=[^ ]+' <<<"$instructions" | cut -d= -f2); do
  printf '%s\n' "${stages[@]}" | grep -qx "$from" || fail "COPY --from=$from: no such stage"
done

echo "== build dependencies (tools/setup.sh's, without the tests')"
build_line="$(grep -E '^RUN .*apt-get install' <<<"$instructions" | head -1)"
setup_packages="$(sed -n '/^packages=(/,/)/p' "$src/tools/setup.sh" | tr -d '()' |
  sed 's/packages=//' | tr ' ' '\n' | sed '/^$/d')"
for p in $setup_packages; do
  case "$p" in libgtest-dev|libgmock-dev|googletest|curl|ca-certificates) continue ;; esac
  grep -qw -- "$p" <<<"$build_line" || fail "the build stage does not install $p (tools/setup.sh does)"
done
for tool in dpkg-dev file; do  # cpack -G DEB with shlibdeps
  grep -qw -- "$tool" <<<"$build_line" || fail "the build stage needs $tool for cpack -G DEB"
done

echo "== CMake options"
cmake_line="$(grep -oE 'cmake -S [^&]*' <<<"$instructions" | head -1)"
flags=()
for flag in $(grep -oE -- '-D[A-Za-z_]+=[^ ]+' <<<"$cmake_line"); do
  name="${flag#-D}"
  name="${name%%=*}"
  case "$name" in
    CMAKE_*) ;;
    *) grep -qE "option\\($name " "$src/CMakeLists.txt" || fail "-D$name is no option of CMakeLists.txt" ;;
  esac
  flags+=("$flag")
done
# The image's flags configure the tree (and build no test and no bb-devnode).
cmake -S "$src" -B "$work/build" "${flags[@]}" >"$work/configure.log" 2>&1 ||
  fail "cmake with the Dockerfile's flags: $(tail -5 "$work/configure.log")"
if grep -q 'Manually-specified variables were not used' "$work/configure.log"; then
  fail "a flag of the Dockerfile is ignored by cmake: $(cat "$work/configure.log")"
fi
[ ! -d "$work/build/tests" ] || fail "the image's build would build the tests"
[ ! -d "$work/build/tools/devnode" ] || fail "the image's build would build bb-devnode"
grep -q 'cpack -G DEB' <<<"$instructions" || fail "the build stage makes no package"
grep -qE 'COPY --from=build /build/blockbuster-agent_\*\.deb' <<<"$instructions" ||
  fail "the runtime stage does not install the agent's package"

echo "== runtime"
for port in 5000 5001 5002 4173; do
  grep -E '^EXPOSE ' <<<"$instructions" | grep -qw "$port" || fail "EXPOSE lacks $port"
done
grep -qE '^USER [a-z]' <<<"$instructions" || fail "the agent must not run as root"
grep -qE '^ENTRYPOINT \["/usr/bin/blockbuster-agent"\]' <<<"$instructions" ||
  fail "ENTRYPOINT is not the packaged agent"
grep -q 'BLOCK_BUSTER_WEB_HOST=0.0.0.0' <<<"$instructions" ||
  fail "the web dashboard would listen on loopback only inside the container"
grep -q '/health' <<<"$instructions" || fail "no HEALTHCHECK on /health"
for ignored in build '.git'; do
  grep -q "^$ignored" "$src/.dockerignore" || fail ".dockerignore does not leave out $ignored"
done

echo "== the documented docker run publishes every port, the web dashboard's too"
for doc in "$df" "$src/README.md"; do
  run="$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$doc" | grep -E 'docker run' || true)"
  [ -n "$run" ] || fail "$doc shows no docker run"
  for port in 5000 5001 5002 4173; do
    grep -q -- "-p $port:$port" <<<"$run" || fail "$doc: docker run does not publish $port"
  done
done

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  echo "== docker build -t block-buster . (an engine answers)"
  (cd "$src" && docker build -t block-buster-lint-$$ .) || fail "docker build failed"
  docker image rm "block-buster-lint-$$" >/dev/null || true
else
  echo "dockerfile_lint: no container engine answers here: the Dockerfile was linted, not built"
fi
echo "dockerfile_lint: OK"
