# Crash at start, startup timeout, a foreign listener, a taken fixed port, the lock fd.
. "$TEST_LIB"
cat >"$LLMCTL_CONFIG" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
[models.crash]
command = ["$MOCK_BIN", "--port", "{port}", "--crash-at-start"]
[models.slow]
command = ["$MOCK_BIN", "--port", "{port}", "--startup-delay", "30s"]
startup_timeout = "1s"
[models.ok]
command = ["$MOCK_BIN", "--port", "{port}"]
[models.fixed]
command = ["$MOCK_BIN", "--port", "{port}"]
port = $((PORT_BASE + 30))
EOT
expect_rc 5 llmctl start crash
echo "$ERR" | grep -q "simulated crash at start" || fail "no log tail: $ERR"
llmctl ps -a --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[0]["name"]=="crash" and r[0]["status"]=="failed", r'
expect_rc 6 llmctl start slow
[ -z "$(llmctl ps -q)" ] || fail "slow left a live row"
[ -z "$(marked)" ] || fail "slow left processes alive: $(marked)"
python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["name"]=="slow"][0]; assert r["status"]=="failed"' <<<"$(llmctl ps -a --json)"
# A foreign listener on the first port of the range: the server gets the next one.
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$PORT_BASE" &
wait_for 10 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PORT_BASE"
expect_rc 0 llmctl start ok
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "ok got $OUT"
# The lock fd is not inherited by the server.
pid=$(llmctl ps --json | python3 -c 'import json,sys; print([r["pid"] for r in json.load(sys.stdin) if r["name"]=="ok"][0])')
! ls -l /proc/$pid/fd | grep -q state.lock || fail "server holds state.lock"
LLMCTL_LOCK_TIMEOUT=0 expect_rc 0 llmctl state init
# A fixed port held by a stranger: exit 5 naming the port.
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' $((PORT_BASE + 30)) &
wait_for 10 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' $((PORT_BASE + 30))
expect_rc 5 llmctl start fixed
echo "$ERR" | grep -q "port $((PORT_BASE + 30))" || fail "message does not name the port: $ERR"
# An ad-hoc server with no config entry; placeholders work; unknown names are exit 4.
expect_rc 0 llmctl start adhoc -- "$MOCK_BIN" --host "{host}" --port "{port}" --model-name "{name}"
python3 -c 'import sys,urllib.request; assert b"adhoc" in urllib.request.urlopen(sys.argv[1] + "/v1/models").read()' "$OUT"
expect_rc 4 llmctl start okk
echo "$ERR" | grep -q 'did you mean "ok"' || fail "no suggestion: $ERR"
llmctl stop --all -q
echo "start_failures: ok"
