# Shared helpers for the black-box tests. Each test gets its own state dir; on exit the
# test's still-running background jobs (PIDs bash has not reaped, so not recyclable) and
# its marked servers are killed; never anything by name.
set -euo pipefail
: "${LLMCTL_BIN:?}" "${MOCK_BIN:?}" "${PORT_BASE:?}"
# grep -q exits at its first match. Under pipefail, `echo "$ERR" | grep -q X` then fails when X
# is on an early line: bash writes a line at a time into a pipe, and the echo that still had a
# line to write dies of SIGPIPE (seen in CI: a message with its hint line, matched on the first).
# So the tests' grep -q reads to the end and discards its output instead.
grep() {
  local a args=() quiet=0
  for a in "$@"; do
    if [[ $a =~ ^-[A-Za-z]*q[A-Za-z]*$ ]]; then
      quiet=1
      a=${a//q/}
      [ "$a" = - ] && continue
    fi
    args+=("$a")
  done
  if ((quiet)); then command grep "${args[@]}" >/dev/null; else command grep "${args[@]}"; fi
}
# Two checkouts testing at once on one machine keep apart with LLMCTL_TEST_PORT_OFFSET.
PORT_BASE=$((PORT_BASE + ${LLMCTL_TEST_PORT_OFFSET:-0}))
T=$(mktemp -d /tmp/llmctl-it.XXXXXX)
export LLMCTL_HOME="$T/state"
export LLMCTL_CONFIG="$T/config.toml"
unset LLMCTL_FAULT LLMCTL_LOCK_TIMEOUT
# The Debian python3 that `make deps` installs, ahead of any shim on PATH: a pyenv shim costs
# about 300 ms a call, and a test that calls python3 a few hundred times would spend minutes.
mkdir -p "$T/bin"
ln -s /usr/bin/python3 "$T/bin/python3"
export PATH="$T/bin:$PATH"
cleanup() {
  local rc=$?
  # A test's own clean-up first (e.g. its private tmux server), if it defines one.
  if declare -F on_cleanup >/dev/null; then on_cleanup || true; fi
  # The test's own background jobs first: a chat still waiting for a slot would start its
  # server again after the stop below.
  local p
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
  "$LLMCTL_BIN" stop --all -q >/dev/null 2>&1 || true
  for p in $(marked_under "$T"); do kill -KILL "$p" 2>/dev/null || true; done
  # The servers' monitors record their exits in the state dir: they finish before it goes.
  wait_for 20 eval '[ -z "$(monitors_under "$T")" ]' || echo "monitors still running: $(monitors_under "$T")" >&2
  if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "test failed (rc=$rc); data kept in $T" >&2; fi
  exit $rc
}
trap cleanup EXIT
llmctl() { "$LLMCTL_BIN" "$@"; }
# ps_field NAME FIELD [ps options]: one field of NAME's row in `llmctl ps --json` ("" without a row).
ps_field() {
  "$LLMCTL_BIN" ps --json "${@:3}" | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["name"]==sys.argv[1]]; print(r[0][sys.argv[2]] if r else "")' "$1" "$2"
}
# ps_count [ps options]: the number of rows of `llmctl ps --json`.
ps_count() { "$LLMCTL_BIN" ps --json "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# ps_rows FIELD[,FIELD...] [ps options]: each row of `llmctl ps --json`, one a line, its FIELDs
# joined by ":".
ps_rows() {
  "$LLMCTL_BIN" ps --json "${@:2}" | python3 -c 'import json,sys; [print(":".join(str(r[f]) for f in sys.argv[1].split(","))) for r in json.load(sys.stdin)]' "$1"
}
# field_is NAME FIELD VALUE: NAME's FIELD in `llmctl ps --json` is VALUE (for wait_for).
field_is() { [ "$(ps_field "$1" "$2")" = "$3" ]; }
# max_overlap LOG: the most requests of the mock's request log in flight at one moment (an end
# at the same nanosecond as a start counts first).
max_overlap() {
  python3 -c 'import sys
ev = []
for line in open(sys.argv[1]):
    s, e = line.split()[:2]
    ev += [(int(s), 1), (int(e), -1)]
ev.sort(key=lambda x: (x[0], x[1]))
n = best = 0
for _, d in ev:
    n += d; best = max(best, n)
print(best)' "$1"
}
# json_get PATH: the value at PATH (keys and list indexes joined by ".", as in 0.pid) of the JSON
# on stdin; fails if there is none.
json_get() {
  python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_rc CODE CMD...: runs CMD, checks its exit code; stdout/stderr land in $OUT/$ERR.
expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want; stderr: $ERR"
}
# wait_for SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.01
  done
}
# alive PID: the process exists and is not a zombie (a server's parent, PID 1 here, reaps it
# when it likes, so kill -0 alone would see a stopped server as alive).
# state_bytes: a checksum of the state file and its WAL (a command that writes changes it).
state_bytes() { cat "$LLMCTL_HOME/state.db" "$LLMCTL_HOME/state.db-wal" 2>/dev/null | md5sum; }
# hold_state_lock: takes the state lock in a process of its own until `kill $HOLDER`.
hold_state_lock() {
  python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("held", flush=True); time.sleep(60)' "$LLMCTL_HOME/state.lock" >"$T/held" &
  HOLDER=$!
  wait_for 5 grep -qx held "$T/held" || fail "the state lock was never taken"
}
alive() { [ -e "/proc/$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }
# PIDs of live (non-zombie) processes carrying this test's state-dir marker. One grep finds the
# candidates (a fork per process in /proc would take seconds on a busy machine).
marked() { marked_matching -x "LLMCTL_HOME=$LLMCTL_HOME"; }
# The same for every state dir inside DIR (tests that use several state dirs).
marked_under() { marked_matching -G "^LLMCTL_HOME=$1/"; }
marked_matching() {
  local f p
  for f in $(grep -lz "$1" -e "$2" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}
    p=${p%/environ}
    # A server carries both markers; helper processes of the test only inherit LLMCTL_HOME.
    grep -qz '^LLMCTL_INSTANCE=' "$f" 2>/dev/null || continue
    alive "$p" || continue
    echo "$p"
  done
  true
}
# PIDs of the live monitors (llmctl-monitor, and the `llmctl monitor-exit` it becomes) of the
# state dirs inside DIR, found by their arguments (one grep for the candidates, as marked_matching).
monitors_under() {
  local f p
  for f in $(grep -lza -e 'llmctl-monitor$' -e '^monitor-exit$' /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f#/proc/}
    p=${p%/cmdline}
    grep -qza "^$1/" "$f" 2>/dev/null || continue
    alive "$p" || continue
    echo "$p"
  done
  true
}
# count_marked: how many live servers of this test's state dir there are (marked | wc -l).
count_marked() { marked | wc -l; }
# mock_config [--range N] [LINE...]: writes a new config: [defaults] with port_range = [PORT_BASE,
# PORT_BASE + N] (N is 20 unless given) and the LINEs; mock_model and config_add append to it.
mock_config() {
  local range=20
  if [ "${1:-}" = --range ]; then range=$2; shift 2; fi
  printf '[defaults]\nport_range = [%d, %d]\n' "$PORT_BASE" $((PORT_BASE + range)) >"$LLMCTL_CONFIG"
  [ $# -eq 0 ] || config_add "$@"
}
# mock_model NAME [ARG...]: appends model NAME, the mock server on {port} with ARGs (each put in a
# TOML string as it is: "\u001b" is TOML's escape); its own keys follow with config_add.
mock_model() {
  local name=$1 a cmd="\"$MOCK_BIN\", \"--port\", \"{port}\""
  shift
  for a in "$@"; do cmd+=", \"$a\""; done
  printf '[models.%s]\ncommand = [%s]\n' "$name" "$cmd" >>"$LLMCTL_CONFIG"
}
# config_add [LINE...]: appends the LINEs (without any, stdin) to the config.
config_add() {
  if [ $# -gt 0 ]; then printf '%s\n' "$@" >>"$LLMCTL_CONFIG"; else cat >>"$LLMCTL_CONFIG"; fi
}
# port_open PORT [HOST]: something accepts connections on HOST (127.0.0.1 unless given) at PORT.
port_open() { python3 -c 'import socket,sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1)' "$1" "${2:-127.0.0.1}" 2>/dev/null; }
# hold_port PORT [--reuseport]: a listener on 127.0.0.1:PORT, a background job of the test (its PID
# in HOLDER, killed by PID at the end), until killed; returns once it listens.
hold_port() {
  rm -f "$T/held.$1"
  python3 -c 'import socket,sys,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[2:] == ["--reuseport"]: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(3600)' "$@" >"$T/held.$1" &
  HOLDER=$!
  wait_for 10 grep -qx up "$T/held.$1" || fail "the holder of port $1 never listened"
}
# start_serve PORT [ARG...]: `llmctl serve --listen 127.0.0.1:PORT ARG...`, a background job of
# the test (PID in SERVE_PID, stderr in $T/serve.PORT.log); returns once GET /health answers.
start_serve() {
  local port=$1; shift
  "$LLMCTL_BIN" serve --listen "127.0.0.1:$port" "$@" 2>"$T/serve.$port.log" &
  SERVE_PID=$!
  SERVE_URL="http://127.0.0.1:$port"
  wait_for 20 curl -sf -o /dev/null "$SERVE_URL/health" || fail "serve on port $port never answered: $(cat "$T/serve.$port.log")"
}
# chat_body MODEL TEXT [STREAM]: a chat completion request body (STREAM true or false).
chat_body() { printf '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"%s"}]}' "$1" "${3:-false}" "$2"; }
# sse_text: the content of a chat stream on stdin, its deltas joined.
sse_text() {
  python3 -c 'import json,sys
out = ""
for line in sys.stdin:
    line = line.strip()
    if line.startswith("data: ") and line != "data: [DONE]":
        for c in json.loads(line[6:]).get("choices", []):
            out += (c.get("delta") or {}).get("content") or c.get("text") or ""
print(out)'
}
