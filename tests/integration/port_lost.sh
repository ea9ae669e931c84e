# A stranger takes the picked port between the pick and the server's bind: start retries on
# another port (never calls a shared port ready, never signals the stranger); a fixed port
# lost that way is exit 5.
. "$TEST_LIB"
mock_config
mock_model shared --reuseport
mock_model plain
mock_model fixed
config_add "port = $((PORT_BASE + 30))"
events() { python3 -c 'import sqlite3,sys; print("\n".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("select kind from events where server=? order by id", (sys.argv[2],))))' "$LLMCTL_HOME/state.db" "$1"; }
notified() { grep -qx port "$T/notify" 2>/dev/null; }
# start_in_window NAME PORT [--reuseport]: starts NAME; once it has picked its port (and holds at the
# "port" fault point, before spawning), a stranger binds PORT, then the start goes on. Leaves the
# start's exit code in RC.
start_in_window() {
  rm -f "$T/notify" "$T/notify.release"
  LLMCTL_FAULT_NOTIFY="$T/notify" LLMCTL_FAULT=port:hold llmctl start "$1" >"$T/start.out" 2>"$T/start.err" &
  local s=$!
  wait_for 10 notified || fail "start never reached the port fault point"
  hold_port "$2" "${@:3}"
  STRANGER=$HOLDER
  touch "$T/notify.release"
  RC=0; wait $s || RC=$?
  OUT=$(cat "$T/start.out"); ERR=$(cat "$T/start.err")
}

# 1. The stranger shares the port with SO_REUSEPORT (as llama-server allows): not ready, retry.
start_in_window shared "$PORT_BASE" --reuseport
[ "$RC" -eq 0 ] || fail "shared: exit $RC: $ERR"
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "shared got $OUT"
echo "$ERR" | grep -q "port $PORT_BASE was taken by pid $STRANGER (python3)" || fail "shared: no note naming the stranger: $ERR"
events shared | grep -x port_lost >/dev/null || fail "shared: no port_lost event: $(events shared)"
[ "$(count_marked)" -eq 1 ] || fail "shared: $(count_marked) servers alive"
kill -0 "$STRANGER" || fail "the stranger was signalled"
kill -KILL "$STRANGER"; wait "$STRANGER" 2>/dev/null || true
llmctl stop shared -q

# 2. The stranger binds first; the server fails to bind and exits: retry, not exit 5.
start_in_window plain "$PORT_BASE"
[ "$RC" -eq 0 ] || fail "plain: exit $RC: $ERR"
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "plain got $OUT"
events plain | grep -x port_lost >/dev/null || fail "plain: no port_lost event"
kill -0 "$STRANGER" || fail "the stranger was signalled"
kill -KILL "$STRANGER"; wait "$STRANGER" 2>/dev/null || true

# 3. A fixed port lost in the window: exit 5 naming the port, nothing left alive of it.
start_in_window fixed $((PORT_BASE + 30))
[ "$RC" -eq 5 ] || fail "fixed: exit $RC, want 5: $ERR"
echo "$ERR" | grep -q "port $((PORT_BASE + 30))" || fail "fixed: message does not name the port: $ERR"
[ "$(ps_field fixed status -a)" = failed ] || fail "fixed: its row is not failed: $(llmctl ps -a)"
[ "$(count_marked)" -eq 1 ] || fail "fixed left processes: $(marked)"
llmctl stop --all -q
echo "port_lost: ok"
