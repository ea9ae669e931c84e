# 48 concurrent first requests for 3 stopped models, through 2 `llmctl serve` processes and 6
# `llmctl chat` calls, 2 rounds: one spawn per model per round (the state file's `spawned`
# events), and every client gets its own text back (the mock echoes it).
. "$TEST_LIB"
# At exit, first the whole tree of each background job: a client's curl or chat runs under a
# subshell, and a chat that outlived the test would start its model again.
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
mock_config
# The starts take a while, so the 48 requests all arrive while they are under way.
for m in m1 m2 m3; do mock_model $m --startup-delay 700ms; done
# serve_at PORT [ARG...]: start_serve on a port that nothing holds (a stale serve's /health would
# pass for ours).
serve_at() { ! port_open "$1" || fail "port $1 is already taken"; start_serve "$@"; }
serve_at $((PORT_BASE + 50))
url_a=$SERVE_URL
serve_at $((PORT_BASE + 51))
url_b=$SERVE_URL

spawned() {
  python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM events WHERE kind='spawned'\").fetchone()[0])" "$LLMCTL_HOME/state.db"
}
# ask I TEXT: client I (0..47) sends TEXT to its model; the reply text lands in $T/got.I.
#   I % 8 in 0..2: serve A, 3..5: serve B (odd I streaming), 6 and 7 of each 16: llmctl chat.
ask() {
  local i=$1 text=$2 m=m$(( $1 % 3 + 1 )) url stream=false
  if [ $((i % 8)) -ge 6 ] && [ $((i % 16)) -ge 8 ]; then
    timeout 60 "$LLMCTL_BIN" chat "$m" "$text" >"$T/got.$i" 2>"$T/err.$i"
    return
  fi
  [ $((i % 8)) -lt 3 ] && url=$url_a || url=$url_b
  [ $((i % 2)) = 1 ] && stream=true
  curl -sN -m 60 -o "$T/body.$i" -w '%{http_code}' "$url/v1/chat/completions" -d "$(chat_body "$m" "$text" "$stream")" >"$T/code.$i" 2>"$T/err.$i"
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
  for i in $(seq 0 47); do
    texts[$i]="round $round client $i says $RANDOM$RANDOM"
    ask "$i" "${texts[$i]}" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "round $round: client $i failed: $(cat "$T/err.$i")"; done
  chats=0
  for i in $(seq 0 47); do
    [ -e "$T/code.$i" ] || chats=$((chats + 1))
    [ "$(cat "$T/got.$i")" = "${texts[$i]}" ] || fail "round $round: client $i sent '${texts[$i]}', got '$(cat "$T/got.$i")'"
  done
  [ "$chats" = 6 ] || fail "round $round: $chats chat clients, want 6"
  n=$(spawned)
  [ "$n" = $((round * 3)) ] || fail "round $round: $n spawned events, want $((round * 3))"
  [ "$(ps_rows name,status | sort | tr '\n' ' ')" = "m1:running m2:running m3:running " ] || fail "round $round: ps: $(llmctl ps)"
  [ "$(count_marked)" = 3 ] || fail "round $round: $(count_marked) live servers, want 3"
  llmctl stop --all -q
  [ "$(llmctl ps -q)" = "" ] || fail "round $round: servers left after stop --all"
done
echo "serve_race: ok"
