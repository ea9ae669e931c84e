# kill -9 of llmctl serve with streams in flight: its slots are not lost (a request queued in
# another serve and a queued llmctl chat get them within 5 s; one llmctl reap leaves no lease
# row), and the servers it started keep running until llmctl stop.
. "$TEST_LIB"
mock_config
# 300 tokens at 5 a second: streams of 60 s, which only the kill ends.
mock_model many --tokens-per-second 5 --reply-tokens 300
config_add 'max_concurrent = 10' 'queue_timeout = "60s"'
mock_model one --tokens-per-second 5 --reply-tokens 300
config_add 'max_concurrent = 1' 'queue_timeout = "60s"'
db="$LLMCTL_HOME/state.db"
# sql QUERY: its rows, columns joined by "|"; never creates the state file (fails without one).
sql() {
  [ -f "$db" ] || return 1
  python3 -c 'import sqlite3,sys; [print("|".join(map(str, r))) for r in sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True).execute(sys.argv[2])]' "$db" "$1"
}
# count_is N [WHERE]: the number of lease rows (matching WHERE) is N.
count_is() { [ "$(sql "SELECT count(*) FROM leases ${2:+WHERE $2}")" = "$1" ]; }
leases() { sql "SELECT model, state, owner_pid FROM leases ORDER BY id" | tr '\n' ' '; }
port1=$((PORT_BASE + 50))
port2=$((PORT_BASE + 51))

# hold_slots ROUND: serve #1 with every slot of both models taken by a 60 s stream (10 of many,
# the one of one); its PID in S1.
hold_slots() {
  start_serve $port1
  S1=$SERVE_PID
  [ "$(cat /proc/$S1/comm)" = llmctl ] || fail "the job is not serve itself: $(cat /proc/$S1/comm)"
  local i
  for i in $(seq 1 10); do
    curl -sN "$SERVE_URL/v1/chat/completions" -d "$(chat_body many "r$1 many $i" true)" >"$T/r$1.many.$i" &
  done
  curl -sN "$SERVE_URL/v1/chat/completions" -d "$(chat_body one "r$1 one" true)" >"$T/r$1.one" &
  wait_for 30 count_is 11 "state='active' AND owner_pid=$S1" || fail "round $1: the 11 streams did not all take a slot: $(leases)"
  # ...and stream: every one has had tokens.
  wait_for 20 streaming $1 ||
    fail "round $1: not all 11 streams got tokens: $(grep -c '^data: {.*tok' "$T"/r$1.* || true)"
}
# streaming ROUND: each of the round's 11 streams has had tokens.
streaming() { [ "$(grep -l '^data: {.*tok1' "$T"/r$1.* 2>/dev/null | wc -l)" = 11 ]; }
running() { [ "$(ps_field many status)" = running ] && [ "$(ps_field one status)" = running ]; }

# 1. kill -9 with 11 streams in flight and nobody waiting: one reap removes every lease.
hold_slots 1
many_pid=$(ps_field many pid)
one_pid=$(ps_field one pid)
kill -KILL $S1
wait $S1 2>/dev/null || true
alive $S1 && fail "serve survived kill -9"
count_is 11 || fail "the dead serve's leases went before reap (nothing else ran): $(leases)"
expect_rc 0 llmctl reap
[ "$(echo "$OUT" | grep -c "^lease_reclaimed .* owner pid $S1 is gone")" = 11 ] || fail "reap did not reclaim 11 leases: $OUT"
count_is 0 || fail "lease rows left after one reap: $(leases)"
running || fail "the servers did not survive serve's kill -9: $(llmctl ps)"
alive $many_pid && alive $one_pid || fail "the servers' processes are gone"

# 2. The same, with a request waiting in another serve for one's slot and an llmctl chat
# waiting for one of many's: both get their slot within 5 s of the kill (queue_timeout 60 s).
hold_slots 2
start_serve $port2
S2=$SERVE_PID
curl -s -o "$T/via2" -w '%{http_code}' "$SERVE_URL/v1/chat/completions" \
  -d '{"model":"one","max_tokens":3,"messages":[{"role":"user","content":"via serve 2"}]}' >"$T/via2.status" &
via2=$!
"$LLMCTL_BIN" chat many --max-tokens 3 'via chat' >"$T/chat.out" 2>"$T/chat.err" &
chat=$!
wait_for 20 count_is 2 "state='waiting'" || fail "the two requests did not queue: $(leases)"
sleep 1 # they must really wait: a second on, both still queued behind the held slots
count_is 2 "state='waiting'" || fail "a request got a slot while serve #1 held them all: $(leases)"
alive $via2 && alive $chat || fail "a waiting request ended: $(cat "$T/via2.status" "$T/chat.err")"
kill -KILL $S1
wait $S1 2>/dev/null || true
killed_at=$(date +%s%N)
both_done() { ! alive $via2 && ! alive $chat; }
wait_for 5 both_done || fail "5 s after the kill: serve #2's request $(alive $via2 && echo still waits || echo ended)," \
  "the chat $(alive $chat && echo still waits || echo ended); leases: $(leases)"
echo "slots regained in $(( ($(date +%s%N) - killed_at) / 1000000 )) ms"
rc=0; wait $via2 || rc=$?
[ $rc = 0 ] && [ "$(cat "$T/via2.status")" = 200 ] || fail "serve #2's request: rc $rc, $(cat "$T/via2.status") $(cat "$T/via2")"
[ "$(json_get choices.0.message.content <"$T/via2")" = "tok0 tok1 tok2 " ] || fail "serve #2's answer: $(cat "$T/via2")"
rc=0; wait $chat || rc=$?
[ $rc = 0 ] || fail "the chat exited $rc: $(cat "$T/chat.err")"
grep -q 'tok0 tok1 tok2' "$T/chat.out" || fail "the chat's answer: $(cat "$T/chat.out")"
expect_rc 0 llmctl reap
count_is 0 || fail "lease rows left after one reap: $(leases)"

# The servers still run, the same processes, and stop stops them.
running || fail "the servers did not survive serve's kill -9: $(llmctl ps)"
[ "$(ps_field many pid)" = "$many_pid" ] && [ "$(ps_field one pid)" = "$one_pid" ] || fail "a server was replaced: $(llmctl ps)"
kill -TERM $S2
wait_for 30 eval '! alive $S2' || fail "serve #2 still runs 30 s after SIGTERM"
wait $S2 || fail "serve #2 did not exit 0 on SIGTERM"
expect_rc 0 llmctl stop many one
gone() { ! alive $many_pid && ! alive $one_pid; }
wait_for 10 gone || fail "a server still runs after stop"
[ -z "$(ps_field many status)$(ps_field one status)" ] || fail "rows left after stop: $(llmctl ps)"
[ "$(count_marked)" = 0 ] || fail "marked processes left: $(marked)"
echo "serve_kill: ok"
