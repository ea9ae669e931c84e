# A start that does not get ready says what the probe saw, with a hint that fits: nothing listens
# on the port (the command ignores {port}), the health path answers 404, the server answers 503
# (still loading); and the log lines it shows are of this run only.
. "$TEST_LIB"
mock_config 'stop_timeout = "2s"' 'startup_timeout = "2s"'
config_add '[models.deaf]' 'command = ["sh", "-c", "echo run-$$ starting; exec sleep 60"]'
mock_model wrongpath
config_add 'health = "/healthz"'
mock_model loading --loading-until "$T/never"
config_add '[models.crash]' 'command = ["sh", "-c", "echo crash-$$; exit 3"]'
expect_rc 6 llmctl start deaf
echo "$ERR" | grep -q "server deaf not healthy after 2s: nothing listens on 127.0.0.1:$PORT_BASE" || fail "deaf: $ERR"
echo "$ERR" | grep -q "hint: it never listened on port $PORT_BASE: does its command pass {port}" || fail "deaf hint: $ERR"
first=$(echo "$ERR" | grep -o 'run-[0-9]*')
expect_rc 6 llmctl start deaf
second=$(echo "$ERR" | grep -o 'run-[0-9]*')
[ -n "$second" ] && [ "$second" != "$first" ] || fail "the second failure shows [$second], first [$first]"
[ "$(echo "$ERR" | grep -c 'run-[0-9]*')" = 1 ] || fail "the error shows lines of an earlier run: $ERR"
expect_rc 0 llmctl logs deaf -n 10
echo "$OUT" | grep -q "^--- llmctl: starting deaf (pid [0-9]*, port $PORT_BASE) at " || fail "no start marker in the log: $OUT"

expect_rc 6 llmctl start wrongpath
echo "$ERR" | grep -q "server wrongpath not healthy after 2s: GET /healthz answered HTTP 404" || fail "wrongpath: $ERR"
echo "$ERR" | grep -q 'hint: it answers, but not on /healthz: set health to a path it serves' || fail "wrongpath hint: $ERR"

expect_rc 6 llmctl start loading
echo "$ERR" | grep -q "server loading not healthy after 2s: GET /health answered HTTP 503" || fail "loading: $ERR"
echo "$ERR" | grep -q 'hint: raise startup_timeout' || fail "loading hint: $ERR"

expect_rc 5 llmctl start crash
echo "$ERR" | grep -q "server crash exited with code 3 during startup" || fail "crash: $ERR"
echo "$ERR" | grep -q "crash-[0-9]*" || fail "crash: its output is not shown: $ERR"
[ "$(ps_count -a)" = 4 ] && [ "$(ps_rows status -a | sort -u)" = failed ] || fail "rows after the failures: $(llmctl ps -a)"
[ -z "$(marked)" ] || fail "a failed start left processes: $(marked)"
echo "health_report: ok"
