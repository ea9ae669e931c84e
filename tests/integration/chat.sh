# chat: slots hold across processes (no overlap beyond max_concurrent, measured by the mock's
# request log), killed clients never keep a slot, crashes/stalls/Ctrl-C give their exit codes
# and release the slot, sessions keep every message, external models work.
. "$TEST_LIB"
mock_config
mock_model one --tokens-per-second 200 --request-log "$T/one.req"
config_add 'max_concurrent = 1'
# Answers of 8 tokens take 0.3 s here, so 8 clients started together overlap 3 at a time even
# on a loaded machine (at 200 tokens/s, 40 ms, their start-up spread sometimes left only 2).
mock_model three --tokens-per-second 25 --request-log "$T/three.req"
config_add 'max_concurrent = 3'
mock_model slow --reply-tokens 100000 --tokens-per-second 500
config_add 'max_concurrent = 1'
mock_model crashy --reply-tokens 50 --crash-mid-stream 5
mock_model stally --reply-tokens 50 --stall-after 3
mock_model stally2 --reply-tokens 50 --stall-after 3
config_add 'stall_timeout = "1s"'
config_add <<EOT
[models.ext]
url = "http://127.0.0.1:$((PORT_BASE + 30))"
[models.loading]
url = "http://127.0.0.1:$((PORT_BASE + 32))"
[models.stuck]
url = "http://127.0.0.1:$((PORT_BASE + 33))"
max_concurrent = 2
[models.notapi]
url = "http://127.0.0.1:$((PORT_BASE + 31))"
EOT
db="$LLMCTL_HOME/state.db"
leases() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from leases").fetchone()[0])' "$db"; }

# 1. 8 parallel chats per model; each prints exactly the reply to its own prompt.
for m in one three; do
  llmctl start "$m" >/dev/null
  pids=()
  for i in $(seq 1 8); do
    "$LLMCTL_BIN" chat "$m" "prompt number $i with a few more words" >"$T/$m.out.$i" 2>"$T/$m.err.$i" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "$m chat $((i + 1)) failed: $(cat "$T/$m.err.$((i + 1))")"; done
  for i in $(seq 1 8); do
    [ "$(cat "$T/$m.out.$i")" = "prompt number $i with a few more words" ] || fail "$m chat $i printed: $(cat "$T/$m.out.$i")"
  done
  [ "$(wc -l <"$T/$m.req")" = 8 ] || fail "$m: $(wc -l <"$T/$m.req") requests logged"
done
[ "$(max_overlap "$T/one.req")" = 1 ] || fail "max_concurrent=1 overlapped: $(max_overlap "$T/one.req")"
[ "$(max_overlap "$T/three.req")" = 3 ] || fail "max_concurrent=3: overlap $(max_overlap "$T/three.req"), want exactly 3"
[ "$(leases)" = 0 ] || fail "leases left after chats"

# 2. kill -9 of a client mid-stream, 20 times: the next chat gets the slot at once (queue
#    timeout 5 s, while the killed stream would last 200 s), no lease left.
llmctl start slow >/dev/null
for i in $(seq 1 20); do
  "$LLMCTL_BIN" chat slow go >"$T/slow.out" 2>/dev/null &
  c=$!
  wait_for 10 test -s "$T/slow.out" || fail "round $i: no token streamed"
  kill -KILL "$c"; wait "$c" 2>/dev/null || true
done
expect_rc 6 llmctl chat slow --queue-timeout 2s --timeout 300ms go   # got the slot: the total timeout ends it
echo "$ERR" | grep -q "total timeout" || fail "the next chat did not get the slot at once: $ERR"
[ "$(leases)" = 0 ] || fail "leases left after kill -9 rounds: $(leases)"
# A queue timeout while a live client holds the only slot: exit 6, its own lease removed.
"$LLMCTL_BIN" chat slow hold >"$T/hold.out" 2>/dev/null &
holder=$!
wait_for 10 test -s "$T/hold.out" || fail "holder never streamed"
expect_rc 6 llmctl chat slow --queue-timeout 300ms waiting
echo "$ERR" | grep -q "no free slot for slow" || fail "queue timeout message: $ERR"
# 4. SIGINT mid-stream: exit 130, slot released, server healthy.
kill -INT "$holder"
rc=0; wait "$holder" || rc=$?
[ $rc -eq 130 ] || fail "SIGINT: exit $rc, want 130"
[ "$(leases)" = 0 ] || fail "leases left after SIGINT"
expect_rc 0 llmctl ps --health --json
[ "$(ps_field slow health_http --health)" = 200 ] || fail "slow's health after SIGINT: $OUT"
# A closed stdout pipe ends a chat quietly.
rc=$(timeout 20 bash -c '"$0" chat slow go | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"' "$LLMCTL_BIN") || fail "chat | head hung"
[ "$rc" = 0 ] || fail "chat | head: exit $rc"

# 3. A crash mid-stream → exit 5; a stall with --stall-timeout 1s → exit 6; slots released.
expect_rc 5 llmctl chat crashy hi
echo "$ERR" | grep -q "crashy" || fail "crash message: $ERR"
expect_rc 6 llmctl chat stally --stall-timeout 1s hi
echo "$ERR" | grep -q "stalled" || fail "stall message: $ERR"
expect_rc 6 llmctl chat stally2 hi   # the same limit from the config key
echo "$ERR" | grep -q "timed out after 1s" || fail "stall_timeout key: $ERR"
[ "$(leases)" = 0 ] || fail "leases left after crash/stall"

