# llmctl serve and a client that goes away: a stream's client closing mid-stream frees its slot
# (the mock sees the early close, the lease row goes, the request queued behind it starts) within
# 5 s; a client leaving while it waits in the queue takes its waiting lease with it.
. "$TEST_LIB"
mock_config
# 300 tokens at 5 a second: a stream of 60 s, far longer than any wait below.
mock_model slow --tokens-per-second 5 --reply-tokens 300
config_add 'max_concurrent = 1'
port=$((PORT_BASE + 50))
start_serve $port
db="$LLMCTL_HOME/state.db"
# sql QUERY: its rows, columns joined by "|"; never creates the state file (fails without one).
sql() {
  [ -f "$db" ] || return 1
  python3 -c 'import sqlite3,sys; [print("|".join(map(str, r))) for r in sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True).execute(sys.argv[2])]' "$db" "$1"
}
leases() { sql "SELECT id, state FROM leases WHERE model='slow' ORDER BY id" | tr '\n' ' '; }
# count_is N [WHERE...]: the number of lease rows (matching WHERE) is N.
count_is() { [ "$(sql "SELECT count(*) FROM leases ${2:+WHERE $2}")" = "$1" ]; }
# stream TAG: a streaming request through serve, a background job (PID in CLIENT), its output in $T/TAG.
stream() {
  curl -sN --max-time 120 "$SERVE_URL/v1/chat/completions" -d "$(chat_body slow "$1" true)" >"$T/$1" &
  CLIENT=$!
}
got_tokens() { grep -q '^data: {.*tok1' "$T/$1" 2>/dev/null; }
llmctl start slow >/dev/null
log_path=$(ps_field slow log_path)
[ -f "$log_path" ] || fail "no log at '$log_path'"

# The first stream holds the one slot; the second waits behind it.
stream first
first=$CLIENT
wait_for 20 got_tokens first || fail "the first stream did not begin: $(cat "$T/first")"
stream second
second=$CLIENT
wait_for 20 count_is 1 "state='waiting'" ||
  fail "the second request never queued: leases $(leases)"
set -- $(leases)
[ $# = 2 ] && [ "${1#*|}" = active ] && [ "${2#*|}" = waiting ] || fail "leases before the close: $(leases)"
first_lease=${1%|*}
second_lease=${2%|*}
sleep 1 # the queued request must really wait: one more second, and it has still not started
[ "$(grep -c '^data: {' "$T/second" || true)" = 0 ] || fail "the second stream began while the first held the slot: $(cat "$T/second")"
! grep -q 'client closed stream early' "$log_path" || fail "an early close logged before any client closed: $(cat "$log_path")"

# The first client goes (its socket closed by the kernel, as on a crash or a closed tab).
kill -KILL $first
wait $first 2>/dev/null || true
closed_at=$(date +%s%N)
freed() {
  grep -q 'client closed stream early' "$log_path" &&
    count_is 0 "id=$first_lease" &&
    [ "$(sql "SELECT state FROM leases WHERE id=$second_lease")" = active ] &&
    got_tokens second
}
if ! wait_for 5 freed; then
  fail "5 s after the client closed: early close logged: $(grep -c 'client closed stream early' "$log_path" || true);" \
    "leases (first was $first_lease): $(leases); second stream: $(head -c 300 "$T/second")"
fi
echo "freed in $(( ($(date +%s%N) - closed_at) / 1000000 )) ms"
grep -q 'model=slow status=200 .*error="the client closed the connection"' "$T/serve.$port.log" ||
  fail "serve's access log does not say the client closed: $(cat "$T/serve.$port.log")"

# A client that leaves while queued: its waiting lease goes too, and the stream that holds the
# slot goes on.
stream third
third=$CLIENT
wait_for 20 count_is 1 "state='waiting'" ||
  fail "the third request never queued: leases $(leases)"
kill -KILL $third
wait $third 2>/dev/null || true
wait_for 5 count_is 1 ||
  fail "the queued client's lease stayed after it left: leases $(leases)"
[ "$(sql "SELECT state FROM leases WHERE id=$second_lease")" = active ] || fail "the holder lost its slot: $(leases)"
alive $second || fail "the second stream ended: $(tail -c 300 "$T/second")"

# The last client goes: no lease left.
kill -KILL $second
wait $second 2>/dev/null || true
wait_for 5 count_is 0 ||
  fail "leases left after every client left: $(leases)"
closes_are() { [ "$(grep -c 'client closed stream early' "$log_path")" = "$1" ]; }
wait_for 5 closes_are 2 || fail "the mock did not see both early closes: $(cat "$log_path")"
echo "serve_disconnect: ok"
