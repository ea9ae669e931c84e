# Two rounds of 40 concurrent requests over 4 models in a pool that fits 2 (9 GiB each in 20 GiB), through 2
# `llmctl serve` processes and `llmctl chat`: every request completes with its own text, nothing
# deadlocks, and an observer that reads only /proc (tests/tools/pool_observer.py: lifetimes from
# /proc and pidfds, memory in use by double passes) never sees more than 20 GiB of live servers.
. "$TEST_LIB"
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
GiB=$((1 << 30))
mock_config "pool = \"p\"" "max_concurrent = 3" "[pools.p]" "memory = \"20GiB\""
for m in m1 m2 m3 m4; do
  mock_model $m --tokens-per-second 40
  config_add "memory = \"9GiB\""
done
serve_at() { ! port_open "$1" || fail "port $1 is already taken"; start_serve "$@"; }
serve_at $((PORT_BASE + 30))
url_a=$SERVE_URL
serve_at $((PORT_BASE + 31))
url_b=$SERVE_URL

python3 "$(dirname "$TEST_LIB")/../tools/pool_observer.py" "$LLMCTL_HOME" "$T/stop-observer" \
  m1=$((9 * GiB)) m2=$((9 * GiB)) m3=$((9 * GiB)) m4=$((9 * GiB)) _budget=$((20 * GiB)) >"$T/observed.json" &
observer=$!

# ask I TEXT: client I sends TEXT to model m(I % 4 + 1): I % 8 in 0..2 through serve A, 3..5
# serve B (odd I streaming), 6 and 7 through llmctl chat; the reply lands in $T/got.I.
ask() {
  local i=$1 text=$2 m=m$(( $1 % 4 + 1 )) url stream=false
  if [ $((i % 8)) -ge 6 ]; then
    timeout 120 "$LLMCTL_BIN" chat "$m" "$text" >"$T/got.$i" 2>"$T/err.$i"
    return
  fi
  [ $((i % 8)) -lt 3 ] && url=$url_a || url=$url_b
  [ $((i % 2)) = 1 ] && stream=true
  curl -sN -m 120 -o "$T/body.$i" -w '%{http_code}' "$url/v1/chat/completions" -d "$(chat_body "$m" "$text" "$stream")" >"$T/code.$i" 2>"$T/err.$i"
  if [ "$(cat "$T/code.$i")" != 200 ]; then
    echo "HTTP $(cat "$T/code.$i"): $(cat "$T/body.$i")" >"$T/got.$i"
  elif [ $stream = true ]; then
    sse_text <"$T/body.$i" >"$T/got.$i"
  else
    json_get choices.0.message.content <"$T/body.$i" >"$T/got.$i" 2>&1 || echo "bad body: $(cat "$T/body.$i")" >"$T/got.$i"
  fi
}

for round in 1 2; do
  pids=() texts=()
  rm -f "$T"/code.*
  for i in $(seq 0 39); do
    texts[$i]="round $round client $i says a few words to its model $RANDOM"
    ask "$i" "${texts[$i]}" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "round $round: client $i failed: $(cat "$T/err.$i")"; done
  for i in $(seq 0 39); do
    [ "$(cat "$T/got.$i")" = "${texts[$i]}" ] || fail "round $round: client $i sent '${texts[$i]}', got '$(cat "$T/got.$i")'"
  done
done
touch "$T/stop-observer"
wait "$observer" || fail "the observer failed"
python3 - "$T/observed.json" <<'PY' || fail "observer: $(cat "$T/observed.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert not r["over_budget"], r["over_budget"]
assert r["worst"]["bytes"] <= 20 << 30, r["worst"]
servers = r["servers"]
# Every model ran, so some server was evicted for another (4 models, room for 2).
assert len({s["name"] for s in servers}) == 4, servers
assert len(servers) >= 6, servers  # round 2 starts again what round 1 evicted
print("memory_race: %d passes, %d server processes, at most %s live at once" % (r["passes"], len(servers), r["worst"]["servers"]))
PY
events=$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT count(*) FROM events WHERE kind='evicted'")
[ "$events" -ge 4 ] || fail "$events evictions for 4 models in room for 2, twice"
queue=$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT count(*) FROM admissions")
[ "$queue" = 0 ] || fail "$queue places left in the queue"
llmctl stop --all -q
echo "memory_race: ok"
