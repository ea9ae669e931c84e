#!/usr/bin/env bash
# CI smoke test: start a model, ask it one question, check the answer, stop it; every
# llmctl exit code is checked and explained (see llmctl(1), EXIT STATUS).
#
#   examples/ci-smoke.sh [MODEL]          # default: echo, the built-in mock model
#
# Environment: SMOKE_PROMPT (default "ping"), SMOKE_EXPECT (a string the answer must
# contain; default: the prompt, which is what the echo model answers), LLMCTL (the llmctl
# binary, default: from PATH), and llmctl's own LLMCTL_CONFIG / LLMCTL_HOME.
# Exit status: 0 passed; 1 the answer was wrong; otherwise the failing llmctl's exit code.
set -uo pipefail
model=${1:-echo}
prompt=${SMOKE_PROMPT:-ping}
expect=${SMOKE_EXPECT-$prompt}
llmctl=${LLMCTL:-llmctl}

explain() { # CODE: what an llmctl exit code means
  case $1 in
  1) echo "failure" ;; 2) echo "usage error" ;; 3) echo "config error" ;;
  4) echo "unknown model" ;; 5) echo "server failed (exited, lost its port, cut the stream)" ;;
  6) echo "timed out" ;; 130) echo "interrupted" ;; *) echo "unexpected exit code" ;;
  esac
}
die() { # CODE STEP
  echo "ci-smoke: $2 failed: exit $1 ($(explain "$1"))" >&2
  echo "ci-smoke: last lines of the $model log:" >&2
  "$llmctl" logs "$model" -n 20 >&2 || true
  exit "$1"
}

# Whatever happens below, the server this script started is stopped.
started=0
cleanup() {
  if [ "$started" = 1 ]; then
    "$llmctl" stop "$model" -q || echo "ci-smoke: stop failed: exit $? ($(explain $?))" >&2
  fi
}
trap cleanup EXIT

"$llmctl" config check -q >/dev/null || die $? "config check"

out=$("$llmctl" start "$model" --json) || die $? "start"
case $out in *'"already_running":false'*) started=1 ;; esac
url=$(printf '%s' "$out" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
echo "ci-smoke: $model runs at $url"

reply=$("$llmctl" chat "$model" --no-start --max-tokens 64 "$prompt") || die $? "chat"
echo "ci-smoke: $model answered: $reply"
if [ -z "$reply" ] || [[ $reply != *"$expect"* ]]; then
  echo "ci-smoke: FAILED: the answer does not contain \"$expect\"" >&2
  exit 1
fi

# A model that does not exist is exit 4, whatever the config: scripts can rely on that.
"$llmctl" chat --no-start no-such-model-ci-smoke hi >/dev/null 2>&1
rc=$?
[ $rc -eq 4 ] || { echo "ci-smoke: FAILED: unknown model gave exit $rc, want 4" >&2; exit 1; }

if [ "$started" = 1 ]; then
  started=0
  "$llmctl" stop "$model" -q || die $? "stop"
  if "$llmctl" ps -q | grep -qx -- "$model"; then
    echo "ci-smoke: FAILED: $model still listed after stop" >&2
    exit 1
  fi
fi
echo "ci-smoke: passed"
