# Two hosts, played by two state dirs on this machine: host A's config has a model whose url is
# host B's llmctl serve. It works through A's serve and A's llmctl chat, and B's slots hold: B's
# model has max_concurrent = 1, so the requests A lets through at once (its own max_concurrent
# is 8) never overlap at B's mock (its request log).
. "$TEST_LIB"
port_a=$((PORT_BASE + 50))
port_b=$((PORT_BASE + 51))
# Host B: its own state dir and config, under $T (marked_under "$T" kills its servers at exit).
B_HOME="$T/host-b/state"
B_CONFIG="$T/host-b/config.toml"
on_b() { LLMCTL_HOME="$B_HOME" LLMCTL_CONFIG="$B_CONFIG" "$@"; }
on_cleanup() { on_b "$LLMCTL_BIN" stop --all -q; }
mkdir -p "$T/host-b"
# 10 tokens at 20 a second: half a second a stream, during which B's one slot is taken.
cat >"$B_CONFIG" <<EOF
[defaults]
port_range = [$((PORT_BASE + 21)), $((PORT_BASE + 40))]
[models.bm]
command = ["$MOCK_BIN", "--port", "{port}", "--tokens-per-second", "20", "--reply-tokens", "10", "--request-log", "$T/host-b/requests.log"]
max_concurrent = 1
EOF
# (A simple command, so that the job is serve itself and $! its PID.)
LLMCTL_HOME="$B_HOME" LLMCTL_CONFIG="$B_CONFIG" "$LLMCTL_BIN" serve --listen 127.0.0.1:$port_b 2>"$T/serve.b.log" &
serve_b=$!
wait_for 20 curl -sf -o /dev/null "http://127.0.0.1:$port_b/health" || fail "B's serve never answered: $(cat "$T/serve.b.log")"
# Host A: a model that is B's serve.
mock_config
config_add '[models.remote]' "url = \"http://127.0.0.1:$port_b\"" 'model = "bm"' 'max_concurrent = 8'
start_serve $port_a
full="$(seq -s ' ' -f 'tok%g' 0 9)"

# 4 streams and 2 whole answers through A's serve, and 2 chats on A, all at once.
for i in 1 2 3 4; do
  curl -sN --max-time 60 "$SERVE_URL/v1/chat/completions" -d "$(chat_body remote "stream $i" true)" >"$T/stream.$i" &
done
for i in 1 2; do
  curl -s --max-time 60 -o "$T/whole.$i" -w '%{http_code}' "$SERVE_URL/v1/chat/completions" -d "$(chat_body remote "whole $i")" >"$T/whole.$i.status" &
  eval "whole$i=\$!"
done
for i in 1 2; do
  "$LLMCTL_BIN" chat remote "chat $i" >"$T/chat.$i" 2>"$T/chat.$i.err" &
  eval "chat$i=\$!"
done
# While they run, A lets several through at once and B queues them behind its one slot.
# sql DB QUERY: the first column of its first row; never creates the file.
sql() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True).execute(sys.argv[2]).fetchone()[0])' "$1" "$2"; }
queued_at_b() {
  [ -f "$B_HOME/state.db" ] && [ -f "$LLMCTL_HOME/state.db" ] &&
    [ "$(sql "$LLMCTL_HOME/state.db" "SELECT count(*) FROM leases WHERE model='remote' AND state='active'")" -ge 2 ] &&
    [ "$(sql "$B_HOME/state.db" "SELECT count(*) FROM leases WHERE model='bm' AND state='waiting'")" -ge 1 ]
}
wait_for 20 queued_at_b || fail "never several requests through A and a queue at B"
[ "$(sql "$B_HOME/state.db" "SELECT count(*) FROM leases WHERE model='bm' AND state='active'")" -le 1 ] || fail "B let two in at once"

# Every answer is whole.
for i in 1 2; do
  rc=0; eval "wait \$whole$i" || rc=$?
  [ $rc = 0 ] && [ "$(cat "$T/whole.$i.status")" = 200 ] || fail "whole answer $i: rc $rc, HTTP $(cat "$T/whole.$i.status"): $(cat "$T/whole.$i")"
  [ "$(json_get choices.0.message.content <"$T/whole.$i")" = "$full" ] || fail "whole answer $i: $(cat "$T/whole.$i")"
  rc=0; eval "wait \$chat$i" || rc=$?
  [ $rc = 0 ] || fail "chat $i exited $rc: $(cat "$T/chat.$i.err")"
  grep -q "^$full" "$T/chat.$i" || fail "chat $i: $(cat "$T/chat.$i")"
done
streams_done() { [ "$(grep -lx 'data: \[DONE\]' "$T"/stream.? | wc -l)" = 4 ]; }
wait_for 30 streams_done || fail "not every stream ended"
for i in 1 2 3 4; do
  [ "$(sse_text <"$T/stream.$i")" = "$full" ] || fail "stream $i: $(cat "$T/stream.$i")"
done

# At B's mock, one request at a time: each began after the one before had ended.
python3 - "$T/host-b/requests.log" <<'PY' || fail "B's mock ran requests at once: $(cat "$T/host-b/requests.log")"
import json, sys
rows = []
for line in open(sys.argv[1]):
    start, end, pid, stream, msg = line.rstrip("\n").split(" ", 4)
    rows.append((int(start), int(end), int(pid), json.loads(msg)))
want = {"stream %d" % i for i in range(1, 5)} | {"whole 1", "whole 2", "chat 1", "chat 2"}
got = {r[3] for r in rows}
if got != want or len(rows) != 8:
    sys.exit("requests at B: %s" % sorted(r[3] for r in rows))
if len({r[2] for r in rows}) != 1:
    sys.exit("more than one mock served")
rows.sort()
for a, b in zip(rows, rows[1:]):
    if b[0] < a[1]:
        sys.exit("%r began %d ms before %r ended" % (b[3], (a[1] - b[0]) // 10**6, a[3]))
PY
[ "$(sql "$B_HOME/state.db" 'SELECT count(*) FROM leases')" = 0 ] || fail "leases left at B"
[ "$(sql "$LLMCTL_HOME/state.db" 'SELECT count(*) FROM leases')" = 0 ] || fail "leases left at A"

# B's model is B's: A's ps does not list it, B's does, and B's stop stops it.
[ -z "$(ps_field bm status)" ] || fail "A lists B's model"
[ "$(on_b ps_field bm status)" = running ] || fail "B's model does not run: $(on_b "$LLMCTL_BIN" ps)"
bm_pid=$(on_b ps_field bm pid)
kill -TERM $serve_b
wait_for 30 eval '! alive $serve_b' || fail "B's serve still runs 30 s after SIGTERM"
wait $serve_b || fail "B's serve did not exit 0 on SIGTERM: $(tail -3 "$T/serve.b.log")"
on_b "$LLMCTL_BIN" stop --all -q || fail "B's stop --all failed"
wait_for 10 eval '! alive $bm_pid' || fail "B's model still runs after B's stop"
echo "serve_remote: ok"
