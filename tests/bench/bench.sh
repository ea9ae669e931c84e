#!/usr/bin/env bash
# llmctl's benchmarks (docs/BENCHMARKS.md): builds llmctl, installs what the comparison needs,
# runs tests/bench/bench.py and writes its table into docs/BENCHMARKS.md.
#
#   tests/bench/bench.sh            full run (about 10 minutes on 2 cores), writes the doc
#   tests/bench/bench.sh --quick    small sizes and few runs: a smoke run, the doc untouched
#   tests/bench/bench.sh --only race,chat   some sections (ps,startup,stop,race,chat,tls,log,tail,reap,admission,serve)
#   tests/bench/bench.sh --only serve       the gateway: llmctl serve next to the mock and nginx
#
# What it installs, once (idempotent):
#   - hyperfine, supervisor, nginx, curl and procps from Debian. The system services of supervisor
#     and nginx are never started (policy-rc.d denies them for the install) and never used: the
#     benchmark runs a private supervisord (its own config and socket) and a private nginx (its own
#     config, prefix, pid file and logs, as a child with daemon off) in temp dirs, and stops them by
#     their pids at the end.
#   - pm2 from the npm registry into a temp prefix (removed afterwards), never globally; its
#     daemon runs with a private PM2_HOME and is killed at the end. Only for the ps section.
# Nothing here signals a process it did not start.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
quick=0
only=
args=()
prev=
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --only=*) only=${a#--only=} ;;
  esac
  [ "$prev" != --only ] || only=$a
  args+=("$a")
  prev=$a
done

debs="hyperfine supervisor nginx curl procps"
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

# The programs the benchmark runs (not the test suite): llmctl, the mock, the floor and the
# gateway section's load generator and lease driver.
make -s deps >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target llmctl llmctl-tls llmctl-mock-server llmctl-bench-floor llmctl-bench-load llmctl-bench-leases >/dev/null

pm2_args=()
if [ -z "$only" ] || [[ ,$only, == *,ps,* ]]; then
  prefix=$(mktemp -d /tmp/llmctl-bench-pm2.XXXXXX)
  trap 'rm -rf "$prefix"' EXIT
  echo "bench: installing pm2 from the npm registry into $prefix" >&2
  if npm install --prefix "$prefix" pm2 --no-audit --no-fund --loglevel=error >/dev/null 2>&1; then
    pm2_args=(--pm2-prefix "$prefix")
  else
    echo "bench: warning: npm could not install pm2; the pm2 rows are left out" >&2
  fi
fi

write=(--write docs/BENCHMARKS.md)
[ $quick = 0 ] || write=()
python3 tests/bench/bench.py --build build "${pm2_args[@]}" "${write[@]}" "${args[@]}"
