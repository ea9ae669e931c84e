#!/usr/bin/env bash
# tests/tools/npm-install.sh [BUILD_DIR]: installs the Node packages the tests use, each at the
# pinned version below, into BUILD_DIR/npm (BUILD_DIR: $1, else $BUILD_DIR). Prints the prefix.
#   openai            the official client: the tests that drive `llmctl serve` as a real
#                     third-party application does
#   @huggingface/gguf an independent GGUF parser: the test that cross-checks what llmctl reads
#                     from a model's header
#   puppeteer-core    drives Debian's chromium (no browser download): the dashboard test
# Idempotent: once the pinned versions are there it returns at once, without npm or the network.
# Safe when several tests call it at once (a lock in the prefix). Needs node and npm (`make deps`).
set -euo pipefail
PACKAGES=("openai@4.104.0" "@huggingface/gguf@0.4.6" "puppeteer-core@24.43.1")
build=${1:-${BUILD_DIR:-}}
[ -n "$build" ] || { echo "usage: $0 BUILD_DIR (or set BUILD_DIR)" >&2; exit 2; }
prefix=$(cd "$build" && pwd)/npm
stamp="$prefix/.installed-$(printf '%s+' "${PACKAGES[@]}" | tr '/@' '__')"
version_of() { node -p 'require(process.argv[1]).version' "$prefix/node_modules/$1/package.json" 2>/dev/null || true; }
# The stamp is written only after a complete install, and each package must still be there.
installed() {
  [ -e "$stamp" ] || return 1
  local p
  for p in "${PACKAGES[@]}"; do
    grep -q "\"version\": *\"${p##*@}\"" "$prefix/node_modules/${p%@*}/package.json" 2>/dev/null || return 1
  done
}
if installed; then echo "$prefix"; exit 0; fi

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed (run make deps)" >&2; exit 1; }
done
mkdir -p "$prefix"
exec 9>"$prefix/.lock"
flock 9
# Another caller may have installed them while this one waited for the lock.
if installed; then echo "$prefix"; exit 0; fi
rm -f "$prefix"/.installed-* "$prefix"/.openai-*.installed
# A package.json of its own, so npm never looks for a project above the prefix.
deps=$(for p in "${PACKAGES[@]}"; do printf '"%s": "%s", ' "${p%@*}" "${p##*@}"; done)
printf '{\n  "name": "llmctl-test-clients",\n  "private": true,\n  "dependencies": { %s }\n}\n' "${deps%, }" >"$prefix/package.json"
start=$(date +%s%N)
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --prefer-offline --no-update-notifier >/dev/null ||
  { echo "$0: npm install ${PACKAGES[*]} into $prefix failed (is the npm registry reachable?)" >&2; exit 1; }
for p in "${PACKAGES[@]}"; do
  v=$(version_of "${p%@*}")
  [ "$v" = "${p##*@}" ] || { echo "$0: npm installed ${p%@*} '$v', not ${p##*@}" >&2; exit 1; }
done
touch "$stamp"
echo "npm-install.sh: ${PACKAGES[*]} installed in $prefix in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
echo "$prefix"
