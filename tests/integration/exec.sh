# llmctl exec: CMD gets the server's URL and reaches it; CMD's exit status (and 128+N for a
# signal) comes back; exec's own failures are 125/126/127; a server exec started is stopped
# afterwards unless it ran before, --keep, or another exec still uses it; a killed exec takes
# CMD with it (PR_SET_PDEATHSIG) and the next reap stops the server it started, only that one.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
for m in e f g; do mock_model $m; done
config_add <<EOT
[models.ext]
url = "http://127.0.0.1:$((PORT_BASE + 30))"
EOT
field() { ps_field "$1" "$2"; }
# Background execs run the binary itself (not the llmctl function), so $! is exec's own PID.
# A CMD that says it is up (writes its pid to $T/NAME.up), then waits until $T/NAME.go exists.
waiter() { echo "echo \$\$ >$T/$1.up; while [ ! -e $T/$1.go ]; do sleep 0.05; done; exit ${2:-0}"; }
up() { [ -s "$T/$1.up" ]; }

# 1. CMD sees the variables and reaches the server; exec started it, so it is stopped after.
probe='import os, json, urllib.request
u = os.environ["OPENAI_BASE_URL"]
assert u == os.environ["LLMCTL_URL"] + "/v1", u
assert os.environ["LLMCTL_URL"].endswith(":" + os.environ["LLMCTL_PORT"])
print(json.load(urllib.request.urlopen(u + "/models"))["data"][0]["id"])'
expect_rc 0 llmctl exec e -- python3 -c "$probe"
[ "$OUT" = echo ] || fail "CMD did not reach the server: $OUT / $ERR"
[ -z "$(field e pid)" ] && [ -z "$(marked)" ] || fail "the server exec started is still there: $(llmctl ps)"
[ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from exec_users").fetchone()[0])' "$LLMCTL_HOME/state.db")" = 0 ] \
  || fail "exec left its user row"

# 2. Exit statuses: CMD's own, 128+N for a signal passed on by exec, and exec's own failures.
expect_rc 3 llmctl exec e -- sh -c 'exit 3'
"$LLMCTL_BIN" exec e -- sh -c "$(waiter int)" >/dev/null 2>&1 &
ex=$!
wait_for 10 up int || fail "CMD never came up"
cmd_pid=$(cat "$T/int.up")
kill -INT $ex   # sent to exec with kill(2): passed on to CMD
rc=0; wait $ex || rc=$?
[ $rc -eq 130 ] || fail "exec after SIGINT exited $rc, want 130"
! alive "$cmd_pid" || fail "CMD $cmd_pid survived the SIGINT"
[ -z "$(marked)" ] || fail "server left after the interrupted exec"
expect_rc 127 llmctl exec e -- llmctl-no-such-command
echo "$ERR" | grep "command not found" >/dev/null || fail "127 without a message: $ERR"
printf 'not a program\n' >"$T/junk"
chmod 644 "$T/junk"
expect_rc 126 llmctl exec e -- "$T/junk"
chmod 755 "$T/junk"   # executable, but no format the kernel runs (ENOEXEC)
expect_rc 126 llmctl exec e -- "$T/junk"
expect_rc 125 llmctl exec nosuch -- true
expect_rc 125 llmctl exec e --bogus -- true
[ -z "$(marked)" ] || fail "a failed exec left a server"
# An external model: nothing started; CMD gets its url (tests/integration/tls.sh: https and a key).
expect_rc 0 llmctl exec ext -- sh -c 'echo "$LLMCTL_URL $OPENAI_BASE_URL $LLMCTL_PORT"'
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 30)) http://127.0.0.1:$((PORT_BASE + 30))/v1 $((PORT_BASE + 30))" ] || fail "exec ext: $OUT"
[ -z "$(marked)" ] || fail "exec of an external model started a server"
# A key of the caller's own never goes to an external model without api_key_env.
OPENAI_API_KEY=sk-mine expect_rc 0 llmctl exec ext -- sh -c 'echo "[$OPENAI_API_KEY]"'
[ "$OUT" = "[]" ] || fail "exec passed the caller's OPENAI_API_KEY to an external model: $OUT"

