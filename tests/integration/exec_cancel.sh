# An exec is a user of its server from the start's first decision: cancelled (SIGTERM, SIGINT,
# SIGHUP) while the model loads, it stops the server it spawned and exits 128+N; killed (SIGKILL),
# the next reap stops that server even once it is healthy. Execs that wait for one start share it:
# four parallel execs load the model once, and the last one out stops it.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
mock_model slow --startup-delay 1s
mock_model four --loading-until "$T/four.loaded"
mock_model pair --loading-until "$T/pair.loaded"
exec_rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from exec_users").fetchone()[0])' "$LLMCTL_HOME/state.db"; }
# Observer: the servers' own output, one "listening" line per server process that ever ran.
spawns() { grep -c "^mock server listening" "$LLMCTL_HOME/logs/$1.log" 2>/dev/null || true; }
loading() { [ -n "$(marked)" ]; }   # a server process runs (its command started: its row is committed)
healthy() { local u; u=$(ps_field slow url); [ -n "$u" ] && curl -sf "$u/health" >/dev/null; }

# 1. SIGTERM, SIGINT, SIGHUP while the model loads: exit 128+N, nothing left.
for sig in TERM INT HUP; do
  "$LLMCTL_BIN" exec slow -- true >"$T/x.out" 2>"$T/x.err" &
  ex=$!
  wait_for 10 loading || fail "$sig: the server never started"
  kill -$sig $ex
  rc=0; wait $ex || rc=$?
  want=$((128 + $(kill -l $sig)))
  [ $rc -eq $want ] || fail "exec after SIG$sig exited $rc, want $want: $(cat "$T/x.err")"
  [ -z "$(marked)" ] || fail "SIG$sig: exec left its server: $(llmctl ps)"
  [ "$(llmctl ps -q)" = "" ] || fail "SIG$sig: a row is left: $(llmctl ps)"
  [ "$(exec_rows)" = 0 ] || fail "SIG$sig: an exec_users row is left"
done

# 2. SIGKILL while the model loads: the server outlives exec (nothing can run in a killed
#    process), becomes healthy, and the next reap stops it: it is never adopted as an ordinary one.
"$LLMCTL_BIN" exec slow -- true >/dev/null 2>&1 &
ex=$!
wait_for 10 loading || fail "KILL: the server never started"
kill -KILL $ex
wait $ex 2>/dev/null || true
wait_for 10 healthy || fail "the server never became healthy"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped slow (pid [0-9]*): the llmctl exec that started it died" || fail "reap did not stop the stranded server: $OUT"
echo "$OUT" | grep -q "^adopted" && fail "reap adopted the server of a killed exec: $OUT"
[ -z "$(marked)" ] || fail "KILL: the server is still there after reap: $(llmctl ps)"

# 3. Four parallel execs while the model loads (it loads until the test says so, once all four
#    are there): one spawn, and it is gone afterwards.
pids=()
for i in 1 2 3 4; do "$LLMCTL_BIN" exec -q four -- true & pids+=($!); done
wait_for 20 eval '[ "$(exec_rows)" = 4 ]' || fail "the four execs did not all become users of the start: $(exec_rows)"
touch "$T/four.loaded"
for p in "${pids[@]}"; do wait "$p" || fail "a parallel exec failed"; done
[ "$(spawns four)" = 1 ] || fail "4 parallel execs loaded the model $(spawns four) times"
[ -z "$(marked)" ] && [ "$(exec_rows)" = 0 ] || fail "the shared server outlived its execs: $(llmctl ps)"

# 4. A waiting exec is a user of that start: the starter's cancellation hands the server over
#    (one spawn, stopped by the last exec out); a waiter's cancellation leaves the starter alone.
for who in starter waiter; do
  rm -f "$T"/go.* "$T/pair.loaded"
  "$LLMCTL_BIN" exec pair -- true >"$T/a.err" 2>&1 &
  a=$!
  wait_for 10 loading || fail "$who: the server never started"
  "$LLMCTL_BIN" exec pair -- sh -c "while [ ! -e $T/go.b ]; do sleep 0.05; done" >"$T/b.err" 2>&1 &
  b=$!
  wait_for 10 eval '[ "$(exec_rows)" = 2 ]' || fail "$who: the second exec never registered as a user"
  if [ $who = starter ]; then victim=$a other=$b; else victim=$b other=$a; fi
  kill -TERM $victim
  rc=0; wait $victim || rc=$?
  [ $rc -eq 143 ] || fail "$who: the cancelled exec exited $rc"
  [ -n "$(marked)" ] || fail "$who: the server went with the cancelled exec, though another exec waits for it"
  touch "$T/pair.loaded" "$T/go.b"
  wait $other || fail "$who: the other exec failed: $(cat "$T/a.err" "$T/b.err")"
  [ -z "$(marked)" ] && [ "$(exec_rows)" = 0 ] || fail "$who: a server or row is left: $(llmctl ps)"
done
[ "$(spawns pair)" = 2 ] || fail "the pair model was loaded $(spawns pair) times for 2 rounds"
echo "exec_cancel: ok"
