# Drain: stop and restart let the chats in flight finish (the mock aborts like llama-server if
# SIGTERM arrives mid-request, so a missing drain cuts them), --force cuts them at once, chats
# queued during a restart run on the new server, and ps shows the slots and the drain.
. "$TEST_LIB"
tokens=40
expected=$(python3 -c "import sys; n=int(sys.argv[1]); print(' '.join('tok%d' % i for i in range(n)))" $tokens)
mock_config 'stop_timeout = "5s"'
mock_model five --reply-tokens "$tokens" --tokens-per-second 20 --abort-on-term-in-flight --stderr-only --hold-until "$T/five.go"
config_add 'max_concurrent = 5'
mock_model long --reply-tokens 2000 --tokens-per-second 20 --abort-on-term-in-flight --stderr-only
config_add 'max_concurrent = 5'
mock_model one --reply-tokens "$tokens" --tokens-per-second 10 --request-log "$T/one.req" --hold-until "$T/one.go"
config_add 'max_concurrent = 1'
ps_json() { llmctl ps --json; }
all_streaming() { # every output file named has at least one token
  local f
  for f in "$@"; do [ -s "$f" ] || return 1; done
}

# 1. Five chats streaming (held after their first token until the test has looked), then stop:
#    all five finish whole (exit 0), then the server exits.
expect_rc 0 llmctl start five
pid=$(ps_field five pid)
chats=()
for i in 1 2 3 4 5; do
  llmctl chat five "hi $i" >"$T/c$i.out" 2>"$T/c$i.err" &
  chats+=($!)
done
wait_for 20 all_streaming "$T"/c{1,2,3,4,5}.out || fail "the five chats did not all start streaming"
[ "$(ps_field five active)" = 5 ] && [ "$(ps_field five queued)" = 0 ] && [ "$(ps_field five max_concurrent)" = 5 ] \
  || fail "ps --json slots while 5 stream: $(ps_json)"
llmctl ps | grep -E "^five +running .* 5/5 +http" >/dev/null || fail "ps SLOTS while 5 stream: $(llmctl ps)"
llmctl stop five >"$T/stop.out" 2>"$T/stop.err" &
stopper=$!
in_flight() { llmctl ps | grep -E "^five +stopping \([1-5] in flight\)" >/dev/null; }
wait_for 10 in_flight || fail "ps never showed the drain: $(llmctl ps)"
expect_rc 4 llmctl chat five "late" --no-start
echo "$ERR" | grep "five is stopping" >/dev/null || fail "--no-start during a drain: $ERR"
alive "$pid" || fail "the server died during the drain"
touch "$T/five.go"
for i in 1 2 3 4 5; do
  rc=0; wait "${chats[$((i - 1))]}" || rc=$?
  [ $rc -eq 0 ] || fail "chat $i exited $rc during a drain: $(cat "$T/c$i.err")"
  [ "$(cat "$T/c$i.out")" = "$expected" ] || fail "chat $i reply cut: $(cat "$T/c$i.out")"
done
rc=0; wait $stopper || rc=$?
[ $rc -eq 0 ] || fail "stop exited $rc: $(cat "$T/stop.err")"
grep "draining five: 5 chat(s) in flight" "$T/stop.err" >/dev/null || fail "stop did not say it drains: $(cat "$T/stop.err")"
! alive "$pid" || fail "server $pid alive after stop"
! grep "terminate called" "$LLMCTL_HOME/logs/five.log" >/dev/null || fail "the server aborted: TERM came mid-request"
grep "received SIGTERM, exiting" "$LLMCTL_HOME/logs/five.log" >/dev/null || fail "no clean exit in the log"
[ -z "$(marked)" ] || fail "processes left: $(marked)"

# 2. --force: the chats are cut (the server aborts on TERM mid-request) and stop returns within
#    stop_timeout, not after the chats' 100 s.
expect_rc 0 llmctl start long
chats=()
for i in 1 2 3; do
  llmctl chat long "hi $i" >"$T/f$i.out" 2>"$T/f$i.err" &
  chats+=($!)
