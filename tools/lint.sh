#!/usr/bin/env bash
# Static checks, run by tools/test.sh (so by CI) after the build:
#   1. clang-format --dry-run --Werror on every tracked C++ file (the repo's .clang-format);
#   2. clang-tidy-14 (the repo's .clang-tidy, warnings are errors) on the changed C++ files of
#      agent/, plugins/, sdk/ and tools/, with the build's compile_commands.json.
# "Changed": against the merge base with origin/main (or main) when HEAD is not on it (a branch);
# on a clone of main itself (CI), the files changed by the last $BB_TIDY_COMMITS commits (default
# 10), or every file when the history is shorter (a shallow clone). Uncommitted changes count too. BB_TIDY_BASE=<rev> picks
# the base; BB_TIDY_BASE=all checks every file (a few minutes on 2 cores).
#   tools/lint.sh            both checks
#   tools/lint.sh --format   clang-format only (needs no build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BB_BUILD_DIR:-build}"
status=0

mapfile -t cxx < <(git ls-files '*.cc' '*.h' '*.c' '*.cpp' '*.hpp')
echo "lint: clang-format on ${#cxx[@]} files"
if ! clang-format --dry-run --Werror "${cxx[@]}"; then
  echo "lint: clang-format: the files above are not formatted; run clang-format -i on them" >&2
  status=1
fi
[ "${1:-}" = --format ] && exit "$status"

if [ ! -f "$build/compile_commands.json" ]; then
  echo "lint: no $build/compile_commands.json: run tools/build.sh first" >&2
  exit 1
fi
tidy="$(command -v clang-tidy-14 || command -v clang-tidy || true)"
if [ -z "$tidy" ]; then
  echo "lint: clang-tidy not found: run tools/setup.sh --test" >&2
  exit 1
fi

# The files clang-tidy can check: translation units of the build, in the folders linted.
mapfile -t units < <(python3 - "$build/compile_commands.json" "$PWD" <<'EOF'
import json, os, sys
root = sys.argv[2]
for entry in json.load(open(sys.argv[1])):
    path = os.path.relpath(os.path.join(entry["directory"], entry["file"]), root)
    if path.split("/")[0] in ("agent", "plugins", "sdk", "tools"):
        print(path)
EOF
)

base="${BB_TIDY_BASE:-}"
if [ -z "$base" ]; then
  for main in origin/main main; do
    if git rev-parse -q --verify "$main" >/dev/null; then
      git merge-base --is-ancestor HEAD "$main" || base="$(git merge-base HEAD "$main")"
      break
    fi
  done
fi
if [ -z "$base" ]; then
  if git rev-parse -q --verify "HEAD~${BB_TIDY_COMMITS:-10}" >/dev/null; then
    base="HEAD~${BB_TIDY_COMMITS:-10}"
  else
    base=all
  fi
fi
if [ "$base" = all ]; then
  changed=("${units[@]}")
else
  mapfile -t changed < <(git diff --name-only --diff-filter=d "$base" -- '*.cc' '*.h' '*.c')
fi
# A changed header is checked through the unit of the same name beside it (foo.h: foo.cc).
declare -A want=()
for f in "${changed[@]}"; do
  for u in "${units[@]}"; do
    case "$u" in "$f"|"${f%.h}.cc"|"${f%.h}.c") want["$u"]=1 ;; esac
  done
done
if [ "${#want[@]}" -eq 0 ]; then
  echo "lint: clang-tidy: no changed C++ file since $base"
  exit "$status"
fi
if [ "$base" = all ]; then
  echo "lint: clang-tidy on all ${#want[@]} files"
else
  echo "lint: clang-tidy on ${#want[@]} files changed since $base"
fi
if ! printf '%s\n' "${!want[@]}" | sort |
     xargs -P"$(nproc)" -n1 "$tidy" -p "$build" --quiet; then
  echo "lint: clang-tidy found the problems above" >&2
  status=1
fi
exit "$status"
