# llmctl stop MODEL while llmctl serve streams from it: the 4 streams in flight end in full, then
# the server exits; requests that arrive during the stop wait, start the model again and get
# their answers from the new server.
. "$TEST_LIB"
mock_config
# 30 tokens at 10 a second: streams of 3 s.
mock_model m --tokens-per-second 10 --reply-tokens 30 --request-log "$T/requests.log"
config_add 'max_concurrent = 4'
mock_model slow --startup-delay 2s
config_add 'max_concurrent = 3' 'drain_timeout = "30s"'
start_serve $((PORT_BASE + 50))
llmctl start m >/dev/null
old_pid=$(ps_field m pid)
full="$(seq -s ' ' -f 'tok%g' 0 29)"

for i in 1 2 3 4; do
  curl -sN --max-time 60 "$SERVE_URL/v1/chat/completions" -d "$(chat_body m "drain $i" true)" >"$T/s.$i" &
done
begun() { [ "$(grep -l '^data: {.*tok1' "$T"/s.? 2>/dev/null | wc -l)" = 4 ]; }
wait_for 20 begun || fail "the 4 streams did not begin: $(grep -c 'tok' "$T"/s.? || true)"
"$LLMCTL_BIN" stop m >"$T/stop.out" 2>"$T/stop.err" &
stop=$!
stopping() { [ "$(ps_field m status)" = stopping ]; }
wait_for 10 stopping || fail "m is not stopping: $(llmctl ps)"
# Two requests arrive during the stop (one whole answer, one stream): they wait.
for j in 1 2; do
  stream=false
  [ $j = 2 ] && stream=true
  curl -sN --max-time 60 -o "$T/late.$j" -w '%{http_code}' "$SERVE_URL/v1/chat/completions" \
    -d "{\"model\":\"m\",\"max_tokens\":3,\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"late $j\"}]}" >"$T/late.$j.status" &
  eval "late$j=\$!"
done
# They queue (a waiting lease each) while the stop still drains.
waiting() {
  [ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True).execute("SELECT count(*) FROM leases WHERE model=? AND state=?", ("m", "waiting")).fetchone()[0])' "$LLMCTL_HOME/state.db")" = 2 ]
}
wait_for 10 waiting || fail "the late requests did not queue"
alive $stop || fail "stop returned while 4 streams were in flight: $(cat "$T/stop.err")"
rc=0; wait $stop || rc=$?
[ $rc = 0 ] || fail "stop exited $rc: $(cat "$T/stop.err")"
# Every stream is whole: each token, then [DONE].
for i in 1 2 3 4; do
  [ "$(sse_text <"$T/s.$i")" = "$full" ] || fail "stream $i cut by the stop: $(sse_text <"$T/s.$i")"
  grep -qx 'data: \[DONE\]' "$T/s.$i" || fail "stream $i has no [DONE]"
done
wait_for 10 eval '! alive $old_pid' || fail "the server (pid $old_pid) still runs after stop"
# The old server saw only the 4 streams, each of them to its end before the server went.
[ "$(awk -v p=$old_pid '$3 == p' "$T/requests.log" | wc -l)" = 4 ] || fail "the old server's requests: $(cat "$T/requests.log")"

# The requests that came during the stop start m again and get their answers from it.
for j in 1 2; do
  rc=0; eval "wait \$late$j" || rc=$?
  [ $rc = 0 ] && [ "$(cat "$T/late.$j.status")" = 200 ] || fail "late request $j: rc $rc, HTTP $(cat "$T/late.$j.status"): $(cat "$T/late.$j")"
done
[ "$(json_get choices.0.message.content <"$T/late.1")" = "tok0 tok1 tok2 " ] || fail "late 1: $(cat "$T/late.1")"
[ "$(sse_text <"$T/late.2")" = "tok0 tok1 tok2 " ] || fail "late 2: $(cat "$T/late.2")"
[ "$(ps_field m status)" = running ] || fail "m does not run again: $(llmctl ps)"
new_pid=$(ps_field m pid)
[ "$new_pid" != "$old_pid" ] && alive "$new_pid" || fail "no new server: pid $new_pid (old $old_pid)"
for j in 1 2; do
  grep -q " \"late $j\"\$" "$T/requests.log" || fail "late $j not in the request log: $(cat "$T/requests.log")"
  [ "$(grep " \"late $j\"\$" "$T/requests.log" | cut -d' ' -f3)" = "$new_pid" ] || fail "late $j not served by the new server: $(cat "$T/requests.log")"
done

# A stop while requests wait for their model to start does not wait for them (they hold no
# slot yet: a waiting lease, not an active one); they start it again afterwards.
slow_pids=()
for i in 1 2 3; do
  curl -s -m 60 -o "$T/slow.$i" -w '%{http_code}' "$SERVE_URL/v1/chat/completions" -d "$(chat_body slow "slow $i")" >"$T/slow.$i.status" &
  slow_pids+=($!)
done
wait_for 20 sh -c "'$LLMCTL_BIN' ps --json | grep -q '\"starting\"'" || fail "slow never started: $(llmctl ps)"
began=$(date +%s%N)
expect_rc 0 llmctl stop slow
took=$(( ($(date +%s%N) - began) / 1000000 ))
[ $took -lt 10000 ] || fail "stop during the start took ${took} ms: it waited for requests that hold no slot ($ERR)"
for p in "${slow_pids[@]}"; do wait "$p" || true; done
for i in 1 2 3; do
  [ "$(cat "$T/slow.$i.status")" = 200 ] && [ "$(json_get choices.0.message.content <"$T/slow.$i")" = "slow $i" ] ||
    fail "slow request $i: HTTP $(cat "$T/slow.$i.status"): $(cat "$T/slow.$i")"
done
echo "serve_drain: ok"
