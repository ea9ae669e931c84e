# llmctl events (issue 22): -f shows spawned, ready and evicted as they happen; --json lines
# parse; NAME, -n and --since filter; it takes no lock and writes nothing; -f ends at Ctrl-C
# (130) and when its reader goes away (0).
. "$TEST_LIB"
# Two 1 GiB models in a 1 GiB pool: starting b evicts a.
mock_config "pool = \"p\"" "[pools.p]" "memory = \"1GiB\""
for m in a b; do
  mock_model $m
  config_add 'memory = "1GiB"'
done
expect_rc 0 llmctl events # no state file yet: nothing, exit 0
[ -z "$OUT" ] || fail "events without a state file: $OUT"

"$LLMCTL_BIN" events -f --json >"$T/follow" 2>"$T/follow.err" & # (the binary itself: $! is its pid)
follower=$!
expect_rc 0 llmctl start a
expect_rc 0 llmctl start b
seen() { python3 - "$T/follow" "$@" <<'EOP'
import json, sys
kinds = [(e["server"], e["kind"]) for e in map(json.loads, open(sys.argv[1]))]
want = [tuple(w.split(":")) for w in sys.argv[2:]]
sys.exit(0 if all(w in kinds for w in want) else 1)
EOP
}
wait_for 10 seen a:spawned a:ready b:spawned b:ready a:evicted || fail "events -f did not show them: $(cat "$T/follow") $(cat "$T/follow.err")"
# In order, each once, every line JSON with the documented fields.
python3 - "$T/follow" <<'EOP' || fail "events -f --json: $(cat "$T/follow")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ids = [r["id"] for r in rows]
assert ids == sorted(set(ids)), ids
for r in rows:
    assert set(r) == {"id", "at", "time", "server", "kind", "detail"}, r
    assert r["time"].endswith("Z") and isinstance(r["at"], int), r
EOP
kill -INT $follower
rc=0; wait $follower || rc=$?
[ $rc = 130 ] || fail "events -f after SIGINT exited $rc"

# following PID: the follower has the state file open (it reads the newest id through that
# connection at once, then polls it).
following() {
  wait_for 10 eval "ls -l /proc/$1/fd 2>/dev/null | grep -q 'state.db\$'" || fail "events -f ($1) never opened the state file"
}

# A state file made anew under a follower (moved aside, as llmctl does with a corrupt one)
# numbers its events from 1 again: the follower shows them, not only those past its old ids.
"$LLMCTL_BIN" events -f -n 0 --json >"$T/follow2" 2>"$T/follow2.err" &
follower=$!
following $follower # (-n 0: an event recorded before it read the newest id would not be shown)
expect_rc 0 llmctl stop b
wait_for 10 eval 'grep -q stopped "$T/follow2"' || fail "events -f did not show the stop: $(cat "$T/follow2")"
grep -q '"id":1,' "$T/follow2" && fail "events -f -n 0 printed the first event: $(cat "$T/follow2")"
mkdir "$T/aside"
mv "$LLMCTL_HOME"/state.db* "$T/aside/"
expect_rc 0 llmctl start a
wait_for 10 eval 'grep -q "\"id\":1," "$T/follow2"' || fail "events -f missed the new state file's events: $(cat "$T/follow2")"
kill -INT $follower
wait $follower || true
expect_rc 0 llmctl stop a
mv "$T"/aside/state.db* "$LLMCTL_HOME/" # (b's history back, for the filters below)

# Filters: a server's, the last N, the last DUR; the plain lines.
expect_rc 0 llmctl events b
! echo "$OUT" | grep -qv '  b  ' || fail "events b showed other servers: $OUT"
echo "$OUT" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]{12}  b +spawned +pid [0-9]+ port [0-9]+$' || fail "events b: $OUT"
expect_rc 0 llmctl events -n 2
[ "$(echo "$OUT" | wc -l)" = 2 ] || fail "events -n 2: $OUT"
expect_rc 0 llmctl events -n 0
[ -z "$OUT" ] || fail "events -n 0: $OUT"
expect_rc 0 llmctl events --since 1h
[ "$(echo "$OUT" | wc -l)" -ge 5 ] || fail "events --since 1h: $OUT"
expect_rc 2 llmctl events --since soon
expect_rc 2 llmctl events "../x"

# No lock, no writes: with the state lock held elsewhere, events answers; the state file's
# bytes do not change.
before=$(state_bytes)
hold_state_lock
expect_rc 0 timeout 5 "$LLMCTL_BIN" events -n 1
timeout 1 "$LLMCTL_BIN" events -f -n 0 >/dev/null || true
[ "$(state_bytes)" = "$before" ] || fail "events wrote to the state file"
kill $HOLDER

# A newer llmctl migrates the state file under a follower: it says so and exits 7, as a new
# events would (it keeps its connection between polls).
"$LLMCTL_BIN" events -f -n 0 >/dev/null 2>"$T/newer.err" &
follower=$!
following $follower
python3 -c 'import sqlite3,sys
db = sqlite3.connect(sys.argv[1])
v = db.execute("PRAGMA user_version").fetchone()[0]
db.execute("PRAGMA user_version=%d" % (v + 1)); db.commit()' "$LLMCTL_HOME/state.db"
gone() { ! alive "$follower"; }
wait_for 10 gone || { kill -INT $follower; fail "events -f went on following a state file of a newer llmctl"; }
rc=0; wait $follower || rc=$?
[ $rc = 7 ] || fail "events -f on a newer state file exited $rc, want 7: $(cat "$T/newer.err")"
grep -q "newer" "$T/newer.err" || fail "events -f on a newer state file: $(cat "$T/newer.err")"
expect_rc 7 llmctl events -n 1
python3 -c 'import sqlite3,sys
db = sqlite3.connect(sys.argv[1])
v = db.execute("PRAGMA user_version").fetchone()[0]
db.execute("PRAGMA user_version=%d" % (v - 1)); db.commit()' "$LLMCTL_HOME/state.db"

# -f ends when its reader goes away.
expect_rc 0 timeout 10 sh -c '"$1" events -f | head -1' sh "$LLMCTL_BIN"
echo "events: ok"
