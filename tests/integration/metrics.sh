# Prometheus metrics (issue 22): `llmctl metrics` and serve's GET /metrics pass `promtool check
# metrics` (Debian's prometheus package, unpacked by tests/tools/promtool-install.sh); after 10
# requests through serve and 2 CLI chats the counters moved by what was sent (requests by model
# and code, tokens in and out, from usage or counted chunks, histogram counts, events; a chat
# whose server could not start counts as serve's 503); a name a client made up is no label;
# metrics takes no lock and writes nothing; -o replaces its file whole.
. "$TEST_LIB"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BUILD_DIR:?the build dir, where the tools live}"
promtool=$(bash "$here/../tools/promtool-install.sh" "$BUILD_DIR") || fail "could not get promtool (see above)"
# check FILE: promtool's verdict on a metrics text (its lint warnings included: none allowed).
check() { "$promtool" check metrics <"$1" >"$T/promtool.out" 2>&1 || fail "promtool check metrics $1: $(cat "$T/promtool.out")"; }
# value FILE SERIES: the value of one series (name{labels} exactly), "" when absent.
value() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

mock_config
mock_model a --reply-tokens 4 --fail-on boom
config_add 'max_concurrent = 2'
mock_model b --reply-tokens 5 --no-usage
mock_model c --reply-tokens 400 --tokens-per-second 20
mock_model d --crash-at-start
expect_rc 0 llmctl metrics # no state file yet: the families, no samples
echo "$OUT" >"$T/empty.prom"
check "$T/empty.prom"
[ "$(value "$T/empty.prom" llmctl_state_file)" = 0 ] || fail "llmctl_state_file without a state file: $OUT"

start_serve $((PORT_BASE + 10))
# 10 requests: 4 streamed and 3 whole to a (usage: 2 tokens in, 4 out), 3 streamed to b (no
# usage: 5 chunks counted out); and one for a model nobody configured.
for i in 1 2 3 4; do curl -sfN "$SERVE_URL/v1/chat/completions" -d "$(chat_body a "one two" true)" >/dev/null || fail "stream $i to a"; done
for i in 1 2 3; do curl -sf "$SERVE_URL/v1/chat/completions" -d "$(chat_body a "one two")" >/dev/null || fail "request $i to a"; done
for i in 1 2 3; do curl -sfN "$SERVE_URL/v1/chat/completions" -d "$(chat_body b "one two" true)" >/dev/null || fail "stream $i to b"; done
code=$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v1/chat/completions" -d "$(chat_body made-up-name "x")")
[ "$code" = 404 ] || fail "an unknown model: HTTP $code"
expect_rc 0 llmctl chat a "one two"
expect_rc 0 llmctl chat a "one two"
# A GET through /upstream/ looks at the server: no request of it. A client that hangs up
# mid-stream: 499 (cancelled), with the tokens it was sent.
curl -sf "$SERVE_URL/upstream/a/health" >/dev/null || fail "GET /upstream/a/health"
curl -sN --max-time 1.5 "$SERVE_URL/v1/chat/completions" -d "$(chat_body c "one two" true)" >"$T/cut.out" || true
grep -q tok3 "$T/cut.out" || fail "the stream to c did not flow before the hang-up: $(cat "$T/cut.out")"

