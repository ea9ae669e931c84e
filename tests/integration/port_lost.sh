# A stranger takes the picked port between the pick and the server's bind: start retries on
# another port (never calls a shared port ready, never signals the stranger); a fixed port
# lost that way is exit 5.
. "$TEST_LIB"
cat >"$LLMCTL_CONFIG" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
[models.shared]
command = ["$MOCK_BIN", "--port", "{port}", "--reuseport"]
[models.plain]
command = ["$MOCK_BIN", "--port", "{port}"]
[models.fixed]
command = ["$MOCK_BIN", "--port", "{port}"]
port = $((PORT_BASE + 30))
EOT
# stranger PORT [reuseport]: listens on PORT until killed; prints nothing.
stranger() {
  python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[2] == "1": s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)' "$1" "$2" &
  STRANGER=$!
  wait_for 10 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"
}
events() { python3 -c 'import sqlite3,sys; print("\n".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("select kind from events where server=? order by id", (sys.argv[2],))))' "$LLMCTL_HOME/state.db" "$1"; }
notified() { grep -qx port "$T/notify" 2>/dev/null; }
# start_in_window NAME PORT REUSEPORT: starts NAME; once it has picked its port (and holds at the
# "port" fault point, before spawning), a stranger binds PORT, then the start goes on. Leaves the
# start's exit code in RC.
start_in_window() {
  rm -f "$T/notify" "$T/notify.release"
  LLMCTL_FAULT_NOTIFY="$T/notify" LLMCTL_FAULT=port:hold llmctl start "$1" >"$T/start.out" 2>"$T/start.err" &
  local s=$!
  wait_for 10 notified || fail "start never reached the port fault point"
  stranger "$2" "$3"
  touch "$T/notify.release"
  RC=0; wait $s || RC=$?
  OUT=$(cat "$T/start.out"); ERR=$(cat "$T/start.err")
}

# 1. The stranger shares the port with SO_REUSEPORT (as llama-server allows): not ready, retry.
start_in_window shared "$PORT_BASE" 1
[ "$RC" -eq 0 ] || fail "shared: exit $RC: $ERR"
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "shared got $OUT"
echo "$ERR" | grep -q "port $PORT_BASE was taken by pid $STRANGER (python3)" || fail "shared: no note naming the stranger: $ERR"
events shared | grep -x port_lost >/dev/null || fail "shared: no port_lost event: $(events shared)"
[ "$(marked | wc -l)" -eq 1 ] || fail "shared: $(marked | wc -l) servers alive"
kill -0 "$STRANGER" || fail "the stranger was signalled"
kill -KILL "$STRANGER"; wait "$STRANGER" 2>/dev/null || true
llmctl stop shared -q

# 2. The stranger binds first; the server fails to bind and exits: retry, not exit 5.
start_in_window plain "$PORT_BASE" 0
[ "$RC" -eq 0 ] || fail "plain: exit $RC: $ERR"
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "plain got $OUT"
events plain | grep -x port_lost >/dev/null || fail "plain: no port_lost event"
kill -0 "$STRANGER" || fail "the stranger was signalled"
kill -KILL "$STRANGER"; wait "$STRANGER" 2>/dev/null || true

# 3. A fixed port lost in the window: exit 5 naming the port, nothing left alive of it.
start_in_window fixed $((PORT_BASE + 30)) 0
[ "$RC" -eq 5 ] || fail "fixed: exit $RC, want 5: $ERR"
echo "$ERR" | grep -q "port $((PORT_BASE + 30))" || fail "fixed: message does not name the port: $ERR"
llmctl ps -a --json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["name"]=="fixed"]; assert r and r[0]["status"]=="failed", r'
[ "$(marked | wc -l)" -eq 1 ] || fail "fixed left processes: $(marked)"
llmctl stop --all -q
echo "port_lost: ok"
