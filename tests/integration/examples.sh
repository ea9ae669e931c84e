# examples/: every config validates (with the models it promises), the cron and systemd
# files call what exists, and the CI smoke script passes against the echo model, and fails
# with the right exit code when the server cannot start.
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
ex="$src/examples"
n=0
for f in "$ex"/*.toml; do
  expect_rc 0 llmctl --config "$f" config check
  [ -n "$OUT" ] || fail "$(basename "$f"): config check printed no model"
  n=$((n + 1))
done
[ $n -ge 4 ] || fail "expected at least 4 example configs, found $n"
expect_rc 0 llmctl --config "$ex/ollama.toml" config show --json
echo "$OUT" | grep -q '"OLLAMA_HOST": "{host}:{port}"' || fail "ollama example: OLLAMA_HOST not kept for expansion: $OUT"
expect_rc 0 llmctl --config "$ex/external.toml" config check
[ "$(echo "$OUT" | grep -c ': external http://')" = 2 ] || fail "external example: $OUT"
expect_rc 0 llmctl --config "$ex/vllm.toml" config check
echo "$OUT" | grep -q '^qwen7b: runs vllm ' || fail "vllm example: $OUT"
grep -qE '^\* \* \* \* \* llmctl reap$' "$ex/crontab" || fail "crontab example does not run llmctl reap every minute"
grep -q '^ExecStart=.*llmctl reap' "$ex/systemd/llmctl-reap.service" || fail "systemd service does not run llmctl reap"
grep -q '^OnCalendar=\|^OnUnitActiveSec=' "$ex/systemd/llmctl-reap.timer" || fail "systemd timer has no schedule"
grep -q '^ExecStart=.*llmctl serve$' "$ex/systemd/llmctl-serve.service" || fail "systemd service does not run llmctl serve"
grep -q '^Type=notify$' "$ex/systemd/llmctl-serve.service" || fail "the serve unit is not Type=notify (serve speaks sd_notify)"
grep -q '^KillMode=process$' "$ex/systemd/llmctl-serve.service" || fail "the serve unit would kill the model servers with it"

# The CI smoke script, against an echo model on this test's ports.
mock_config
mock_model echo --host {host}
mock_model broken --crash-at-start
export LLMCTL="$LLMCTL_BIN"
expect_rc 0 "$ex/ci-smoke.sh"
echo "$OUT" | grep -q '^ci-smoke: passed$' || fail "smoke script output: $OUT"
[ -z "$(llmctl ps -q)" ] || fail "smoke script left a server running: $(llmctl ps)"
# A server that was already running is left running.
llmctl start echo -q >/dev/null
expect_rc 0 "$ex/ci-smoke.sh" echo
llmctl ps -q | grep -qx echo || fail "smoke script stopped a server it did not start"
llmctl stop echo -q
# A wrong answer is exit 1; a server that cannot start is start's exit 5, with its log shown.
SMOKE_EXPECT=pong expect_rc 1 "$ex/ci-smoke.sh"
echo "$ERR" | grep -q 'does not contain "pong"' || fail "wrong answer message: $ERR"
expect_rc 5 "$ex/ci-smoke.sh" broken
echo "$ERR" | grep -q 'start failed: exit 5 (server failed' || fail "broken server message: $ERR"
[ -z "$(llmctl ps -q)" ] || fail "smoke script left a server running: $(llmctl ps)"
echo "examples: ok ($n configs)"
