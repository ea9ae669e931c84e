# One rule each, everywhere: ps -a tells why a server failed and does not tick a dead row's clock;
# "0" means no limit (start --timeout 0 waits as long as it takes); sizes mean what their units
# say (10MB is 10^7 bytes, a bare 10M is refused); a start that returned with --no-wait is
# finished without being called "adopted"; start of a running server takes no state lock.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"' 'log_max_size = "10MB"'
mock_model m
mock_model held --loading-until "$T/held.loaded"
mock_model crash --crash-at-start
field() { ps_field "$1" "$2" -a; }

# ps -a: a failed server's reason in the table; no UPTIME or IDLE for a failed or dead row.
expect_rc 5 llmctl start crash
expect_rc 0 llmctl start m
kill -KILL "$(field m pid)"
wait_for 5 eval '[ "$(field m status)" = dead ]' || fail "m never showed dead"
expect_rc 0 llmctl ps -a
echo "$OUT" | head -1 | grep -q ' URL  *REASON$' || fail "ps -a has no REASON column: $OUT"
echo "$OUT" | grep -E '^crash +failed +[0-9]+ +[0-9]+ +- +- .*server crash exited with code 3 during startup$' >/dev/null || fail "ps -a crash row: $OUT"
echo "$OUT" | grep -E '^m +dead +[0-9]+ +[0-9]+ +- +- .*killed by SIGKILL \(reap clears the row\)$' >/dev/null || fail "ps -a dead row: $OUT"
expect_rc 0 llmctl reap -q

# 0 is no limit: start --timeout 0 waits for a load that takes as long as it takes.
llmctl start held --timeout 0 >"$T/held.out" 2>"$T/held.err" &
st=$!
wait_for 10 eval '[ -n "$(marked)" ]' || fail "held never spawned"
wait_for 10 grep -q "request GET /health 503" "$LLMCTL_HOME/logs/held.log" || fail "held was never probed"
kill -0 $st 2>/dev/null || fail "start --timeout 0 gave up: $(cat "$T/held.err")"
touch "$T/held.loaded"
wait $st || fail "start --timeout 0 failed: $(cat "$T/held.err")"

# Sizes: "10MB" is 10,000,000 bytes; "10M" is refused with a hint.
expect_rc 0 llmctl config show --json
echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin)["defaults"]["log_max_size"]; assert d in ("9.5MiB", 10000000, "10000000B"), d' \
  || fail "log_max_size 10MB read as: $OUT"
sed 's/"10MB"/"10M"/' "$LLMCTL_CONFIG" >"$T/ambiguous.toml"
expect_rc 3 llmctl --config "$T/ambiguous.toml" config check
echo "$ERR" | grep -q 'ambiguous.toml:4:16: "log_max_size" = "10M": is that powers of 1024 or of 1000?' || fail "10M: $ERR"
echo "$ERR" | grep -q 'hint: write "10MiB" (binary: KiB MiB GiB TiB) or "10MB"' || fail "10M hint: $ERR"

# --no-wait, then start: the wait is finished, and that is not an adoption.
expect_rc 0 llmctl stop held
rm -f "$T/held.loaded"
expect_rc 0 llmctl start held --no-wait
touch "$T/held.loaded"
expect_rc 0 llmctl start held --json
echo "$OUT" | grep -q '"adopted":false' || fail "start after --no-wait: $OUT"

# start of a running server takes no state lock, even when its last_used is stale.
expect_rc 0 llmctl start m
aged() { python3 -c 'import sqlite3,sys,time; r=sqlite3.connect(sys.argv[1]).execute("select last_used from servers where name=?", ("m",)).fetchone(); sys.exit(0 if time.time()*1000 - r[0] > 1500 else 1)' "$LLMCTL_HOME/state.db"; }
wait_for 10 aged || fail "last_used never aged"
expect_rc 0 env LLMCTL_DEBUG=lock "$LLMCTL_BIN" start m
echo "$ERR" | grep -q "debug: lock" && fail "start of a running server took the lock: $ERR"
aged && fail "start of a running server did not refresh last_used"
# stop --all with a failed row whose port a live server now holds (the failed crash row's).
expect_rc 0 llmctl stop --all -q
[ -z "$(llmctl ps -a -q)" ] || fail "stop --all left rows: $(llmctl ps -a)"
echo "consistency: ok"
