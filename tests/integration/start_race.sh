# 32 parallel starts over 4 models, 5 rounds: one spawn per model, one URL per model.
. "$TEST_LIB"
mock_config --range 50
for m in m1 m2 m3 m4; do mock_model $m --startup-delay 200ms; done
for round in 1 2 3 4 5; do
  pids=()
  for i in $(seq 0 31); do
    m=m$(( i % 4 + 1 ))
    llmctl start "$m" >"$T/url.$i" 2>"$T/err.$i" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "round $round: start $i failed: $(cat "$T/err.$i")"; done
  for m in 1 2 3 4; do
    urls=$(for i in $(seq $((m - 1)) 4 31); do cat "$T/url.$i"; done | sort -u)
    [ "$(echo "$urls" | wc -l)" = 1 ] || fail "round $round: m$m callers saw several URLs: $urls"
  done
  ports=$(cat "$T"/url.* | sort -u | wc -l)
  [ "$ports" = 4 ] || fail "round $round: $ports distinct URLs, want 4"
  spawned=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM events WHERE kind='spawned'\").fetchone()[0])" "$LLMCTL_HOME/state.db")
  [ "$spawned" = $((round * 4)) ] || fail "round $round: $spawned spawned events, want $((round * 4))"
  live=$(ps_rows status | grep -cx running || true)
  [ "$live" = 4 ] || fail "round $round: $live running servers"
  llmctl stop --all -q
  [ "$(llmctl ps -q)" = "" ] || fail "servers left after stop --all"
done
echo "start_race: ok"