# 6. Sessions: 10 concurrent writers x 5 turns → 100 messages, integrity ok.
pids=()
for w in $(seq 1 10); do
  ( for t in 1 2 3 4 5; do "$LLMCTL_BIN" chat three --session shared "writer $w turn $t" >/dev/null || exit 1; done ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a session writer failed"; done
python3 - "$db" <<'PY' || fail "session messages"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("select role, content from messages where session='shared' order by id").fetchall()
assert len(rows) == 100, len(rows)
assert sum(r == "user" for r, _ in rows) == 50
for i in range(0, 100, 2):
    assert rows[i][0] == "user" and rows[i + 1][0] == "assistant", rows[i:i + 2]
assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
PY

# 7. An external model: a mock server started outside llmctl; start/stop on it are exit 2.
"$MOCK_BIN" --port $((PORT_BASE + 30)) >/dev/null 2>&1 &
wait_for 10 port_open $((PORT_BASE + 30)) || fail "nothing listens on $((PORT_BASE + 30))"
expect_rc 0 llmctl chat ext "outside hello"
[ "$OUT" = "outside hello" ] || fail "external chat: $OUT"
expect_rc 0 llmctl chat ext --json "json please"
[ "$(json_get content <<<"$OUT")" = "json please" ] && [ "$(json_get finish_reason <<<"$OUT")" = stop ] || fail "--json: $OUT"
# A server that answers with an HTTP error: its status and message are shown, exit 1.
python3 -m http.server $((PORT_BASE + 31)) --bind 127.0.0.1 >/dev/null 2>&1 &
wait_for 10 port_open $((PORT_BASE + 31)) || fail "nothing listens on $((PORT_BASE + 31))"
expect_rc 1 llmctl chat notapi hi
echo "$ERR" | grep -q "notapi answered HTTP 501" || fail "HTTP error message: $ERR"
# 503 before the answer (a server still loading) is retried with backoff (0.2+0.4+0.8 s):
# one that loads within that gets the chat through; one that keeps loading is exit 1.
"$MOCK_BIN" --port $((PORT_BASE + 32)) --startup-delay 600ms >/dev/null 2>&1 &
"$MOCK_BIN" --port $((PORT_BASE + 33)) --startup-delay 60s >/dev/null 2>&1 &
for p in 32 33; do wait_for 10 port_open $((PORT_BASE + p)) || fail "nothing listens on $((PORT_BASE + p))"; done
expect_rc 0 llmctl chat loading "after the load"
[ "$OUT" = "after the load" ] || fail "chat through a 503: $OUT"
expect_rc 1 llmctl chat stuck hi
echo "$ERR" | grep -q "stuck answered HTTP 503: Loading model" || fail "lasting 503: $ERR"
expect_rc 2 llmctl start ext
expect_rc 2 llmctl stop ext
llmctl stop three -q
expect_rc 4 llmctl chat three --no-start hi

# max_inflight caps all models together: 2 models x max_concurrent 2, max_inflight 2.
llmctl stop --all -q
mock_config 'max_inflight = 2'
for m in a b; do
  mock_model $m --tokens-per-second 200 --request-log "$T/all.req" --hold-until "$T/inflight.go"
  config_add 'max_concurrent = 2'
done
llmctl start a >/dev/null; llmctl start b >/dev/null
# Every stream holds after its first token until inflight.go exists: once two chats have printed
# theirs, the cap is reached whatever the machine's speed; then they all go on.
pids=()
for i in $(seq 1 8); do "$LLMCTL_BIN" chat "$([ $((i % 2)) = 0 ] && echo a || echo b)" "inflight $i four words" >"$T/inflight.$i" & pids+=($!); done
streaming() { [ "$(grep -l '^inflight' "$T"/inflight.* | wc -l)" -ge 2 ]; }
wait_for 20 streaming || fail "two chats never streamed at once"
touch "$T/inflight.go"
for p in "${pids[@]}"; do wait "$p" || fail "an inflight chat failed"; done
[ "$(wc -l <"$T/all.req")" = 8 ] || fail "inflight: $(wc -l <"$T/all.req") requests"
[ "$(max_overlap "$T/all.req")" = 2 ] || fail "max_inflight=2: overlap $(max_overlap "$T/all.req")"
# A server that exits between chat's read of its row and the connect is gone, not a damaged row
# (exit 5, not 1; the soak found a chat racing a stop calling a sound row damaged).
llmctl stop --all -q
llmctl start a >/dev/null
apid=$(ps_field a pid)
rm -f "$T/notify" "$T/notify.release"
LLMCTL_FAULT_NOTIFY="$T/notify" LLMCTL_FAULT=chat-row-read:hold "$LLMCTL_BIN" chat a "late" >"$T/late.out" 2>"$T/late.err" &
late=$!
wait_for 10 grep -sqx chat-row-read "$T/notify" || fail "chat never reached its row read"
kill -KILL "$apid"
wait_for 10 eval '! alive $apid' || fail "server $apid still alive"
touch "$T/notify.release"
rc=0; wait $late || rc=$?
[ $rc -eq 5 ] || fail "chat whose server exited: exit $rc, want 5: $(cat "$T/late.err")"
grep -q "a's server (pid $apid) exited before it could be used" "$T/late.err" || fail "exited server: $(cat "$T/late.err")"
echo "chat: ok"
