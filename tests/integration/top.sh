# llmctl top (issue 22) on a real terminal (a private tmux server, read back with capture-pane):
# 3 servers with their slots while chats run, the TOK/S column updating, a stop of the selected
# server after the confirmation key (another key cancels), q quits; refreshing takes no lock and
# writes nothing; --once and a pipe get the view as text; llmctl itself maps no ncurses.
. "$TEST_LIB"
mock_config
for m in a b c; do mock_model $m --reply-tokens 10 --tokens-per-second 40; done
sock="llmctl-test-$$"
tm() { tmux -u -L "$sock" -f /dev/null "$@"; }
on_cleanup() { tm kill-server 2>/dev/null; }
for m in a b c; do expect_rc 0 llmctl start $m -q; done
# A chat after another on each model until $T/stop exists (each answer takes 0.25 s).
for m in a b c; do
  (while [ ! -e "$T/stop" ]; do "$LLMCTL_BIN" chat $m "hello" >/dev/null 2>&1 || true; done) &
done

tm new-session -d -s t -x 160 -y 45 "env LLMCTL_HOME=$LLMCTL_HOME LLMCTL_CONFIG=$LLMCTL_CONFIG LANG=C.UTF-8 TERM=tmux-256color $LLMCTL_BIN top; echo rc=\$?; exec cat"
pane() { tm capture-pane -p -t t | sed 's/ *$//'; }
# row NAME: NAME's line of the servers table.
row() { pane | grep -E "^ ?$1 +(running|stopping|starting)" | head -1; }
# slots NAME, toks NAME: its SLOTS and TOK/S columns, counted from the right (LAST EXIT is "-"
# for these servers; SLOTS is one word while nothing queues; RSS has a space).
slots() { row "$1" | awk '{print $(NF-2)}'; }
toks() { row "$1" | awk '{print $(NF-1)}'; }
wait_for 20 eval 'pane | grep -q "SERVERS (3)"' || fail "top never showed 3 servers: $(pane)"
for m in a b c; do
  wait_for 20 eval '[[ "$(slots '$m')" == 1/* ]]' || fail "top never showed $m's slot in use: $(pane)"
done
# TOK/S: 0.0 until answers end, then it grows as they do (the last minute's tokens / 60).
wait_for 20 eval '[ "$(toks a)" != 0.0 ] && [ -n "$(toks a)" ]' || fail "TOK/S of a never moved: $(pane)"
first=$(toks a)
wait_for 20 eval '[ "$(toks a)" != "$first" ]' || fail "TOK/S of a stayed $first: $(pane)"

# Down selects b; s asks; n cancels; s then y stops it (its chat drains first).
tm send-keys -t t Down
tm send-keys -t t s
wait_for 10 eval 'pane | grep -q "stop b? y to confirm"' || fail "no confirmation asked: $(pane)"
tm send-keys -t t n
wait_for 10 eval 'pane | grep -q "stop cancelled"' || fail "n did not cancel: $(pane)"
[ "$(ps_field b status)" = running ] || fail "b stopped without a confirmation"
touch "$T/stop" # (the chat loops end: b's would start it again)
wait $(jobs -p) 2>/dev/null || true
tm send-keys -t t s
wait_for 10 eval 'pane | grep -q "stop b? y to confirm"' || fail "no confirmation asked: $(pane)"
tm send-keys -t t y
wait_for 30 eval '[ -z "$(ps_field b status)" ]' || fail "b was not stopped: $(pane) / $(llmctl ps)"
wait_for 10 eval 'pane | grep -q "stop b: done"' || fail "top did not say the stop was done: $(pane)"
[ "$(ps_field a status)" = running ] && [ "$(ps_field c status)" = running ] || fail "another server was stopped: $(llmctl ps)"

# Refreshing takes no lock and writes nothing: with the lock held elsewhere the clock on the
# title line moves, and the state file's bytes stay as they were.
before=$(state_bytes)
hold_state_lock
clock() { pane | grep -oE '^llmctl top +[0-9:]+' | head -1; }
t0=$(clock)
wait_for 10 eval '[ "$(clock)" != "$t0" ]' || fail "top stopped refreshing while the lock was held: $(pane)"
t1=$(clock)
wait_for 10 eval '[ "$(clock)" != "$t1" ]' || fail "top refreshed only once: $(pane)"
[ "$(state_bytes)" = "$before" ] || fail "top's refreshes wrote to the state file"
kill $HOLDER

# q quits with 0; llmctl itself (ps, here) maps no ncurses, the view does.
tm send-keys -t t q
wait_for 10 eval 'pane | grep -qx "rc=0"' || fail "q did not quit with 0: $(pane)"
expect_rc 0 llmctl top --once
echo "$OUT" | grep -q "SERVERS (2)" && echo "$OUT" | grep -qE "^a +running" || fail "top --once: $OUT"
out=$("$LLMCTL_BIN" top --interval 200ms | head -40) # a pipe: the view as text, until the reader goes
echo "$out" | grep -q "SERVERS (2)" || fail "top into a pipe: $out"
expect_rc 2 llmctl top --interval 10ms
! ldd "$LLMCTL_BIN" | grep -q libncurses || fail "llmctl links ncurses: $(ldd "$LLMCTL_BIN")"
ldd "$(dirname "$LLMCTL_BIN")/llmctl-top" | grep -q libncurses || fail "llmctl-top does not link ncurses"
echo "top: ok"
