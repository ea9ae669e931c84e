# A one-shot chat queues its lease before it asks for the server (as serve's requests do): while
# the server it started loads, the chat is already in the model's queue, so the new server is in
# use from its first moment (never idle, never reaped under it) and the chat keeps its place.
. "$TEST_LIB"
mock_config
mock_model slow --startup-delay 3s
config_add 'idle_timeout = "1s"'
llmctl chat slow 'first come' >"$T/answer" 2>"$T/chat.err" &
chat=$!
starting() { [ "$(ps_field slow status)" = starting ]; }
wait_for 20 starting || fail "the server never showed as starting: $(llmctl ps -a)"
[ "$(ps_field slow queued)" = 1 ] || fail "the chat's lease is not queued while its server starts: $(llmctl ps --json)"
# A reap meanwhile (idle_timeout 1s, the loading server unused for 1 s) leaves it alone.
until_=$(( $(date +%s) + 2 ))
while [ "$(date +%s)" -lt $until_ ] && starting; do llmctl reap -q >/dev/null; done
wait $chat || fail "the chat failed: $(cat "$T/chat.err")"
[ "$(cat "$T/answer")" = 'first come' ] || fail "answer: $(cat "$T/answer")"
[ "$(ps_field slow queued)" = 0 ] && [ "$(ps_field slow active)" = 0 ] || fail "a lease is left: $(llmctl ps --json)"