curl -sf "$SERVE_URL/metrics" -D "$T/serve.head" -o "$T/serve.prom" || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/serve.head" || fail "/metrics content type: $(cat "$T/serve.head")"
check "$T/serve.prom"
want() { # FILE SERIES VALUE
  [ "$(value "$1" "$2")" = "$3" ] || fail "$2 is '$(value "$1" "$2")', want $3 ($1): $(grep "${2%%\{*}" "$1" | grep -v '^#')"
}
s=$T/serve.prom
want "$s" 'llmctl_serve_requests_total{model="a",code="200"}' 7
want "$s" 'llmctl_serve_requests_total{model="b",code="200"}' 3
wait_for 10 eval 'curl -sf "$SERVE_URL/metrics" >"$s" && [ "$(value "$s" '"'"'llmctl_serve_requests_total{model="c",code="499"}'"'"')" = 1 ]' ||
  fail "the hung-up stream was not counted as 499: $(grep 'model="c"' "$s")"
[ "$(value "$s" 'llmctl_serve_tokens_total{model="c",direction="out"}')" -ge 3 ] || fail "the hung-up stream's tokens: $(grep 'model="c"' "$s")"
want "$s" 'llmctl_serve_requests_total{model="a",code="200"}' 7
want "$s" 'llmctl_serve_tokens_total{model="a",direction="in"}' 14
want "$s" 'llmctl_serve_tokens_total{model="a",direction="out"}' 28
want "$s" 'llmctl_serve_tokens_total{model="b",direction="in"}' 0
want "$s" 'llmctl_serve_tokens_total{model="b",direction="out"}' 15
want "$s" 'llmctl_serve_time_to_first_token_seconds_count{model="a"}' 7
want "$s" 'llmctl_serve_queue_wait_seconds_count{model="b"}' 3
want "$s" 'llmctl_serve_queue_wait_seconds_bucket{model="b",le="+Inf"}' 3
want "$s" 'llmctl_slots_limit{model="a"}' 2
want "$s" 'llmctl_server_up{model="a"}' 1
want "$s" 'llmctl_events_total{server="a",kind="spawned"}' 1
! grep -q made-up-name "$s" || fail "a model name a client made up became a label: $(grep made-up-name "$s")"

# The state's counters (every process's requests, written by serve at most a second later).
counted() { "$LLMCTL_BIN" metrics >"$T/state.prom" && [ "$(value "$T/state.prom" "$1")" = "$2" ]; }
wait_for 10 counted 'llmctl_requests_total{model="a",via="serve",code="200"}' 7 || fail "serve's requests never counted: $(grep requests_total "$T/state.prom")"
check "$T/state.prom"
m=$T/state.prom
want "$m" 'llmctl_requests_total{model="b",via="serve",code="200"}' 3
want "$m" 'llmctl_requests_total{model="a",via="chat",code="200"}' 2
want "$m" 'llmctl_tokens_total{model="a",via="serve",direction="out"}' 28
want "$m" 'llmctl_tokens_total{model="b",via="serve",direction="out"}' 15
want "$m" 'llmctl_tokens_total{model="a",via="chat",direction="in"}' 4
want "$m" 'llmctl_tokens_total{model="a",via="chat",direction="out"}' 8
want "$m" 'llmctl_events_total{server="b",kind="ready"}' 1
! grep -q made-up-name "$m" || fail "a made-up model name was counted"
# A failed chat counts under the server's status, one whose server could not start as serve's
# 503; a stop is an event; a stopped server has no row.
expect_rc 1 llmctl chat a "boom"
expect_rc 5 llmctl chat d "hello"
expect_rc 0 llmctl stop b
expect_rc 0 llmctl metrics
echo "$OUT" >"$T/after.prom"
want "$T/after.prom" 'llmctl_requests_total{model="a",via="chat",code="500"}' 1
want "$T/after.prom" 'llmctl_requests_total{model="d",via="chat",code="503"}' 1
want "$T/after.prom" 'llmctl_events_total{server="b",kind="stopped"}' 1
want "$T/after.prom" 'llmctl_server_up{model="b"}' ""

# No lock, no writes: with the state lock held elsewhere (and serve stopped: nothing else
# writes), metrics answers and the state file's bytes stay as they were.
kill -TERM $SERVE_PID
wait $SERVE_PID || true
before=$(state_bytes)
hold_state_lock
expect_rc 0 timeout 5 "$LLMCTL_BIN" metrics
[ "$(state_bytes)" = "$before" ] || fail "metrics wrote to the state file"
kill $HOLDER

# -o: the file replaced whole (what node_exporter's textfile collector reads); a path that cannot
# be written: exit 1 naming it.
expect_rc 0 llmctl metrics -o "$T/textfile.prom"
check "$T/textfile.prom"
[ -z "$(ls "$T" | grep 'textfile.prom.tmp')" ] || fail "metrics -o left its temporary file"
expect_rc 1 llmctl metrics -o "$T/no/such/dir/x.prom"
echo "$ERR" | grep -q "$T/no/such/dir/x.prom" || fail "metrics -o to a missing directory: $ERR"
expect_rc 2 llmctl metrics stray
echo "metrics: ok"
