# chat on a real terminal (tmux panes of a private tmux server, read back with capture-pane):
# line editing and history through libedit, Ctrl-C at the prompt and during an answer, a failed
# answer (HTTP 500, a server that dies mid-answer) that keeps the loop and the conversation,
# errors that start on a line of their own, model output that cannot drive the terminal, and
# plain line reading with TERM=dumb.
. "$TEST_LIB"
mock_config
mock_model echo
mock_model flaky --echo-history --fail-on boom
mock_model crashy --crash-mid-stream 3
mock_model slow --reply-tokens 100000 --tokens-per-second 20
config_add 'max_concurrent = 1'
mock_model esc --reply 'title\u001b]0;pwned\u0007 clear\u001b[2J csi\u009b31m cr\rend'
sock="llmctl-test-$$"
tm() { tmux -u -L "$sock" -f /dev/null "$@"; }
on_cleanup() { tm kill-server 2>/dev/null; }
tm new-session -d -s t -n idle -x 120 -y 40 cat
# run WINDOW [ENV=...] CMD...: a new window running CMD under bash, which then prints
# "rc=STATUS" and stays open. bash, not sh: a Ctrl-C reaches the whole foreground process group,
# and bash (unlike dash) goes on when its child survived it.
run() {
  local w=$1; shift
  tm new-window -d -t t -n "$w" bash -c "env LLMCTL_HOME=$LLMCTL_HOME LLMCTL_CONFIG=$LLMCTL_CONFIG LANG=C.UTF-8 TERM=tmux-256color $*; echo rc=\$?; exec cat"
}
# -J joins wrapped lines but keeps trailing spaces, such as those of a wiped status line.
pane() { tm capture-pane -p -J -t "t:$1" | sed 's/ *$//'; }
has() { local w=$1; shift; grep "$@" <<<"$(pane "$w")" >/dev/null; }
shows() { has "$1" -E -- "$2"; }
count() { grep -c -E -- "$2" <<<"$(pane "$1")" || true; }
count_is() { [ "$(count "$1" "$3")" = "$2" ]; }
# wait_count WINDOW N REGEX: waits until REGEX matches N lines of the screen.
wait_count() { wait_for 20 count_is "$@" || fail "$1: want $2 lines matching $3: $(pane "$1")"; }
prompts_at_least() { [ "$(count "$1" '^>( |$)')" -ge "$2" ]; }
# type WINDOW KEYS...: waits for a fresh prompt (one more than before), then sends the keys.
declare -A seen
type_at_prompt() {
  local w=$1; shift
  local want=$(( ${seen[$w]:-0} + 1 ))
  wait_for 20 prompts_at_least "$w" "$want" || fail "$w: no prompt $want: $(pane "$w")"
  seen[$w]=$want
  tm send-keys -t "t:$w" "$@"
}
finished() { # WINDOW: waits for its command to end; prints its exit status
  wait_for 20 shows "$1" '^rc=[0-9]+$' || fail "$1 did not finish: $(pane "$1")"
  pane "$1" | sed -n 's/^rc=\([0-9]*\)$/\1/p'
}

# 1. Line editing: Left arrow moves the cursor, the insert lands inside the line; Up recalls it.
run edit "$LLMCTL_BIN" chat echo
type_at_prompt edit 'wrld' Left Left Left 'o' Enter
wait_count edit 1 '^world$'
type_at_prompt edit Up '!' Enter
wait_count edit 1 '^world!$'
has edit -F '^[[' && fail "raw escape codes on the screen: $(pane edit)"
# 2. Ctrl-C at the prompt drops the line typed so far and gives a new prompt.
type_at_prompt edit 'discard me'
wait_for 20 shows edit '^> discard me' || fail "typed text not shown: $(pane edit)"
tm send-keys -t t:edit C-c
type_at_prompt edit 'kept' Enter
wait_count edit 1 '^kept$'
has edit -x 'discard me' && fail "the line dropped by Ctrl-C was answered: $(pane edit)"
type_at_prompt edit '/exit' Enter
[ "$(finished edit)" = 0 ] || fail "/exit: $(pane edit)"

