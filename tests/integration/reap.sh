# reap: crash recovery at every start point, strangers and other state dirs untouched, recycled
# PIDs never signalled, escaped children killed, idle servers stopped, dead leases reclaimed.
. "$TEST_LIB"
mock_config --range 40 'stop_timeout = "2s"'
mock_model m
mock_model esc --escape-child
mock_model idle
config_add 'idle_timeout = "1s"'
mock_model busy
config_add 'idle_timeout = "30s"'
mock_model stubborn --ignore-sigterm
config_add 'stop_timeout = "1s"'
mock_model chatty --log-spam 1MiB
config_add 'log_max_size = "64KiB"' 'log_keep = 2'
db="$LLMCTL_HOME/state.db"
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2], sys.argv[3:]).fetchall(); c.commit(); print("\n".join("|".join(map(str,x)) for x in r))' "$db" "$@"; }
# (a name without a row shows its last exit in ps -a: status "exited", no row)
row_field() { local v; v=$(ps_field "$1" "$2" -a); [ "$(ps_field "$1" status -a)" = exited ] || echo "$v"; }
healthy() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=1)' "$1" 2>/dev/null; }

# Nothing to do: silent, exit 0; -v gives a summary; no state dir is created.
expect_rc 0 llmctl reap
[ -z "$OUT$ERR" ] || fail "reap with nothing to do printed: $OUT $ERR"
[ ! -e "$LLMCTL_HOME" ] || fail "reap created the state dir"
llmctl state init -q
expect_rc 0 llmctl reap -v
[ -z "$OUT" ] && echo "$ERR" | grep -q "0 action" || fail "reap -v: $OUT / $ERR"

# 1. SIGKILL of start at each point, then one reap: no orphan, no stuck row; a start gives one server.
for point in port spawn committed ready; do
  rc=0; LLMCTL_FAULT=crash-after:$point llmctl start m >/dev/null 2>&1 || rc=$?
  [ $rc -eq 137 ] || fail "$point: start exited $rc, want 137"
  if [ "$point" = committed ] || [ "$point" = ready ]; then
    # The server lives on; let it finish loading so reap can adopt rather than leave it loading.
    wait_for 10 healthy "$(row_field m url)" || fail "$point: server never healthy"
  fi
  expect_rc 0 llmctl reap
  status=$(row_field m status)
  case $point in
    port|spawn) [ -z "$status" ] && [ -z "$(marked)" ] || fail "$point: after reap: row '$status', marked '$(marked)'" ;;
    *) [ "$status" = running ] && [ "$(count_marked)" = 1 ] || fail "$point: after reap: row '$status', $(count_marked) servers; $OUT" ;;
  esac
  # Killed between spawn and commit: the spawn gate makes the child exit without running the
  # command, so there is no orphan to reap.
  [ "$point" != spawn ] || ! echo "$OUT" | grep "orphan_killed" >/dev/null || fail "spawn: an orphan ran: $OUT"
  expect_rc 0 llmctl start m
  healthy "$OUT" || fail "$point: start gave an unhealthy $OUT"
  [ "$(count_marked)" = 1 ] || fail "$point: $(count_marked) servers after start"
  llmctl stop m -q
done

# 1b. SIGKILL of stop after its SIGTERM (the server ignores TERM): reap finishes the stop.
expect_rc 0 llmctl start stubborn
rc=0; LLMCTL_FAULT=crash-after:stop-signalled llmctl stop stubborn >/dev/null 2>&1 || rc=$?
[ $rc -eq 137 ] || fail "stop exited $rc, want 137"
[ "$(row_field stubborn status)" = stopping ] && [ "$(count_marked)" = 1 ] || fail "stubborn: $(row_field stubborn status), $(count_marked) alive"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped stubborn (pid [0-9]*): its stop died halfway" || fail "stop not finished: $OUT"
[ -z "$(row_field stubborn status)" ] && [ -z "$(marked)" ] || fail "stubborn left: row '$(row_field stubborn status)', $(marked)"

