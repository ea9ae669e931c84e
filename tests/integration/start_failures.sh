# Crash at start, startup timeout, a foreign listener, a taken fixed port, the lock fd.
. "$TEST_LIB"
mock_config
mock_model crash --crash-at-start
mock_model slow --startup-delay 30s
config_add 'startup_timeout = "1s"'
mock_model ok
mock_model fixed
config_add "port = $((PORT_BASE + 30))"
expect_rc 5 llmctl start crash
echo "$ERR" | grep -q "simulated crash at start" || fail "no log tail: $ERR"
[ "$(ps_field crash status -a)" = failed ] || fail "crash's row is not failed: $(llmctl ps -a)"
expect_rc 6 llmctl start slow
[ -z "$(llmctl ps -q)" ] || fail "slow left a live row"
[ -z "$(marked)" ] || fail "slow left processes alive: $(marked)"
[ "$(ps_field slow status -a)" = failed ] || fail "slow's row is not failed: $(llmctl ps -a)"
# A foreign listener on the first port of the range: the server gets the next one.
hold_port "$PORT_BASE"
expect_rc 0 llmctl start ok
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "ok got $OUT"
# The lock fd is not inherited by the server.
pid=$(ps_field ok pid)
! ls -l /proc/$pid/fd | grep -q state.lock || fail "server holds state.lock"
LLMCTL_LOCK_TIMEOUT=0 expect_rc 0 llmctl state init
# A fixed port held by a stranger: exit 5 naming the port.
hold_port $((PORT_BASE + 30))
expect_rc 5 llmctl start fixed
echo "$ERR" | grep -q "port $((PORT_BASE + 30))" || fail "message does not name the port: $ERR"
# An ad-hoc server with no config entry; placeholders work; unknown names are exit 4.
expect_rc 0 llmctl start adhoc -- "$MOCK_BIN" --host "{host}" --port "{port}" --model-name "{name}"
python3 -c 'import sys,urllib.request; assert b"adhoc" in urllib.request.urlopen(sys.argv[1] + "/v1/models").read()' "$OUT"
expect_rc 4 llmctl start okk
echo "$ERR" | grep -q 'did you mean "ok"' || fail "no suggestion: $ERR"
llmctl stop --all -q
echo "start_failures: ok"