# 3. Ctrl-C during an answer cancels it: "(interrupted)" on a line of its own, a new prompt,
#    the slot free (the next answer on this max_concurrent=1 model starts), exit 0 at Ctrl-D.
run slow "$LLMCTL_BIN" chat slow
type_at_prompt slow 'go' Enter
wait_for 20 shows slow 'tok3 ' || fail "no answer streams: $(pane slow)"
tm send-keys -t t:slow C-c
wait_for 20 shows slow '^\(interrupted\)$' || fail "Ctrl-C during an answer: $(pane slow)"
type_at_prompt slow 'again' Enter
wait_count slow 2 'tok3 '
tm send-keys -t t:slow C-c
wait_count slow 2 '^\(interrupted\)$'
type_at_prompt slow C-d
[ "$(finished slow)" = 0 ] || fail "Ctrl-D after interrupted answers: $(pane slow)"

# 4. An HTTP 500 keeps the loop and the conversation; the failed turn is not part of it (the
#    mock echoes every user message it was sent).
run flaky "$LLMCTL_BIN" chat flaky
type_at_prompt flaky 'first' Enter
wait_count flaky 1 '^first$'
type_at_prompt flaky 'boom now' Enter
wait_for 20 shows flaky '^llmctl: error: flaky answered HTTP 500: mock failure' || fail "HTTP 500 in the loop: $(pane flaky)"
type_at_prompt flaky 'second' Enter
wait_count flaky 1 '^first \| second$'
type_at_prompt flaky '/exit' Enter
[ "$(finished flaky)" = 0 ] || fail "flaky loop exit: $(pane flaky)"

# 5. A server that dies mid-answer: the partial answer is ended, the error starts a line of its
#    own, the loop goes on, and the next turn starts the server again.
run crashy "$LLMCTL_BIN" chat crashy
type_at_prompt crashy 'one two three four five' Enter
wait_for 20 shows crashy '^llmctl: error: crashy: ' || fail "crash mid-answer: $(pane crashy)"
has crashy -x 'one two three *' || fail "the partial answer is not on its own line: $(pane crashy)"
type_at_prompt crashy 'hi' Enter
wait_count crashy 1 '^hi$'
type_at_prompt crashy '/exit' Enter
[ "$(finished crashy)" = 0 ] || fail "crashy loop exit: $(pane crashy)"
# The same for a one-shot chat: the error below the partial answer, exit 5.
run crash1 "$LLMCTL_BIN" chat crashy one two three four five
[ "$(finished crash1)" = 5 ] || fail "one-shot crash: $(pane crash1)"
has crash1 '^llmctl: error: crashy: ' || fail "one-shot error not on a line of its own: $(pane crash1)"

# 6. The queue line is wiped before a queue timeout's error.
"$LLMCTL_BIN" chat slow hold >"$T/hold.out" 2>&1 &
holder=$!
wait_for 20 test -s "$T/hold.out" || fail "the holder never streamed"
run queue "$LLMCTL_BIN" chat slow --queue-timeout 2s late
[ "$(finished queue)" = 6 ] || fail "queue timeout: $(pane queue)"
has queue '^llmctl: error: no free slot for slow' || fail "queue timeout error not at the line start: $(pane queue)"
has queue 'waiting for a slot' && fail "the queue line was not wiped: $(pane queue)"
kill -INT "$holder"; wait "$holder" || true

# 7. Escape codes from the model are shown, not obeyed: no new title, no cleared screen.
run esc "$LLMCTL_BIN" chat esc hi
[ "$(finished esc)" = 0 ] || fail "esc chat: $(pane esc)"
has esc -F 'title^[]0;pwned^G clear^[[2J csi<U+009B>31m cr^Mend' || fail "control codes not shown as text: $(pane esc)"
[ "$(tm display -p -t t:esc '#{pane_title}')" != pwned ] || fail "the model retitled the terminal"

# 8. TERM=dumb: plain line reading; Ctrl-C still drops the line, Ctrl-D ends.
tm new-window -d -t t -n dumb bash -c "env LLMCTL_HOME=$LLMCTL_HOME LLMCTL_CONFIG=$LLMCTL_CONFIG LANG=C.UTF-8 TERM=dumb $LLMCTL_BIN chat echo; echo rc=\$?; exec cat"
type_at_prompt dumb 'plain line' Enter
wait_count dumb 1 '^plain line$'
type_at_prompt dumb 'drop'
wait_for 20 shows dumb '^> drop' || fail "typed text not echoed: $(pane dumb)"
tm send-keys -t t:dumb C-c
type_at_prompt dumb 'after' Enter
wait_count dumb 1 '^after$'
type_at_prompt dumb C-d
[ "$(finished dumb)" = 0 ] || fail "TERM=dumb loop: $(pane dumb)"
echo "chat_tty: ok"
