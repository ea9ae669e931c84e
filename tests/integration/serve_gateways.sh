# Gateways in ps: `ps` adds a second table only while one runs, `ps --gateways [--json]` lists them
# with their requests in flight and served; a clean exit deletes the row, a kill -9 leaves one that
# ps ignores and reap or the next serve deletes. A state file migrated by a newer llmctl makes
# serve say why and exit 7.
. "$TEST_LIB"
mock_config
mock_model m --tokens-per-second 100 --reply-tokens 3 --hold-until "$T/go"
sql() { python3 -c 'import sqlite3,sys; [print("|".join(map(str, r))) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$LLMCTL_HOME/state.db" "$1"; }
gw_rows() { sql "SELECT count(*) FROM gateways"; }
# gw FIELD: FIELD of each live gateway in `ps --gateways --json`, space-separated.
gw() { llmctl ps --gateways --json | python3 -c 'import json,sys; print(" ".join(str(g[sys.argv[1]]) for g in json.load(sys.stdin)))' "$1"; }
gw_is() { [ "$(gw "$1")" = "$2" ]; }
serve_at() { ! port_open "$1" || fail "port $1 is already taken"; start_serve "$@"; }

# Nothing runs: ps prints the servers' table only, --gateways an empty one.
expect_rc 0 llmctl ps
[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "ps without a gateway printed more than the header: $OUT"
expect_rc 0 llmctl ps --gateways
[ "$OUT" = "$(printf 'GATEWAY  PID  IN FLIGHT  SERVED  UPTIME')" ] || fail "empty gateways table: $OUT"
expect_rc 0 llmctl ps --gateways --json
[ "$OUT" = "[]" ] || fail "empty gateways json: $OUT"

port_a=$((PORT_BASE + 50))
serve_at $port_a
pid_a=$SERVE_PID
url_a=$SERVE_URL
[ "$(gw url)" = "$url_a" ] && [ "$(gw pid)" = "$pid_a" ] || fail "ps --gateways --json: $(llmctl ps --gateways --json)"
llmctl ps --gateways --json | python3 -c '
import json, sys, time
g = json.load(sys.stdin)[0]
assert set(g) == {"url", "pid", "in_flight", "served", "started_at"}, g
assert g["in_flight"] == 0 and g["served"] == 0, g
assert abs(g["started_at"] / 1000 - time.time()) < 120, g' || fail "gateway object: $(llmctl ps --gateways --json)"
# ps --json stays an array of servers.
[ "$(llmctl ps --json)" = "[]" ] || fail "ps --json lists more than servers: $(llmctl ps --json)"
# ps: the servers' table, a blank line, the gateways' table.
expect_rc 0 llmctl ps
[ "$(echo "$OUT" | sed -n 2p)" = "" ] || fail "no blank line before the gateways: $OUT"
echo "$OUT" | sed -n 3p | grep -qx 'GATEWAY  *PID  *IN FLIGHT  *SERVED  *UPTIME' || fail "gateways header: $OUT"
echo "$OUT" | sed -n 4p | grep -q "^$url_a  *$pid_a  *0  *0  *[0-9]" || fail "gateway row: $OUT"

# Two held streams: in flight 2 (published within about a second), then served 2.
curl -sN -m 60 -o "$T/s1" "$url_a/v1/chat/completions" -d "$(chat_body m one true)" &
c1=$!
curl -sN -m 60 -o "$T/s2" "$url_a/v1/chat/completions" -d "$(chat_body m two true)" &
c2=$!
wait_for 30 gw_is in_flight 2 || fail "in flight never showed 2: $(llmctl ps --gateways --json)"
llmctl ps --gateways | grep -q "^$url_a  *$pid_a  *2  *0 " || fail "gateways table in flight: $(llmctl ps --gateways)"
touch "$T/go"
wait $c1 && wait $c2 || fail "a stream failed"
wait_for 10 gw_is served 2 || fail "served never showed 2: $(llmctl ps --gateways --json)"
gw_is in_flight 0 || fail "in flight not back to 0: $(llmctl ps --gateways --json)"

# kill -9: the row stays but nobody lists it; the next serve deletes it.
serve_at $((PORT_BASE + 51))
pid_b=$SERVE_PID
wait_for 10 gw_is pid "$pid_a $pid_b" || fail "two gateways not listed: $(llmctl ps --gateways --json)"
kill -KILL "$pid_b"
wait "$pid_b" 2>/dev/null || true
[ "$(gw pid)" = "$pid_a" ] || fail "a killed gateway is listed: $(llmctl ps --gateways --json)"
[ "$(gw_rows)" = 2 ] || fail "the killed gateway's row: $(sql 'SELECT * FROM gateways')"
serve_at $((PORT_BASE + 52))
pid_c=$SERVE_PID
[ "$(sql 'SELECT owner_pid FROM gateways ORDER BY id' | tr '\n' ' ')" = "$pid_a $pid_c " ] ||
  fail "the next serve did not delete the dead row: $(sql 'SELECT * FROM gateways')"
# ...and reap deletes it too.
kill -KILL "$pid_c"
wait "$pid_c" 2>/dev/null || true
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^gateway_cleared (pid $pid_c): the gateway on http://127.0.0.1:$((PORT_BASE + 52)) is gone" ||
  fail "reap did not clear the dead gateway: $OUT"
[ "$(gw_rows)" = 1 ] || fail "rows after reap: $(sql 'SELECT * FROM gateways')"

# A clean exit deletes the row; ps then prints no second table.
kill -TERM "$pid_a"
wait "$pid_a" || fail "serve did not exit 0 on SIGTERM"
[ "$(gw_rows)" = 0 ] || fail "a clean exit left the row: $(sql 'SELECT * FROM gateways')"
expect_rc 0 llmctl ps
echo "$OUT" | grep -q '^m  *running' || fail "ps: $OUT"
! echo "$OUT" | grep -q -e '^$' -e GATEWAY || fail "ps without a gateway printed a gateways table: $OUT"

# A newer llmctl migrates the state file under a running serve: a request gets 503, serve logs
# why and exits 7 (systemd restarts the new binary) instead of failing every request.
serve_at $((PORT_BASE + 53))
pid_d=$SERVE_PID
python3 -c 'import sqlite3,sys
db = sqlite3.connect(sys.argv[1])
v = db.execute("PRAGMA user_version").fetchone()[0]
db.execute("PRAGMA user_version=%d" % (v + 1)); db.commit()' "$LLMCTL_HOME/state.db"
code=$(curl -s -m 30 -o "$T/newer.body" -w '%{http_code}' "$SERVE_URL/v1/chat/completions" -d "$(chat_body m newer)") || true
case $code in 503|000) ;; *) fail "a request on a newer state file got HTTP $code: $(cat "$T/newer.body")" ;; esac
gone() { ! alive "$pid_d"; }
wait_for 10 gone || fail "serve still runs on a newer state file: $(tail -5 "$T/serve.$((PORT_BASE + 53)).log")"
rc=0; wait "$pid_d" || rc=$?
[ $rc = 7 ] || fail "serve exited $rc on a newer state file, want 7: $(tail -5 "$T/serve.$((PORT_BASE + 53)).log")"
grep -q 'stopping: state file .* has schema version [0-9]*, newer than this llmctl understands' "$T/serve.$((PORT_BASE + 53)).log" ||
  fail "serve's log does not say why: $(cat "$T/serve.$((PORT_BASE + 53)).log")"
grep -q '^llmctl: error: state file .* newer than this llmctl' "$T/serve.$((PORT_BASE + 53)).log" ||
  fail "no error line: $(cat "$T/serve.$((PORT_BASE + 53)).log")"
# ...and a serve started on it exits 7 at once; so does ps.
expect_rc 7 timeout 20 "$LLMCTL_BIN" serve --listen 127.0.0.1:$((PORT_BASE + 54))
echo "$ERR" | grep -q 'newer than this llmctl' || fail "serve on a newer file: $ERR"
expect_rc 7 llmctl ps
# Put the version back so the clean-up's stop can read the file.
python3 -c 'import sqlite3,sys
db = sqlite3.connect(sys.argv[1])
v = db.execute("PRAGMA user_version").fetchone()[0]
db.execute("PRAGMA user_version=%d" % (v - 1)); db.commit()' "$LLMCTL_HOME/state.db"
echo "serve_gateways: ok"