# 3. A server that ran before exec stays; --keep keeps one exec started.
expect_rc 0 llmctl start e
before=$(field e pid)
expect_rc 0 llmctl exec e -- true
[ "$(field e pid)" = "$before" ] || fail "exec stopped (or replaced) a server it did not start"
expect_rc 0 llmctl stop e
expect_rc 0 llmctl exec --keep e -- true
[ -n "$(field e pid)" ] || fail "--keep: the server was stopped"
expect_rc 0 llmctl stop e

# 4. Two execs share a server: it goes when the last one ends, whichever of them started it.
for order in starter-first starter-last; do
  rm -f "$T"/a.* "$T"/b.*
  "$LLMCTL_BIN" exec e -- sh -c "$(waiter a)" >/dev/null 2>&1 &
  a=$!
  wait_for 10 up a || fail "$order: exec a never ran CMD"
  "$LLMCTL_BIN" exec e -- sh -c "$(waiter b)" >/dev/null 2>&1 &
  b=$!
  wait_for 10 up b || fail "$order: exec b never ran CMD"
  pid=$(field e pid)
  if [ $order = starter-first ]; then first=a second=b; else first=b second=a; fi
  touch "$T/$first.go"
  wait "${!first}" || fail "$order: exec $first failed"
  [ "$(field e pid)" = "$pid" ] || fail "$order: the server went while exec $second still used it"
  touch "$T/$second.go"
  wait "${!second}" || fail "$order: exec $second failed"
  [ -z "$(field e pid)" ] && [ -z "$(marked)" ] || fail "$order: the server outlived both execs: $(llmctl ps)"
done

# 5. kill -9 of an exec: its CMD gets SIGTERM at once; the next reap stops the server that exec
#    started and nothing else (f runs on its own, g is used by a live exec that did not start it).
expect_rc 0 llmctl start f
expect_rc 0 llmctl start g
rm -f "$T"/k.* "$T"/l.*
"$LLMCTL_BIN" exec e -- sh -c "$(waiter k)" >/dev/null 2>&1 &
k=$!
"$LLMCTL_BIN" exec g -- sh -c "$(waiter l)" >/dev/null 2>&1 &
l=$!
wait_for 10 up k && wait_for 10 up l || fail "the execs never ran CMD"
e_pid=$(field e pid) f_pid=$(field f pid) g_pid=$(field g pid)
k_cmd=$(cat "$T/k.up")
kill -KILL $k
wait $k 2>/dev/null || true
gone() { ! alive "$1"; }
wait_for 5 gone "$k_cmd" || fail "CMD $k_cmd outlived its killed exec"
alive "$e_pid" || fail "the server died with its exec, before any reap"
expect_rc 0 llmctl reap
echo "$OUT" | grep "^reaped e (pid $e_pid): the llmctl exec that started it died" >/dev/null || fail "reap did not stop e: $OUT"
! alive "$e_pid" || fail "reap left e ($e_pid) running"
[ "$(field f pid)" = "$f_pid" ] && [ "$(field g pid)" = "$g_pid" ] || fail "reap touched another server: $(llmctl ps)"
touch "$T/l.go"
wait $l || fail "the exec on g failed"
[ "$(field g pid)" = "$g_pid" ] || fail "an exec stopped g, which it did not start"
expect_rc 0 llmctl stop --all

# 6. A server an exec uses is never idle, whatever its last_used says (CMD talks to it
#    directly); once the exec is gone, the idle rule applies again.
expect_rc 0 llmctl start f
rm -f "$T"/i.*
"$LLMCTL_BIN" exec f -- sh -c "$(waiter i)" >/dev/null 2>&1 &
i_exec=$!
wait_for 10 up i || fail "exec i never ran CMD"
f_pid=$(field f pid)
expect_rc 0 llmctl reap --idle-timeout 1ms
[ "$(field f pid)" = "$f_pid" ] || fail "reap stopped a server an exec uses as idle: $OUT"
touch "$T/i.go"
wait $i_exec || fail "exec i failed"
expect_rc 0 llmctl reap --idle-timeout 1ms
[ -z "$(field f pid)" ] || fail "idle f not reaped once its exec ended: $OUT"
echo "exec: ok"