# 2. Another state dir's server, and a stranger with an identical command line: untouched by our
#    reap, even when our own server of that command is an orphan.
other="$T/other"
LLMCTL_HOME="$other" llmctl start m >/dev/null
other_pid=$(LLMCTL_HOME="$other" ps_field m pid)
expect_rc 0 llmctl start m
mine_pid=$(row_field m pid)
env -u LLMCTL_INSTANCE "$MOCK_BIN" --port $((PORT_BASE + 39)) >/dev/null 2>&1 &
stranger=$!
sql "DELETE FROM servers WHERE name='m'" >/dev/null   # our server becomes an orphan
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^orphan_killed m (pid $mine_pid)" || fail "our orphan not reported: $OUT"
wait_for 5 sh -c "! kill -0 $mine_pid 2>/dev/null" || fail "our orphan $mine_pid still alive"
kill -0 "$other_pid" || fail "reap killed the other state dir's server"
kill -0 "$stranger" || fail "reap killed a stranger with the same command line"
LLMCTL_HOME="$other" llmctl stop --all -q
kill -KILL "$stranger"; wait "$stranger" 2>/dev/null || true

# 2b. The same orphan met by a start instead of a reap: the start that spawns the new server
#     kills the row-less one of its name (after its own commit, outside the lock) and says so.
expect_rc 0 llmctl start m
old_pid=$(row_field m pid)
sql "DELETE FROM servers WHERE name='m'" >/dev/null
expect_rc 0 llmctl start m
new_pid=$(row_field m pid)
[ "$new_pid" != "$old_pid" ] || fail "start reused the row-less server $old_pid"
wait_for 5 sh -c "! kill -0 $old_pid 2>/dev/null" || fail "start left the orphan $old_pid alive"
[ "$(marked)" = "$new_pid" ] || fail "after start: marked '$(marked)', want only $new_pid"
[ "$(sql "SELECT count(*) FROM events WHERE kind='orphan_killed' AND detail='pid $old_pid'")" = 1 ] || fail "no orphan_killed event for $old_pid"
llmctl stop m -q

# 3. A recycled PID (a row whose start ticks do not match the live process): never signalled.
sleep 120 &
victim=$!
ticks=$(cut -d')' -f2- /proc/$victim/stat | awk '{print $20}')
sql "INSERT INTO servers(name,instance,status,pid,start_ticks,boot_id,port,host) VALUES('recycled','r1','running',?,?,?,?, '127.0.0.1')" \
  "$victim" $((ticks + 7)) "$(cat /proc/sys/kernel/random/boot_id)" $((PORT_BASE + 38)) >/dev/null
expect_rc 0 llmctl stop recycled
kill -0 "$victim" || fail "stop signalled a recycled PID"
sql "INSERT INTO servers(name,instance,status,pid,start_ticks,boot_id,port,host) VALUES('recycled','r2','running',?,?,?,?, '127.0.0.1')" \
  "$victim" $((ticks + 7)) "$(cat /proc/sys/kernel/random/boot_id)" $((PORT_BASE + 38)) >/dev/null
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped recycled (pid $victim)" || fail "recycled row not reaped: $OUT"
kill -0 "$victim" || fail "reap signalled a recycled PID"
kill -KILL "$victim"; wait "$victim" 2>/dev/null || true

# 4. An escaped child whose parent died: killed by reap.
expect_rc 0 llmctl start esc
esc_pid=$(row_field esc pid)
wait_for 5 sh -c "grep -q 'escaped child pid' '$LLMCTL_HOME/logs/esc.log'" || fail "no escaped child"
child=$(sed -n 's/.*escaped child pid \([0-9]*\).*/\1/p' "$LLMCTL_HOME/logs/esc.log" | tail -1)
kill -KILL "$esc_pid"     # the server we started (its PID from our own state)
wait_for 5 sh -c "! [ -e /proc/$esc_pid/stat ] || awk '{exit \$3!=\"Z\"}' /proc/$esc_pid/stat" || fail "server did not die"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped esc (pid $esc_pid)" || fail "dead esc row not reaped: $OUT"
echo "$OUT" | grep -q "^orphan_killed esc (pid $child)" || fail "escaped child not killed: $OUT"
[ -z "$(marked)" ] || fail "processes left: $(marked)"

