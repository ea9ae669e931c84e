# A lost state file is rebuilt from the servers' markers (no second server ever spawns); a
# corrupt one is moved aside by reap --rebuild (never deleted) and rebuilt the same way.
. "$TEST_LIB"
mock_config
for m in a b c; do mock_model $m; done
db="$LLMCTL_HOME/state.db"
ports_of() { ps_rows name,port,status; }
start_all() { for m in a b c; do llmctl start "$m" >/dev/null; done; }
events() { python3 -c 'import sqlite3,sys; print(" ".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("select kind from events order by id")))' "$db"; }

start_all
before=$(ports_of)
pids=$(marked | sort)
rm -f "$db" "$db-wal" "$db-shm"
expect_rc 0 llmctl ps
echo "$ERR" | grep -q "warning: 3 server(s) of this state dir run without a row" || fail "ps gave no warning: $ERR"
expect_rc 0 llmctl start b
[ "$OUT" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "start b after loss: $OUT"
[ "$(marked | sort)" = "$pids" ] || fail "processes changed: $pids -> $(marked | sort)"
[ "$(ports_of)" = "$before" ] || fail "ps after rebuild: $(ports_of), before: $before"
[ "$(events)" = "rebuilt rebuilt rebuilt" ] || fail "events after rebuild: $(events)"
expect_rc 0 llmctl stop --all
[ -z "$(marked)" ] || fail "stop --all left $(marked)"

# stop --all right after the loss stops everything too.
start_all
rm -f "$db" "$db-wal" "$db-shm"
expect_rc 0 llmctl stop --all
[ -z "$(marked)" ] || fail "stop --all after loss left $(marked)"

# A corrupt file: commands refuse it (exit 1) and leave it as it is; reap --rebuild moves it aside.
start_all
pids=$(marked | sort)
llmctl reap -q   # checkpoint, so the file holds everything
head -c 8192 /dev/urandom >"$db"; rm -f "$db-wal" "$db-shm"
sum=$(sha256sum <"$db")
expect_rc 1 llmctl start a
[ "$(sha256sum <"$db")" = "$sum" ] || fail "start wrote to the corrupt file"
expect_rc 0 llmctl reap --rebuild
echo "$OUT" | grep -q "^moved_aside: unreadable state file kept as $db.corrupt-" || fail "reap --rebuild: $OUT"
[ "$(echo "$OUT" | grep -c '^rebuilt ')" = 3 ] || fail "want 3 rebuilt lines: $OUT"
kept=$(ls "$db".corrupt-* | grep -v -- '-wal$\|-shm$')
[ "$(sha256sum <"$kept")" = "$sum" ] || fail "the corrupt file was not kept as it was"
[ "$(marked | sort)" = "$pids" ] || fail "processes changed by rebuild"
[ "$(ports_of)" = "$before" ] || fail "ps after reap --rebuild: $(ports_of)"
expect_rc 0 llmctl reap --rebuild   # readable now: nothing moved
[ -z "$OUT" ] || fail "second --rebuild did something: $OUT"
llmctl stop --all -q
[ -z "$(marked)" ] || fail "left $(marked)"

# A damaged row (a flipped byte made its host a public address, its port another) never sends
# llmctl there: chat --no-start refuses it, start and reap repair it from the server's markers.
damage() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update servers set host=?, port=port+7 where name=?", ("126.0.0.1", sys.argv[2])); c.commit()' "$db" "$1"; }
expect_rc 0 llmctl start a
url=$OUT
damage a
expect_rc 1 llmctl chat a hi --no-start --connect-timeout 1s
echo "$ERR" | grep -q "row of a .*126.0.0.1:.* does not match that server's markers" || fail "chat on a damaged row: $ERR"
expect_rc 0 llmctl start a
[ "$OUT" = "$url" ] || fail "start did not repair the row: $OUT, want $url"
events | grep -q repaired || fail "no repaired event: $(events)"
damage a
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^repaired a .*host 126.0.0.1 .*repaired to the server's markers" || fail "reap did not repair: $OUT"
expect_rc 0 llmctl chat a "back" --no-start
[ "$OUT" = back ] || fail "chat after the repair: $OUT"
llmctl stop --all -q
echo "rebuild: ok"
