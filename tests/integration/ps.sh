# ps reads without the lock and never writes: empty/missing state, dead and live rows, JSON.
. "$TEST_LIB"
printf '[models.a]\ncommand = ["x"]\n' >"$LLMCTL_CONFIG"
# Missing state dir: an empty table, exit 0, nothing created.
expect_rc 0 llmctl ps
[ "$OUT" = "$(printf 'NAME  STATUS  PID  PORT  UPTIME  IDLE  RSS  URL')" ] || fail "empty table: $OUT"
expect_rc 0 llmctl ps --json
[ "$OUT" = "[]" ] || fail "empty json: $OUT"
[ ! -e "$LLMCTL_HOME" ] || fail "ps created the state dir"
llmctl state init -q
expect_rc 0 llmctl ps --json
[ "$OUT" = "[]" ] || fail "empty json after init: $OUT"

# One live row (a process of ours, identity read from /proc) and one whose process is gone.
sleep 60 &
live=$!
ticks=$(cut -d')' -f2- /proc/$live/stat | awk '{print $20}')
boot=$(cat /proc/sys/kernel/random/boot_id)
python3 - "$LLMCTL_HOME/state.db" "$live" "$ticks" "$boot" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); now = int(time.time() * 1000)
db.execute("INSERT INTO servers(name,instance,status,pid,start_ticks,boot_id,port,host,started_at,ready_at,last_used) VALUES('live','i1','running',?,?,?,20400,'127.0.0.1',?,?,?)", (int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], now, now, now))
db.execute("INSERT INTO servers(name,instance,status,pid,start_ticks,boot_id,port,host,started_at) VALUES('gone','i2','running',?,?,?,20401,'127.0.0.1',?)", (int(sys.argv[2]), int(sys.argv[3]) + 1, sys.argv[4], now))
db.execute("INSERT INTO servers(name,instance,status,pid,port,host,error) VALUES('bad','i3','failed',1,20402,'127.0.0.1','crashed')")
db.commit()
PY
sum=$(sha256sum "$LLMCTL_HOME/state.db")
expect_rc 0 llmctl ps --json
echo "$OUT" | python3 -c '
import json, sys
rows = {r["name"]: r for r in json.load(sys.stdin)}
assert set(rows) == {"live", "gone"}, rows
assert rows["live"]["status"] == "running" and rows["live"]["url"] == "http://127.0.0.1:20400", rows["live"]
assert rows["live"]["rss_bytes"] > 0
assert rows["gone"]["status"] == "dead", rows["gone"]   # a recycled pid is not our server
' || fail "ps --json: $OUT"
expect_rc 0 llmctl ps -a --json
echo "$OUT" | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 3'
expect_rc 0 llmctl ps -q
[ "$OUT" = "$(printf 'gone\nlive')" ] || fail "ps -q: $OUT"
expect_rc 0 llmctl ps
echo "$OUT" | grep -q '^live  *running  *[0-9]* *20400 ' || fail "table: $OUT"
[ "$(sha256sum "$LLMCTL_HOME/state.db")" = "$sum" ] || fail "ps modified the state file"
echo "ps: ok"
