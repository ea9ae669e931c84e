#!/usr/bin/env bash
# tests/tools/promtool-install.sh [BUILD_DIR]: prints the path of a `promtool` (Prometheus's
# checker of the metrics text format) for the metrics tests. The one on PATH when there is one;
# else the one in Debian's prometheus package, unpacked (not installed: installing it would
# enable a Prometheus server on the machine) into BUILD_DIR/tools (BUILD_DIR: $1, else
# $BUILD_DIR). Idempotent: once unpacked it returns at once. Safe when several tests call it at
# once (a lock in that directory). Runs `apt-get update` only when apt knows no such package.
set -euo pipefail
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
build=${1:-${BUILD_DIR:-}}
[ -n "$build" ] || { echo "usage: $0 BUILD_DIR (or set BUILD_DIR)" >&2; exit 2; }
dir=$(cd "$build" && pwd)/tools
tool=$dir/promtool
if [ -x "$tool" ]; then echo "$tool"; exit 0; fi
mkdir -p "$dir"
exec 9>"$dir/.promtool.lock"
flock 9
if [ -x "$tool" ]; then echo "$tool"; exit 0; fi
work=$(mktemp -d "$dir/promtool.XXXXXX")
trap 'rm -rf "$work"' EXIT
fetch() { (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); }
fetch || { apt-get update -qq && fetch; } ||
  { echo "$0: cannot download Debian's prometheus package (apt-get download prometheus)" >&2; exit 1; }
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool ||
  { echo "$0: the prometheus package holds no usr/bin/promtool" >&2; exit 1; }
"$work/usr/bin/promtool" --version >/dev/null 2>&1 || { echo "$0: the unpacked promtool does not run" >&2; exit 1; }
mv "$work/usr/bin/promtool" "$tool"
echo "promtool-install.sh: promtool from Debian's prometheus package in $tool" >&2
echo "$tool"
