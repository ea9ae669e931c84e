# llmctl serve and its config: the [serve] table (flags override it), a reload on a change of the
# config file and on SIGHUP that keeps requests in flight and survives a broken edit, the reap it
# runs itself (reap_every), its access log file (llmctl logs @serve), and systemd's notify
# protocol (READY, RELOADING, STOPPING) on a socket this test listens on.
. "$TEST_LIB"
port=$((PORT_BASE + 50))
mock_config
config_add '[serve]' "listen = \"127.0.0.1:$port\"" 'reap_every = "1s"' 'max_queue = 7'
mock_model m1
config_add 'idle_timeout = "2s"'
mock_model slow --tokens-per-second 20
post() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
serve_url="http://127.0.0.1:$port"

# A typo in [serve] is a config error with a did-you-mean, before anything listens.
cp "$LLMCTL_CONFIG" "$T/good.toml"
printf '[serve]\nlistn = ":1"\n' >"$T/typo.toml"
expect_rc 3 llmctl --config "$T/typo.toml" serve
echo "$ERR" | grep -q 'unknown key "listn" in \[serve\] (did you mean "listen"?)' || fail "typo: $ERR"
printf '[serve]\nlisten = "8080:x"\n' >"$T/bad-listen.toml"
expect_rc 3 llmctl --config "$T/bad-listen.toml" serve
echo "$ERR" | grep -q 'bad-listen.toml:2:10: "listen" = "8080:x" is not HOST:PORT' || fail "bad listen: $ERR"
# A non-loopback listen from the config needs a key, as the flag does.
printf '[serve]\nlisten = "0.0.0.0:%d"\n' $port >"$T/open.toml"
expect_rc 2 llmctl --config "$T/open.toml" serve
echo "$ERR" | grep -q 'without an API key' || fail "open listen: $ERR"
expect_rc 2 llmctl serve --max-body 1M
echo "$ERR" | grep -q -- '--max-body "1M": is that powers of 1024 or of 1000?' || fail "ambiguous size: $ERR"
expect_rc 2 llmctl serve --reap-every soon
expect_rc 2 llmctl serve stray
expect_rc 0 llmctl config show --json
[ "$(echo "$OUT" | json_get serve.listen)" = "127.0.0.1:$port" ] || fail "config show: $OUT"
[ "$(echo "$OUT" | json_get serve.max_queue)" = 7 ] || fail "config show max_queue: $OUT"

# systemd's notify socket: a datagram listener that writes each message to a file.
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        out.flush()
PY
wait_for 10 test -S "$T/notify.sock" || fail "the notify listener did not start"

# serve takes its address from [serve] listen; it tells systemd it is ready.
NOTIFY_SOCKET="$T/notify.sock" "$LLMCTL_BIN" serve 2>"$T/serve.log" &
SERVE_PID=$!
wait_for 20 curl -sf -o /dev/null "$serve_url/health" || fail "serve did not listen on [serve] listen: $(cat "$T/serve.log")"
wait_for 10 grep -q "^READY=1 STATUS=serving on $serve_url/v1 MAINPID=$SERVE_PID" "$T/notify.log" || fail "no READY=1: $(cat "$T/notify.log")"

# A request; its line is in the access log file, which `llmctl logs @serve` reads.
[ "$(post "$serve_url/v1/chat/completions" -d "$(chat_body m1 hello)")" = 200 ] || fail "m1: $(cat "$T/body")"
wait_for 10 grep -q "\[127.0.0.1:$port\] .*\"POST /v1/chat/completions\" model=m1 status=200" "$LLMCTL_HOME/logs/@serve.log" ||
  fail "access log file: $(cat "$LLMCTL_HOME/logs/@serve.log")"
expect_rc 0 llmctl logs @serve -n 5
echo "$OUT" | grep -q 'model=m1 status=200' || fail "logs @serve: $OUT"
grep -q 'model=m1 status=200' "$T/serve.log" || fail "stderr has no access line: $(cat "$T/serve.log")"

# serve reaps by itself: m1 is idle after 2 s and stopped within a few reap_every periods.
wait_for 30 sh -c '[ -z "$("$LLMCTL_BIN" ps -q)" ]' || fail "serve did not reap idle m1: $(llmctl ps) $(cat "$T/serve.log")"
wait_for 10 grep -q 'reap: reaped m1' "$T/serve.log" || fail "the reap is not logged: $(cat "$T/serve.log")"

