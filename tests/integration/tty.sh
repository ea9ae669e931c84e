# The interactive pieces on a real terminal: tmux panes (private tmux server), read back with
# capture-pane. `start` shows a spinner with the elapsed time while the server loads; with
# NO_COLOR the spinner stays but no colour code is written; piped, neither. `chat` on a
# terminal starts the server with the same status line, then runs its interactive loop
# (prompt, answer, /reset, Ctrl-D), and a chat that must wait shows its place in the queue.
. "$TEST_LIB"
mock_config
mock_model slow --startup-delay 3s
mock_model one --reply-tokens 40 --tokens-per-second 10
config_add 'max_concurrent = 1'
sock="llmctl-test-$$"
tm() { tmux -u -L "$sock" -f /dev/null "$@"; }
# The tmux server is ours (private socket): lib.sh's clean-up stops it however the test ends.
on_cleanup() { tm kill-server 2>/dev/null; }
env_prefix="env LLMCTL_HOME=$LLMCTL_HOME LLMCTL_CONFIG=$LLMCTL_CONFIG LANG=C.UTF-8 TERM=tmux-256color"
# Every window runs CMD through sh, then prints "rc=STATUS" and stays open (cat), so the
# screen can be read after CMD ended; seeing rc= means all of CMD's output is on the screen.
tm new-session -d -s t -n idle -x 120 -y 30 cat
# run WINDOW [ENV=...] CMD...: a new 120x30 window running CMD.
run() {
  local w=$1; shift
  tm new-window -d -t t -n "$w" "$env_prefix $*; echo rc=\$?; exec cat"
}
pane() { tm capture-pane -p -t "t:$1"; }          # text
pane_e() { tm capture-pane -p -e -t "t:$1"; }     # text with escape codes (colours)
# has[_e] WINDOW GREP-ARGS...: the screen matches (no pipe: grep -q must not SIGPIPE tmux).
has() { local w=$1; shift; grep "$@" <<<"$(pane "$w")" >/dev/null; }
has_e() { local w=$1; shift; grep "$@" <<<"$(pane_e "$w")" >/dev/null; }
shows() { has "$1" -E -- "$2"; }
wait_dead() { # WINDOW: waits for its command to end; prints its exit status
  wait_for 20 shows "$1" '^rc=[0-9]+$' || fail "$1 did not finish: $(pane "$1")"
  pane "$1" | sed -n 's/^rc=\([0-9]*\)$/\1/p'
}

# 1. start on a terminal: spinner + elapsed time, advancing; the server's log line dimmed.
run start "$LLMCTL_BIN" start slow
wait_for 10 shows start 'starting slow [0-9]+\.[0-9]s' || fail "no status line: $(pane start)"
first=$(pane start | grep -oE '. starting slow [0-9]+\.[0-9]s')
wait_for 10 eval '[ "$(pane start | grep -oE ". starting slow [0-9]+\.[0-9]s")" != "$first" ]' || fail "status line does not move: $first"
second=$(pane start | grep -oE '. starting slow [0-9]+\.[0-9]s')
echo "$first" | grep -qE '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ' || fail "no spinner: $first"
wait_for 10 has start 'GET /health 503' || fail "the server's last log line is not shown: $(pane start)"
has_e start $'\e\[2m' || fail "no dim colour for the log line on a colour terminal: $(pane_e start | cat -v)"
[ "$(wait_dead start)" = 0 ] || fail "start exited non-zero: $(pane start)"
has start -x "http://127.0.0.1:$PORT_BASE *" || fail "no URL line after start: $(pane start)"
has start 'starting slow' && fail "the status line was not wiped: $(pane start)"
llmctl stop slow -q

# 2. NO_COLOR: the spinner and the time stay, no colour code at all.
run nocolor NO_COLOR=1 "$LLMCTL_BIN" start slow
wait_for 10 shows nocolor 'GET /health 503' || fail "no status line with NO_COLOR: $(pane nocolor)"
has nocolor -E '[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] starting slow [0-9]+\.[0-9]s' || fail "NO_COLOR lost the spinner: $(pane nocolor)"
has_e nocolor $'\e\[' && fail "colour codes with NO_COLOR: $(pane_e nocolor | cat -v)"
[ "$(wait_dead nocolor)" = 0 ] || fail "start (NO_COLOR) exited non-zero"
llmctl stop slow -q

# 3. Piped: neither spinner nor escape codes reach the pipe, only the URL.
run piped "sh -c '$LLMCTL_BIN start slow 2>&1 | od -c | grep -c 033; echo piped-done'"
wait_for 20 shows piped piped-done || fail "piped start did not finish: $(pane piped)"
[ "$(pane piped | head -1)" = 0 ] || fail "escape codes in piped output: $(pane piped)"
llmctl stop slow -q

# 4. chat on a terminal: starts the server (status line), then the interactive loop.
run chat "$LLMCTL_BIN" chat slow
wait_for 10 shows chat 'starting slow [0-9]+\.[0-9]s' || fail "chat shows no start progress: $(pane chat)"
wait_for 20 shows chat '^> ?$' || fail "no prompt: $(pane chat)"
has chat '^chat with slow (/reset forgets the conversation, /exit or Ctrl-D ends)' || fail "no banner: $(pane chat)"
tm send-keys -t t:chat 'hello tmux' Enter
wait_for 10 eval '[ "$(pane chat | grep -c "^hello tmux$")" = 1 ]' || fail "no answer: $(pane chat)"
tm send-keys -t t:chat '/reset' Enter
wait_for 10 shows chat '^\(conversation forgotten\)' || fail "/reset: $(pane chat)"
tm send-keys -t t:chat C-d
[ "$(wait_dead chat)" = 0 ] || fail "chat did not exit 0 on Ctrl-D: $(pane chat)"
llmctl stop slow -q

# 5. A chat that waits for a slot shows its place in the queue, then answers.
llmctl start one -q >/dev/null
"$LLMCTL_BIN" chat one hold >"$T/holder.out" &
holder=$!
wait_for 10 test -s "$T/holder.out" || fail "the first chat never got its slot" # its first token: it holds the slot
run queue "$LLMCTL_BIN" chat one "after you"
wait_for 10 shows queue 'waiting for a slot on one: place 1 in the queue' || fail "no queue place shown: $(pane queue)"
wait "$holder" || fail "the holding chat failed"
[ "$(wait_dead queue)" = 0 ] || fail "the queued chat failed: $(pane queue)"
has queue '^tok0 tok1' || fail "the queued chat printed no answer: $(pane queue)"
has queue 'waiting for a slot' && fail "the queue line was not wiped: $(pane queue)"
echo "tty: ok"
