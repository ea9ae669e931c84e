#!/usr/bin/env bash
# Runs every libFuzzer target (or the ones named) for SECONDS each, on a scratch corpus seeded
# from tests/fuzz/corpus/, and prints each target's executions and findings.
#   tests/fuzz/run.sh [-t SECONDS] [TARGET...]      # targets: config sse chat_json units state request_fields gguf
# Builds build-asan/ (the `asan` CMake preset: clang, ASan + UBSan, the fuzz targets) first. Crash inputs land in
# build-asan/findings/TARGET/; reproduce one with: build-asan/bin/fuzz_TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=300
if [ "${1:-}" = -t ]; then secs=$2; shift 2; fi
targets=${*:-config sse chat_json units state request_fields gguf}
cmake --preset asan >/dev/null
cmake --build build-asan -j "$(nproc)" --target $(printf 'fuzz_%s ' $targets) >/dev/null
for t in $targets; do
  work=build-asan/long-corpus/$t findings=build-asan/findings/$t
  mkdir -p "$work" "$findings"
  log=build-asan/fuzz_$t.log
  rc=0
  build-asan/bin/fuzz_$t -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz_$t: ${execs:-?} executions in ${secs}s, corpus $(ls "$work" | wc -l) inputs, exit $rc$( [ $rc -ne 0 ] && echo ", finding in $findings (see $log)")"
done