done
wait_for 20 all_streaming "$T"/f{1,2,3}.out || fail "the long chats did not start"
t0=$(date +%s%N)
expect_rc 0 llmctl stop --force long
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $elapsed_ms -lt 5000 ] || fail "stop --force took ${elapsed_ms} ms, stop_timeout is 5s"
for i in 1 2 3; do
  rc=0; wait "${chats[$((i - 1))]}" || rc=$?
  [ $rc -eq 5 ] || fail "chat $i exited $rc after stop --force, want 5 (cut): $(cat "$T/f$i.err")"
done
grep "terminate called" "$LLMCTL_HOME/logs/long.log" >/dev/null || fail "the forced stop did not cut a request in flight"

# 3. restart while one chat streams and three queue behind max_concurrent = 1: all four
#    complete, the first on the old server, the three queued ones on the new one.
expect_rc 0 llmctl start one
old=$(ps_field one pid)
llmctl chat one "q1" >"$T/q1.out" 2>"$T/q1.err" &
q1=$!
wait_for 10 all_streaming "$T/q1.out" || fail "q1 did not start"
queued=()
for i in 2 3 4; do
  llmctl chat one "q$i" >"$T/q$i.out" 2>"$T/q$i.err" &
  queued+=($!)
  wait_for 10 eval '[ "$(ps_field one queued)" = $((i - 1)) ]' || fail "q$i never queued: $(ps_json)"
done
[ "$(ps_field one active)" = 1 ] && [ "$(ps_field one queued)" = 3 ] && [ "$(ps_field one max_concurrent)" = 1 ] || fail "slots: $(ps_json)"
llmctl ps | grep -E "^one +running .* 1/1 \+3 queued +http" >/dev/null || fail "ps SLOTS: $(llmctl ps)"
llmctl restart one >"$T/restart.out" 2>"$T/restart.err" &
restarter=$!
draining_one() { llmctl ps | grep -E "^one +stopping \(1 in flight\)" >/dev/null; }
wait_for 10 draining_one || fail "the restart never drained q1: $(llmctl ps)"
touch "$T/one.go"   # q1 may finish now
rc=0; wait $restarter || rc=$?
[ $rc -eq 0 ] || fail "restart exited $rc: $(cat "$T/restart.err")"
# The queued chats get no slot on the draining server, so the drain ends with q1, not at
# drain_timeout (which would mean a queued chat took a slot on the old server and held it).
! grep "drain_timeout .* passed" "$T/restart.err" >/dev/null || fail "restart waited out drain_timeout: $(cat "$T/restart.err")"
new=$(ps_field one pid)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "restart kept pid $old"
rc=0; wait $q1 || rc=$?
[ $rc -eq 0 ] && [ "$(cat "$T/q1.out")" = "$expected" ] || fail "q1 (in flight at restart) exited $rc: $(cat "$T/q1.out") $(cat "$T/q1.err")"
for i in 2 3 4; do
  rc=0; wait "${queued[$((i - 2))]}" || rc=$?
  [ $rc -eq 0 ] || fail "queued q$i exited $rc: $(cat "$T/q$i.err")"
  [ "$(cat "$T/q$i.out")" = "$expected" ] || fail "q$i reply: $(cat "$T/q$i.out")"
done
# The request log: <start> <end> <server pid> <stream> <message>
server_of() { awk -v m="\"$1\"" '$5 == m { print $3 }' "$T/one.req"; }
[ "$(server_of q1)" = "$old" ] || fail "q1 ran on $(server_of q1), want the old server $old"
for i in 2 3 4; do [ "$(server_of q$i)" = "$new" ] || fail "q$i ran on $(server_of q$i), want the new server $new"; done
expect_rc 0 llmctl stop one
echo "drain: ok"
