# max_concurrent across processes: 30 concurrent streams through 2 `llmctl serve` processes and
# `llmctl chat` calls never overlap more than 2 at the upstream (the mock's request log), and
# queued clients start upstream in the order they queued (FIFO by lease id).
. "$TEST_LIB"
# At exit, first the whole tree of each background job: a client's curl or chat runs under a
# subshell, and a chat that outlived the test would start its model again.
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
mock_config
# m: slow enough (10 tokens at 40/s, 0.25 s a stream) that the 30 requests pile up.
mock_model m --tokens-per-second 40 --reply-tokens 10 --request-log "$T/m.log"
config_add 'max_concurrent = 2'
# f: every stream pauses after its first token until $T/go exists, then takes 0.4 s: a client
# granted its slot may take a while to send its request (a chat under ASan on a loaded machine
# took 160 ms), and at 100 tokens/s two later clients could pass it through the other slot.
mock_model f --tokens-per-second 10 --reply-tokens 5 --hold-until "$T/go" --request-log "$T/f.log"
config_add 'max_concurrent = 2'
# serve_at PORT [ARG...]: start_serve on a port that nothing holds (a stale serve's /health would
# pass for ours).
serve_at() { ! port_open "$1" || fail "port $1 is already taken"; start_serve "$@"; }
serve_at $((PORT_BASE + 50))
url_a=$SERVE_URL
serve_at $((PORT_BASE + 51))
url_b=$SERVE_URL
llmctl start m >/dev/null
llmctl start f >/dev/null

# stream_to URL MODEL TEXT OUT: one streamed chat through serve; the HTTP code, then the text, in OUT.
stream_to() {
  local code
  code=$(curl -sN -m 60 -o "$4.sse" -w '%{http_code}' "$1/v1/chat/completions" -d "$(chat_body "$2" "$3" true)") || true
  { echo "$code"; sse_text <"$4.sse"; } >"$4"
}
# client I MODEL TEXT: client I goes through serve A, serve B or llmctl chat (I % 3), output in $T/out.I.
client() {
  case $(($1 % 3)) in
    0) stream_to "$url_a" "$2" "$3" "$T/out.$1" ;;
    1) stream_to "$url_b" "$2" "$3" "$T/out.$1" ;;
    2) if timeout 60 "$LLMCTL_BIN" chat "$2" "$3" >"$T/chat.$1" 2>"$T/chat.$1.err"; then echo 200; else echo "chat failed: $(cat "$T/chat.$1.err")"; fi >"$T/out.$1"
       cat "$T/chat.$1" >>"$T/out.$1" ;;
  esac
}
# expect_ok I: client I got HTTP 200 and the mock's 10-token or 5-token answer.
expect_ok() {
  [ "$(head -1 "$T/out.$1")" = 200 ] || fail "client $1: $(cat "$T/out.$1")"
  tail -n +2 "$T/out.$1" | grep -q '^tok0 tok1 tok2 tok3 tok4' || fail "client $1 answer: $(cat "$T/out.$1")"
}

# 1. 30 streams at once over m: 10 through each serve, 10 chats.
pids=()
for i in $(seq 0 29); do
  client "$i" m "overlap $i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq 0 29); do expect_ok "$i"; done
[ "$(wc -l <"$T/m.log")" = 30 ] || fail "the mock logged $(wc -l <"$T/m.log") requests, want 30"
for i in $(seq 0 29); do grep -q "\"overlap $i\"\$" "$T/m.log" || fail "request $i is not in the mock's log"; done
overlap=$(max_overlap "$T/m.log")
[ "$overlap" -le 2 ] || fail "$overlap requests overlapped at the upstream, max_concurrent is 2: $(sort -n "$T/m.log")"
# ...and the slots were used: 30 requests of 0.25 s did not go one at a time.
[ "$overlap" = 2 ] || fail "never 2 requests at once at the upstream (max overlap $overlap)"
[ "$(ps_field m active)" = 0 ] && [ "$(ps_field m queued)" = 0 ] || fail "leases left behind: $(llmctl ps)"

# 2. FIFO: two streams hold f's slots (paused after their first token), then 9 clients queue,
# each launched once the previous one shows in the queue; they reach the upstream in that order.
pids=()
client 100 f "fifo hold 0" &
pids+=($!)
client 101 f "fifo hold 1" &
pids+=($!)
wait_for 20 field_is f active 2 || fail "the 2 holders never got f's slots: $(llmctl ps)"
for k in $(seq 1 9); do
  client $((k + 2)) f "fifo $k" &
  pids+=($!)
  wait_for 20 field_is f queued "$k" || fail "client $k never queued: $(llmctl ps)"
done
[ "$(ps_field f active)" = 2 ] || fail "a queued client was let through: $(llmctl ps)"
touch "$T/go"
for p in "${pids[@]}"; do wait "$p"; done
for i in 100 101 $(seq 3 11); do expect_ok "$i"; done
# The order the upstream saw them start; the holders first.
python3 -c 'import json,sys
rows = sorted((int(l.split()[0]), json.loads(l.split(None, 4)[4])) for l in open(sys.argv[1]))
order = [t for _, t in rows]
print(" / ".join(order))
assert sorted(order[:2]) == ["fifo hold 0", "fifo hold 1"], "the holders did not start first"
got = [int(t.split()[1]) for t in order[2:]]
assert sorted(got) == list(range(1, 10)), "not every queued client reached the upstream"
# Two slots: two that were granted at nearly the same moment may swap, nothing further.
for pos, k in enumerate(got, 1):
    assert abs(pos - k) <= 1, "client %d started upstream as number %d" % (k, pos)' "$T/f.log" >"$T/fifo.order" 2>&1 \
  || fail "FIFO order broken: $(cat "$T/fifo.order")"
overlap=$(max_overlap "$T/f.log")
[ "$overlap" -le 2 ] || fail "$overlap requests of f overlapped at the upstream"
echo "serve_slots: ok"
