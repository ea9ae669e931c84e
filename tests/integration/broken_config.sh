# A config with a syntax error (someone is editing it) does not block clean-up: stop, stop --all
# and reap work from the state file with a warning naming the error; only what needs the config
# (idle timeouts, log rotation) is skipped, and reap says so. start still refuses (exit 3).
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
for m in a b c; do mock_model $m; done
pid_of() { ps_field "$1" pid; }
for m in a b c; do expect_rc 0 llmctl start $m; done
a=$(pid_of a) b=$(pid_of b) c=$(pid_of c)
printf '[models.a\ncommand = [\n' >>"$LLMCTL_CONFIG"   # half-typed
line=$(grep -n '^\[models.a$' "$LLMCTL_CONFIG" | cut -d: -f1)

expect_rc 0 llmctl stop a
! alive "$a" || fail "stop with a broken config left a"
echo "$ERR" | grep -q "warning: the config cannot be used ($LLMCTL_CONFIG:$line:[0-9]*: TOML syntax error" || fail "stop's warning: $ERR"
kill -KILL "$c"
# (SIGKILL takes effect when the process next runs: on a busy machine, a moment later)
wait_for 10 eval '! alive "$c"' || fail "c survived SIGKILL"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped c (pid $c): running server's process is gone" || fail "reap with a broken config: $OUT"
echo "$ERR" | grep -q "warning: reap: the config cannot be used ($LLMCTL_CONFIG:$line" || fail "reap's config warning: $ERR"
echo "$ERR" | grep -q "warning: reap: idle stops and log rotation skipped" || fail "reap does not say what it skipped: $ERR"
expect_rc 0 llmctl stop --all
! alive "$b" || fail "stop --all with a broken config left b"
[ -z "$(marked)" ] || fail "left $(marked)"
expect_rc 3 llmctl start a
echo "broken_config: ok"