# 5. Idle: idle_timeout 1s and last used 3 s ago → stopped; 30s and a fresh start hit → kept.
expect_rc 0 llmctl start idle
expect_rc 0 llmctl start busy
past=$(( $(date +%s%3N) - 3000 ))
sql "UPDATE servers SET last_used=? WHERE name IN ('idle','busy')" "$past" >/dev/null
expect_rc 0 llmctl start busy                 # a hit: last_used is stale (> 30s/10), so refreshed
[ "$(row_field busy last_used)" -gt "$past" ] || fail "start hit did not move last_used"
expect_rc 0 llmctl reap --dry-run
echo "$OUT" | grep -q "^would reap idle (pid [0-9]*): idle for" || fail "dry run: $OUT"
[ "$(row_field idle status)" = running ] || fail "dry run stopped idle"
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped idle (pid [0-9]*): idle for" || fail "idle not reaped: $OUT"
[ -z "$(row_field idle status)" ] || fail "idle still has a row"
[ "$(row_field busy status)" = running ] || fail "busy was reaped"
expect_rc 0 llmctl reap --idle-timeout 1ms
echo "$OUT" | grep -q "^reaped busy" || fail "--idle-timeout did not apply: $OUT"
[ "$(sql "SELECT count(*) FROM events WHERE kind='reaped' AND detail LIKE '%idle%'")" = 2 ] || fail "idle events"

# 6. 20 leases owned by dead processes: one line each; -q prints nothing and still removes them.
true & dead=$!; wait $dead
add_leases() {
  python3 - "$db" "$dead" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for i in range(20):
    c.execute("INSERT INTO leases(model, owner_pid, owner_start_ticks, owner_boot_id, state, created_at) VALUES('m', ?, 1, 'x', 'active', 0)", (int(sys.argv[2]),))
c.commit()
PY
}
add_leases
expect_rc 0 llmctl reap --dry-run
[ "$(echo "$OUT" | grep -c '^would lease_reclaimed m')" = 20 ] && [ "$(sql 'SELECT count(*) FROM leases')" = 20 ] || fail "dry run leases: $OUT"
expect_rc 0 llmctl reap
[ "$(echo "$OUT" | grep -c '^lease_reclaimed m (pid [0-9]*): lease [0-9]* of m')" = 20 ] || fail "want 20 lines: $OUT"
[ "$(sql 'SELECT count(*) FROM leases')" = 0 ] || fail "leases left"
add_leases
expect_rc 0 llmctl reap -q
[ -z "$OUT$ERR" ] || fail "reap -q printed: $OUT $ERR"
[ "$(sql 'SELECT count(*) FROM leases')" = 0 ] || fail "reap -q left leases"
expect_rc 0 llmctl reap --json
[ "$OUT" = "[]" ] || fail "json with nothing to do: $OUT"
expect_rc 2 llmctl reap --idle-timeout soon

# 7. A log above log_max_size is rotated by reap; the server keeps its fd; nothing is lost.
expect_rc 0 llmctl start chatty
log="$LLMCTL_HOME/logs/chatty.log"
wait_for 10 grep -q "log spam done" "$log" || fail "no log spam"
size=$(stat -c %s "$log")
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^rotated chatty: .*chatty.log is .* > log_max_size 64KiB; rotated .*chatty.log: .* moved to chatty.log.1" || fail "not rotated: $OUT"
[ $(( $(stat -c %s "$log.1") + $(stat -c %s "$log") )) -eq "$size" ] || fail "bytes lost in rotation"
[ "$(cat "$log.offset")" -eq "$(stat -c %s "$log.1")" ] || fail "offset sidecar: $(cat "$log.offset")"
python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' "$(row_field chatty url)" || fail "server broken by rotation"
grep -q "request GET /health" "$log" || fail "the server no longer writes to its log after rotation"
llmctl stop chatty -q
echo "reap: ok"