# A stream in flight (2 s of tokens) across a reload of the file completes in full.
prompt="one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
curl -sN "$serve_url/v1/chat/completions" -d "$(chat_body slow "$prompt" true)" >"$T/stream" &
stream=$!
wait_for 30 grep -q '"content"' "$T/stream" || fail "the slow stream did not begin: $(cat "$T/stream")"
# The file changes (replaced whole, as editors do): a new model m2 with an alias. serve notices.
cp "$LLMCTL_CONFIG" "$T/next.toml"
LLMCTL_CONFIG="$T/next.toml" mock_model m2
LLMCTL_CONFIG="$T/next.toml" config_add 'aliases = ["second"]'
mv "$T/next.toml" "$LLMCTL_CONFIG"
wait_for 20 grep -q 'reloaded the config: 3 model(s)' "$T/serve.log" || fail "no reload on a file change: $(cat "$T/serve.log")"
wait "$stream" || fail "the stream failed across the reload"
[ "$(sse_text <"$T/stream")" = "$prompt" ] || fail "the stream across the reload: $(cat "$T/stream")"
[ "$(post "$serve_url/v1/chat/completions" -d "$(chat_body second hi)")" = 200 ] || fail "the alias after the reload: $(cat "$T/body")"
grep -q 'RELOADING=1' "$T/notify.log" || fail "no RELOADING=1: $(cat "$T/notify.log")"

# A broken edit keeps the config in force, and says why.
echo 'max_concurrent = "two"' >>"$LLMCTL_CONFIG"
wait_for 20 grep -q 'reload failed, the previous config stays in force: .*max_concurrent' "$T/serve.log" ||
  fail "no reload failure: $(cat "$T/serve.log")"
[ "$(post "$serve_url/v1/chat/completions" -d "$(chat_body second again)")" = 200 ] || fail "m2 after a broken edit: $(cat "$T/body")"

# SIGHUP reloads (it does not stop serve): the fixed file, where m2 is gone.
cp "$T/good.toml" "$LLMCTL_CONFIG.new" && mv "$LLMCTL_CONFIG.new" "$LLMCTL_CONFIG"
n=$(grep -c 'reloaded the config' "$T/serve.log")
kill -HUP $SERVE_PID
wait_for 20 sh -c "[ \$(grep -c 'reloaded the config' '$T/serve.log') -gt $n ]" || fail "SIGHUP did not reload: $(cat "$T/serve.log")"
alive $SERVE_PID || fail "SIGHUP stopped serve"
[ "$(post "$serve_url/v1/chat/completions" -d "$(chat_body second x)")" = 404 ] || fail "m2 still routed: $(cat "$T/body")"

# SIGTERM: STOPPING=1, exit 0.
kill -TERM $SERVE_PID
rc=0; wait $SERVE_PID || rc=$?
[ $rc = 0 ] || fail "serve exited $rc"
grep -q '^STOPPING=1' "$T/notify.log" || fail "no STOPPING=1: $(cat "$T/notify.log")"

# A second SIGTERM while serve drains cuts the requests in flight at once (Ctrl-C twice).
NOTIFY_SOCKET= "$LLMCTL_BIN" serve 2>"$T/serve2.log" &
SERVE_PID=$!
wait_for 20 curl -sf -o /dev/null "$serve_url/health" || fail "serve did not start again: $(cat "$T/serve2.log")"
long=$(seq -s ' ' 1 400) # 20 s of tokens
curl -sN "$serve_url/v1/chat/completions" -d "$(chat_body slow "$long" true)" >"$T/long" &
wait_for 30 grep -q '"content"' "$T/long" || fail "the long stream did not begin"
kill -TERM $SERVE_PID
wait_for 10 grep -q 'stopping: waiting for 1 connection' "$T/serve2.log" || fail "no drain: $(cat "$T/serve2.log")"
kill -TERM $SERVE_PID
wait_for 10 sh -c "! kill -0 $SERVE_PID 2>/dev/null" || fail "a second SIGTERM did not end serve: $(cat "$T/serve2.log")"
rc=0; wait $SERVE_PID || rc=$?
[ $rc = 0 ] || fail "serve exited $rc after two SIGTERMs"
grep -q 'stopping now (a second signal): 1 connection(s) cut' "$T/serve2.log" || fail "the cut is not logged: $(cat "$T/serve2.log")"
[ "$(sse_text <"$T/long")" != "$long" ] || fail "the stream was not cut"

# Flags override [serve]: another port, and reap_every 0 (never).
start_serve $((port + 1)) --reap-every 0 --max-queue 3
[ "$(post "$SERVE_URL/v1/chat/completions" -d "$(chat_body m1 flag)")" = 200 ] || fail "serve on the flag's port: $(cat "$T/body")"
port_open $port && fail "serve listened on [serve] listen despite --listen"
kill -TERM $SERVE_PID
wait $SERVE_PID || fail "the second serve exited non-zero"
grep -q 'reap:' "$T/serve.$((port + 1)).log" && fail "--reap-every 0 still reaped: $(cat "$T/serve.$((port + 1)).log")"
true
