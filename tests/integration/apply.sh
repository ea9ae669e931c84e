# apply (issue 20): after one model's arguments change, apply restarts only that server, once a
# chat streaming on it has finished; a removed model's server is stopped; an ad-hoc server and a
# server of another config file are untouched; --dry-run changes nothing. Keep warm: preload
# models are started by apply, reap and serve; stop holds one down (ps: stopped (held)) until
# start or apply lets it go.
. "$TEST_LIB"
spawns() { sqlite3 "$LLMCTL_HOME/state.db" "SELECT COUNT(*) FROM events WHERE server='$1' AND kind='spawned'"; }
# write_config TWO_EXTRA: the config, with TWO_EXTRA appended to two's arguments; `gone` only
# while TWO_EXTRA is empty (the edit that changes two also removes gone).
write_config() {
  mock_config
  mock_model one
  mock_model two --reply-tokens 30 --tokens-per-second 20 $1
  [ -n "$1" ] || mock_model gone
  mock_model warm
  config_add 'preload = true'
}
write_config ""
other="$T/other.toml"
printf '[defaults]\nport_range = [%d, %d]\n[models.other]\ncommand = ["%s", "--port", "{port}"]\n' \
  $((PORT_BASE + 21)) $((PORT_BASE + 25)) "$MOCK_BIN" >"$other"

for m in one two gone; do llmctl start "$m" -q >/dev/null; done
llmctl --config "$other" start other -q >/dev/null
llmctl start adhoc -q -- "$MOCK_BIN" --port '{port}' >/dev/null
pids() { for m in one two gone other adhoc warm; do printf '%s=%s ' "$m" "$(ps_field $m pid)"; done; }
before=$(pids)

# Nothing changed but warm (preload, not running): the plan says so, --dry-run does nothing.
expect_rc 0 llmctl apply --dry-run
echo "$OUT" | grep -q '^  start  *warm  *preload = true$' || fail "dry-run plan: $OUT"
echo "$OUT" | grep -q '^1 change; 3 servers unchanged; 2 ad-hoc or other config.s left alone$' || fail "dry-run summary: $OUT"
[ "$(pids)" = "$before" ] || fail "--dry-run changed something: $(pids) (was $before)"

# The edit: two's arguments change, gone leaves the file.
write_config "--model-name two2"
expect_rc 0 llmctl apply --dry-run --json
echo "$OUT" | python3 -c 'import json,sys
steps = sorted((s["action"], s["name"]) for s in json.load(sys.stdin))
assert steps == [("restart", "two"), ("start", "warm"), ("stop", "gone")], steps' || fail "dry-run --json: $OUT"
[ "$(pids)" = "$before" ] || fail "--dry-run changed something: $(pids) (was $before)"

# A chat streams on two (30 tokens at 20/s) while apply runs: it completes on the old server.
llmctl chat two "hello" >"$T/chat.out" 2>"$T/chat.err" &
chat=$!
streaming() { [ "$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT COUNT(*) FROM leases WHERE model='two' AND state='active'")" = 1 ]; }
wait_for 10 streaming || fail "the chat never took its slot"
two_before=$(ps_field two pid)
expect_rc 0 llmctl apply
wait "$chat" || fail "the chat failed during apply: $(cat "$T/chat.err")"
grep -q 'tok29' "$T/chat.out" || fail "the chat was cut: $(cat "$T/chat.out")"
echo "$OUT" | grep -q '^restart two: http://' || fail "apply: $OUT"
echo "$OUT" | grep -q '^stop gone: stopped$' || fail "apply: $OUT"
echo "$OUT" | grep -q '^start warm: started on port ' || fail "apply: $OUT"
for m in one other adhoc; do
  [ "$(ps_field $m pid)" = "$(echo "$before" | grep -ow "$m=[0-9]*" | cut -d= -f2)" ] || fail "apply touched $m: $(pids) (was $before)"
done
[ "$(ps_field two pid)" != "$two_before" ] && [ "$(ps_field two status)" = running ] || fail "two was not restarted: $(llmctl ps)"
[ "$(ps_field gone status)" = "" ] || fail "gone still runs: $(llmctl ps)"
[ "$(ps_field warm status)" = running ] || fail "warm did not start: $(llmctl ps)"
# The stop of the old two waited for the chat: its `stopped` event comes after the chat's end.
expect_rc 0 llmctl apply
echo "$OUT" | grep -q '^0 changes; 3 servers unchanged; 2 ad-hoc or other config.s left alone$' || fail "a second apply: $OUT"

# stop holds a preload model down: not brought back by reap, shown held, let go by start.
expect_rc 0 llmctl stop warm
expect_rc 0 llmctl ps
echo "$OUT" | grep -q '^warm  *stopped (held) ' || fail "ps: $OUT"
[ "$(ps_field warm held)" = True ] || fail "ps --json: $(llmctl ps --json)"
n=$(spawns warm)
expect_rc 0 llmctl reap
[ "$(spawns warm)" = "$n" ] || fail "reap started a held model: $OUT"
expect_rc 0 llmctl start warm
[ "$(ps_field warm status)" = running ] || fail "start did not start it: $(llmctl ps)"
! llmctl ps | grep -q held || fail "start did not let go: $(llmctl ps)"
# ... and apply lets it go too.
expect_rc 0 llmctl stop warm
expect_rc 0 llmctl apply
echo "$OUT" | grep -q '^  release  *warm  *held down by a stop$' || fail "apply plan: $OUT"
[ "$(ps_field warm status)" = running ] || fail "apply did not start warm again: $(llmctl ps)"

# reap starts a preload model that died (restart = "no": nothing else would).
wpid=$(ps_field warm pid)
kill -KILL "$wpid"
wait_for 10 field_is warm status dead || fail "warm is not dead: $(llmctl ps)"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q '^preload warm (pid [0-9]*): started on port ' || fail "reap: $OUT"
wait_for 10 field_is warm status running || fail "warm is not running after reap: $(llmctl ps)"

# serve starts it when it starts.
expect_rc 0 llmctl stop warm
expect_rc 0 llmctl start warm # (lets the hold go)
wpid=$(ps_field warm pid)
kill -KILL "$wpid"
wait_for 10 field_is warm status dead || fail "warm is not dead: $(llmctl ps)"
start_serve $((PORT_BASE + 30))
wait_for 20 field_is warm status running || fail "serve did not start warm: $(llmctl ps); $(cat "$T/serve.$((PORT_BASE + 30)).log")"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

llmctl --config "$other" stop other -q
echo ok
