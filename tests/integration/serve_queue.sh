# The queue's limits in `llmctl serve`: past --max-queue waiting requests (counted over every serve
# and chat of the state dir) a request gets 429 with Retry-After at once; past a model's
# queue_timeout a waiting request gets 503 with Retry-After; both in OpenAI's error form, and
# neither leaves its lease behind.
. "$TEST_LIB"
# At exit, first the whole tree of each background job: a client's curl or chat runs under a
# subshell, and a chat that outlived the test would start its model again.
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
mock_config
# Each stream pauses after its first token until its model's go file exists: a held slot.
mock_model q --reply-tokens 3 --hold-until "$T/go-q"
config_add 'max_concurrent = 1'
mock_model t --reply-tokens 3 --hold-until "$T/go-t"
config_add 'max_concurrent = 1' 'queue_timeout = "1s"'
# serve_at PORT [ARG...]: start_serve on a port that nothing holds (a stale serve's /health would
# pass for ours).
serve_at() { ! port_open "$1" || fail "port $1 is already taken"; start_serve "$@"; }
serve_at $((PORT_BASE + 50)) --max-queue 5
url_a=$SERVE_URL
serve_at $((PORT_BASE + 51)) --max-queue 5
url_b=$SERVE_URL
llmctl start q >/dev/null
llmctl start t >/dev/null

# send NAME URL MODEL TEXT [STREAM]: a chat request; $T/NAME.code (HTTP code, then the time it took
# in ms), $T/NAME.head (the response's headers) and $T/NAME.body.
send() {
  local t0 code
  t0=$(date +%s%N)
  code=$(curl -sN -m 30 -D "$T/$1.head" -o "$T/$1.body" -w '%{http_code}' "$2/v1/chat/completions" -d "$(chat_body "$3" "$4" "${5:-false}")") || true
  printf '%s %s\n' "$code" $(( ($(date +%s%N) - t0) / 1000000 )) >"$T/$1.code"
}
code_of() { cut -d' ' -f1 "$T/$1.code"; }
ms_of() { cut -d' ' -f2 "$T/$1.code"; }
# expect_error NAME STATUS TYPE CODE: the answer NAME is HTTP STATUS with a Retry-After of whole
# seconds and an OpenAI error body {"error": {"message", "type", "code"}}.
expect_error() {
  [ "$(code_of "$1")" = "$2" ] || fail "$1: HTTP $(code_of "$1"), want $2: $(cat "$T/$1.body")"
  grep -qiE '^retry-after: [1-9][0-9]*'$'\r''?$' "$T/$1.head" || fail "$1: no Retry-After: $(cat "$T/$1.head")"
  grep -qi '^content-type: application/json' "$T/$1.head" || fail "$1: not JSON: $(cat "$T/$1.head")"
  python3 -c 'import json,sys
e = json.load(open(sys.argv[1]))["error"]
assert isinstance(e["message"], str) and e["message"], "no message"
assert e["type"] == sys.argv[2], "type %r" % e["type"]
assert e["code"] == sys.argv[3], "code %r" % e["code"]' "$T/$1.body" "$3" "$4" 2>"$T/$1.why" \
    || fail "$1: not an OpenAI error ($(tail -1 "$T/$1.why")): $(cat "$T/$1.body")"
}
# expect_answer NAME: the answer NAME is HTTP 200 with the mock's 3 tokens.
expect_answer() {
  [ "$(code_of "$1")" = 200 ] || fail "$1: HTTP $(code_of "$1"): $(cat "$T/$1.body")"
  local text
  if grep -q '^data: ' "$T/$1.body"; then text=$(sse_text <"$T/$1.body"); else text=$(json_get choices.0.message.content <"$T/$1.body"); fi
  [ "$text" = "tok0 tok1 tok2" ] || fail "$1: answer '$text'"
}

# 1. --max-queue 5: q's slot held, 5 requests wait (2 through each serve, 1 chat); the 6th,
# through either serve, streaming or not, is refused at once.
send hold "$url_a" q "holder" true &
hold=$!
wait_for 20 field_is q active 1 || fail "the holder never got q's slot: $(llmctl ps)"
pids=()
for i in 1 2 3 4; do
  [ $((i % 2)) = 1 ] && url=$url_a || url=$url_b
  send "wait$i" "$url" q "waiter $i" &
  pids+=($!)
done
timeout 60 "$LLMCTL_BIN" chat q "waiter 5" >"$T/chat.out" 2>"$T/chat.err" &
chat=$!
wait_for 20 field_is q queued 5 || fail "5 requests never queued: $(llmctl ps)"
send full_a "$url_a" q "one too many"
expect_error full_a 429 rate_limit_error queue_full
send full_b "$url_b" q "one too many" true
expect_error full_b 429 rate_limit_error queue_full
[ "$(ms_of full_b)" -lt 5000 ] || fail "the 429 took $(ms_of full_b) ms"
# The refused left no lease; the waiting are still there.
[ "$(ps_field q queued)" = 5 ] && [ "$(ps_field q active)" = 1 ] || fail "after the 429s: $(llmctl ps)"
# Another model's queue is its own.
send other "$url_a" t "another model"
expect_answer other
touch "$T/go-q"
wait "$hold"
expect_answer hold
for p in "${pids[@]}"; do wait "$p"; done
for i in 1 2 3 4; do expect_answer "wait$i"; done
wait "$chat" || fail "the waiting chat failed: $(cat "$T/chat.err")"
[ "$(cat "$T/chat.out")" = "tok0 tok1 tok2" ] || fail "the waiting chat got: $(cat "$T/chat.out")"
[ "$(ps_field q queued)" = 0 ] && [ "$(ps_field q active)" = 0 ] || fail "leases left on q: $(llmctl ps)"
# Room again: a request goes through.
send again "$url_b" q "again"
expect_answer again

# 2. queue_timeout = "1s": t's slot held, a whole and a streaming request wait and get 503
# after 1 to 3 s.
send hold_t "$url_b" t "holder" true &
hold=$!
wait_for 20 field_is t active 1 || fail "the holder never got t's slot: $(llmctl ps)"
send late_a "$url_a" t "late whole" &
late_a=$!
send late_b "$url_b" t "late stream" true &
late_b=$!
wait "$late_a" "$late_b"
for n in late_a late_b; do
  expect_error $n 503 server_error queue_timeout
  ms=$(ms_of $n)
  [ "$ms" -ge 1000 ] && [ "$ms" -le 3000 ] || fail "$n: the 503 came after $ms ms, want 1000..3000"
done
[ "$(ps_field t queued)" = 0 ] && [ "$(ps_field t active)" = 1 ] || fail "after the 503s: $(llmctl ps)"
touch "$T/go-t"
wait "$hold"
expect_answer hold_t
[ "$(ps_field t active)" = 0 ] || fail "leases left on t: $(llmctl ps)"
echo "serve_queue: ok"
