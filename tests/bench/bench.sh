#!/usr/bin/env bash
# llmctl's benchmarks (docs/BENCHMARKS.md): builds llmctl, installs what the comparison needs,
# runs tests/bench/bench.py and writes its table into docs/BENCHMARKS.md.
#
#   tests/bench/bench.sh            full run (about 6 minutes on 2 cores), writes the doc
#   tests/bench/bench.sh --quick    small sizes and few runs: a smoke run, the doc untouched
#   tests/bench/bench.sh --only race,chat   some sections (ps,startup,stop,race,chat,log,tail,reap)
#
# What it installs, once (idempotent):
#   - hyperfine, supervisor, curl and procps from Debian. supervisor's own system service is never
#     started (policy-rc.d denies it for the install) and never used: the benchmark runs a private
#     supervisord with its own config and socket in a temp dir, and stops it at the end.
#   - pm2 from the npm registry into a temp prefix (removed afterwards), never globally; its
#     daemon runs with a private PM2_HOME and is killed at the end.
# Nothing here signals a process it did not start.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
quick=0
args=()
for a in "$@"; do
  case $a in
    --quick) quick=1; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done

debs="hyperfine supervisor curl procps"
missing=$(for p in $debs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"; done)
# Node.js and npm from Debian only when the machine has no npm of its own (a newer one from
# elsewhere would conflict with Debian's).
command -v npm >/dev/null || missing="$missing nodejs npm"
missing=$(echo $missing)
if [ -n "$missing" ]; then
  echo "bench: installing" $missing >&2
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || { [ $added_policy = 0 ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ $added_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
fi

make -s build >/dev/null

prefix=$(mktemp -d /tmp/llmctl-bench-pm2.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
echo "bench: installing pm2 from the npm registry into $prefix" >&2
pm2_args=()
if npm install --prefix "$prefix" pm2 --no-audit --no-fund --loglevel=error >/dev/null 2>&1; then
  pm2_args=(--pm2-prefix "$prefix")
else
  echo "bench: warning: npm could not install pm2; the pm2 rows are left out" >&2
fi

write=(--write docs/BENCHMARKS.md)
[ $quick = 0 ] || write=()
python3 tests/bench/bench.py --build build "${pm2_args[@]}" "${write[@]}" "${args[@]}"
