# The cap in force is the one recorded on the server's row when it started: a serve with an older
# config and chats with a newer one enforce that one number; a restart picks up the change.
. "$TEST_LIB"
# At exit, first the whole tree of each background job (a chat under a subshell would start its
# model again after the test's stop).
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
# cap_config N HOLD LOG: model m, whose streams pause after their first token until HOLD exists.
cap_config() {
  mock_config
  mock_model m --tokens-per-second 100 --reply-tokens 3 --hold-until "$1" --request-log "$2"
  config_add "max_concurrent = $3"
}
cap_config "$T/go1" "$T/m1.log" 1
port=$((PORT_BASE + 50))
! port_open $port || fail "port $port is already taken"
start_serve $port # reads max_concurrent = 1, and keeps it
llmctl start m >/dev/null
[ "$(ps_field m recorded_max_concurrent)" = 1 ] || fail "the cap is not recorded: $(llmctl ps --json)"

# The config now says 3 (and, for the next start, another hold file and log); the running server
# was started with 1.
cap_config "$T/go2" "$T/m2.log" 3
[ "$(ps_field m max_concurrent)" = 3 ] || fail "ps does not show the config's max_concurrent: $(llmctl ps --json)"
stream() { curl -sN -m 60 -o "$T/out.$1" "$SERVE_URL/v1/chat/completions" -d "$(chat_body m "cap $1" true)"; }
chat() { timeout 60 "$LLMCTL_BIN" chat m "cap $1" >"$T/out.$1" 2>"$T/err.$1"; }

# Two requests through serve (its config: 1) and two chats (theirs: 3): one at a time.
pids=()
stream a & pids+=($!)
chat b & pids+=($!)
stream c & pids+=($!)
chat d & pids+=($!)
wait_for 30 field_is m queued 3 || fail "the four clients never showed 1 active + 3 queued: $(llmctl ps)"
[ "$(ps_field m active)" = 1 ] || fail "more than the recorded cap is active: $(llmctl ps)"
llmctl ps | grep -q '^m .* 1/1 +3 queued ' || fail "ps SLOTS does not show the recorded cap: $(llmctl ps)"
touch "$T/go1"
for p in "${pids[@]}"; do wait "$p" || fail "a client failed: $(cat "$T"/err.* 2>/dev/null)"; done
[ "$(wc -l <"$T/m1.log")" = 4 ] || fail "the mock logged $(wc -l <"$T/m1.log") requests, want 4"
[ "$(max_overlap "$T/m1.log")" = 1 ] || fail "requests overlapped at the upstream under the recorded cap 1: $(cat "$T/m1.log")"

# restart records the config's 3, which the serve (still reading 1) now enforces too.
llmctl restart m >/dev/null
[ "$(ps_field m recorded_max_concurrent)" = 3 ] || fail "restart did not record the new cap: $(llmctl ps --json)"
pids=()
for k in e f g h; do
  stream $k & pids+=($!)
done
wait_for 30 field_is m active 3 || fail "serve did not let 3 requests run under the recorded cap 3: $(llmctl ps)"
wait_for 30 field_is m queued 1 || fail "the fourth request is not queued: $(llmctl ps)"
touch "$T/go2"
for p in "${pids[@]}"; do wait "$p" || fail "a stream failed"; done
for k in a b c d e f g h; do grep -q 'tok0' "$T/out.$k" || fail "client $k got no answer: $(cat "$T/out.$k")"; done
[ "$(max_overlap "$T/m2.log")" = 3 ] || fail "after the restart, not 3 at once at the upstream: $(cat "$T/m2.log")"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "serve did not exit 0"
echo "serve_cap: ok"
