#!/usr/bin/env bash
# tests/tools/npm-install.sh [BUILD_DIR]: installs the official `openai` package for Node (the
# pinned version below) into BUILD_DIR/npm (BUILD_DIR: $1, else $BUILD_DIR), for the tests that
# drive `llmctl serve` with a real third-party client. Prints the prefix.
# Idempotent: once the pinned version is there it returns at once, without npm or the network.
# Safe when several tests call it at once (a lock in the prefix). Needs node and npm (`make deps`).
set -euo pipefail
OPENAI_VERSION=4.104.0
build=${1:-${BUILD_DIR:-}}
[ -n "$build" ] || { echo "usage: $0 BUILD_DIR (or set BUILD_DIR)" >&2; exit 2; }
prefix=$(cd "$build" && pwd)/npm
stamp="$prefix/.openai-$OPENAI_VERSION.installed"
# The stamp is written only after a complete install, and the package itself must still be there.
installed() {
  [ -e "$stamp" ] && grep -q "\"version\": *\"$OPENAI_VERSION\"" "$prefix/node_modules/openai/package.json" 2>/dev/null
}
if installed; then echo "$prefix"; exit 0; fi

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed (run make deps)" >&2; exit 1; }
done
mkdir -p "$prefix"
exec 9>"$prefix/.lock"
flock 9
# Another caller may have installed it while this one waited for the lock.
if installed; then echo "$prefix"; exit 0; fi
rm -f "$prefix"/.openai-*.installed
# A package.json of its own, so npm never looks for a project above the prefix.
printf '{\n  "name": "llmctl-test-clients",\n  "private": true,\n  "dependencies": { "openai": "%s" }\n}\n' \
  "$OPENAI_VERSION" >"$prefix/package.json"
start=$(date +%s%N)
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --prefer-offline --no-update-notifier >/dev/null ||
  { echo "$0: npm install openai@$OPENAI_VERSION into $prefix failed (is the npm registry reachable?)" >&2; exit 1; }
installed_version=$(node -p 'require(process.argv[1]).version' "$prefix/node_modules/openai/package.json")
[ "$installed_version" = "$OPENAI_VERSION" ] ||
  { echo "$0: npm installed openai $installed_version, not $OPENAI_VERSION" >&2; exit 1; }
touch "$stamp"
echo "npm-install.sh: openai@$OPENAI_VERSION installed in $prefix in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
echo "$prefix"
