# start --port: on a server that runs on another port it says so and how to move it (exit 2); a
# busy port names the port and its holder, and blames the config only when the port came from it.
. "$TEST_LIB"
busy=$((PORT_BASE + 15))
mock_config --range 10 'stop_timeout = "5s"'
mock_model m
mock_model fixed
config_add "port = $busy"
expect_rc 0 llmctl start m
url=$OUT
port=${url##*:}
expect_rc 2 llmctl start m --port $((port + 3))
echo "$ERR" | grep -q "m already runs on port $port (pid [0-9]*), not $((port + 3))" || fail "--port on a running server: $ERR"
echo "$ERR" | grep -q "hint: to move it: llmctl stop m && llmctl start m --port $((port + 3))" || fail "no hint: $ERR"
expect_rc 0 llmctl start m --port "$port"
[ "$OUT" = "$url" ] || fail "--port of its own port: $OUT"
hold_port $busy
holder=$HOLDER
expect_rc 0 llmctl stop m
expect_rc 5 llmctl start m --port $busy
echo "$ERR" | grep -q "port $busy on 127.0.0.1 (--port) is in use by pid $holder (python3)" || fail "busy --port: $ERR"
echo "$ERR" | grep -q "configured" && fail "a --port error blames the config: $ERR"
expect_rc 5 llmctl start fixed
echo "$ERR" | grep -q "port $busy on 127.0.0.1 is in use by pid $holder (python3), and model \"fixed\" is configured to use it" || fail "busy configured port: $ERR"
expect_rc 0 llmctl start m
expect_rc 5 llmctl start fixed --port "${OUT##*:}"
echo "$ERR" | grep -q "in use by llmctl's server m (pid [0-9]*)" || fail "a port of our own server: $ERR"
kill $holder
echo "port_flag: ok"
