# A server in use is never idle: a chat streaming for longer than idle_timeout is not cut by the
# idle reaper, a chat queued for a slot counts as a user, and last_used is set when a request
# ends, so the idle clock starts then.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"' 'idle_timeout = "2s"' 'max_inflight = 1'
mock_model slow --reply-tokens 40 --tokens-per-second 8
mock_model other
expected=$(python3 -c "print(' '.join('tok%d' % i for i in range(40)))")
# Seconds since the server's last_used, from the state file.
idle_for() { python3 -c 'import sqlite3,sys,time; r=sqlite3.connect(sys.argv[1]).execute("select last_used from servers where name=?", (sys.argv[2],)).fetchone(); print(int(time.time()*1000) - r[0] if r else -1)' "$LLMCTL_HOME/state.db" "$1"; }
idle_past() { [ "$(idle_for "$1")" -gt "$2" ]; }
pid_of() { ps_field "$1" pid; }

# 1. A chat streams for 5 s; a reap once last_used is 3 s old must leave the server alone.
expect_rc 0 llmctl start slow
pid=$(pid_of slow)
llmctl chat slow "go" >"$T/chat.out" 2>"$T/chat.err" &
chat=$!
wait_for 10 [ -s "$T/chat.out" ] || fail "the chat never streamed"
wait_for 10 idle_past slow 3000 || fail "last_used never aged"
expect_rc 0 llmctl reap
[ -z "$OUT" ] || fail "reap acted while a chat streamed: $OUT"
[ "$(pid_of slow)" = "$pid" ] || fail "the server was stopped mid-chat"
wait $chat || fail "the chat failed (exit $?): $(cat "$T/chat.err")"
[ "$(cat "$T/chat.out")" = "$expected" ] || fail "the chat was cut: $(cat "$T/chat.out")"
# 2. The chat's end set last_used: right after it the server is not idle.
[ "$(idle_for slow)" -lt 2000 ] || fail "last_used was not set when the request ended ($(idle_for slow) ms ago)"
expect_rc 0 llmctl reap
[ "$(pid_of slow)" = "$pid" ] || fail "reaped right after a chat ended: $OUT"

# 3. A chat queued for a slot (max_inflight = 1, held by a chat of slow) is a user of other's server.
expect_rc 0 llmctl start other
opid=$(pid_of other)
llmctl chat slow "again" >"$T/c2.out" 2>/dev/null &
c2=$!
wait_for 10 [ -s "$T/c2.out" ] || fail "the second chat of slow never streamed"
llmctl chat other "queued" >"$T/c3.out" 2>/dev/null &
c3=$!
queued() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from leases where model=? and state=?", ("other","waiting")).fetchone()[0])' "$LLMCTL_HOME/state.db"; }
wait_for 10 eval '[ "$(queued)" = 1 ]' || fail "the chat of other never queued"
wait_for 10 idle_past other 2500 || fail "other's last_used never aged"
expect_rc 0 llmctl reap
[ "$(pid_of other)" = "$opid" ] || fail "reap stopped a server a queued chat waits for: $OUT"
wait $c2 && wait $c3 || fail "the chats failed"
[ "$(cat "$T/c3.out")" = "queued" ] || fail "the queued chat: $(cat "$T/c3.out")"
# 4. Nobody uses them now: once idle past the limit, reap stops both.
wait_for 10 idle_past slow 2500 && wait_for 10 idle_past other 2500 || fail "never idle"
expect_rc 0 llmctl reap
[ -z "$(marked)" ] || fail "idle servers not reaped: $OUT"
echo "idle_busy: ok"
