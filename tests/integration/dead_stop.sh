# A stop whose llmctl was killed leaves a `stopping` row and a live server. Whoever meets it next
# (a chat or start, or reap) finishes that stop as a stop: SIGTERM through the proven identity
# (the server logs it), and reports what is true, never "was dead" for a live process.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
mock_model m
pid_of() { ps_field m pid; }
events() { python3 -c 'import sqlite3,sys; print("\n".join("%s %s" % r for r in sqlite3.connect(sys.argv[1]).execute("select kind, detail from events order by id")))' "$LLMCTL_HOME/state.db"; }
# The server's own log, between its start marker and the next one: what happened to that process.
run_log() { awk -v p="(pid $1," 'index($0, "--- llmctl: starting m " p) { on = 1; next } /^--- llmctl: starting / { on = 0 } on' "$LLMCTL_HOME/logs/m.log"; }

for finisher in chat start reap; do
  expect_rc 0 llmctl start m
  old=$(pid_of)
  rc=0; LLMCTL_FAULT=crash-after:marked-stopping "$LLMCTL_BIN" stop m >/dev/null 2>&1 || rc=$?
  [ $rc -eq 137 ] || fail "the stop was not killed at the fault point (exit $rc)"
  [ "$(ps_field m status)" = stopping ] || fail "no stopping row"
  alive "$old" || fail "the server died with its stop"
  case $finisher in
    chat) expect_rc 0 llmctl chat m "hello again"; [ "$OUT" = "hello again" ] || fail "chat answered: $OUT" ;;
    start) expect_rc 0 llmctl start m ;;
    reap) expect_rc 0 llmctl reap; echo "$OUT" | grep -q "^reaped m (pid $old): its stop died halfway" || fail "reap: $OUT" ;;
  esac
  ! alive "$old" || fail "$finisher: the old server $old still runs"
  run_log "$old" | grep -q "received SIGTERM" || fail "$finisher: server $old got no SIGTERM: $(run_log "$old")"
  events | grep -E "cleared .*pid $old " && fail "$finisher: reported pid $old as dead while it lived: $(events)"
  [ $finisher = reap ] || [ "$(pid_of)" != "$old" ] || fail "$finisher: no new server"
  llmctl stop m -q
done
echo "dead_stop: ok"
