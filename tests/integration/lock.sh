# Two real processes on the state lock: the second waits, then exits 6 naming the holder's
# PID; once the holder is SIGKILLed, the lock is free at once.
. "$TEST_LIB"
printf '[models.a]\ncommand = ["x"]\n' >"$LLMCTL_CONFIG"
llmctl state init
LLMCTL_FAULT=hold-lock:60s "$LLMCTL_BIN" state init &
holder=$!
# The holder has the lock once its PID is in the lock file.
wait_for 10 grep -qx "$holder" "$LLMCTL_HOME/state.lock" || fail "holder never took the lock"
start=$(date +%s%N)
LLMCTL_LOCK_TIMEOUT=700ms expect_rc 6 llmctl state init
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
echo "$ERR" | grep -q "held by pid $holder" || fail "message does not name the holder: $ERR"
[ "$elapsed" -ge 650 ] || fail "gave up after ${elapsed}ms, before the timeout"
kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
# The kernel released the flock with the process: a zero timeout must succeed.
LLMCTL_LOCK_TIMEOUT=0 expect_rc 0 llmctl state init
echo "lock: ok"
