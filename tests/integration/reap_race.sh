# reap next to 16 parallel start/stop loops: no command fails, no duplicate server appears,
# nothing live is reaped.
. "$TEST_LIB"
mock_config --range 50
for m in m1 m2 m3 m4; do mock_model $m; done
llmctl state init -q
loops=()
for w in $(seq 0 15); do
  ( m=m$(( w % 4 + 1 ))
    for i in 1 2 3 4 5 6; do
      llmctl start "$m" >/dev/null 2>>"$T/loop.$w.err" || { echo "start $m failed" >>"$T/loop.$w.err"; exit 1; }
      llmctl stop "$m" -q 2>>"$T/loop.$w.err" || { echo "stop $m failed" >>"$T/loop.$w.err"; exit 1; }
    done ) &
  loops+=($!)
done
# reap and a duplicate watcher run until the loops end.
touch "$T/running"
( n=0; while [ -e "$T/running" ]; do llmctl reap >>"$T/reap.out" 2>>"$T/reap.err" || echo "reap rc $?" >>"$T/reap.err"; n=$((n + 1)); done; echo $n >"$T/reaps" ) &
reaper=$!
( while [ -e "$T/running" ]; do
    # Two live servers of one name (by marker) at any moment is a duplicate.
    for p in $(marked); do tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep '^LLMCTL_NAME=' || true; done | sort | uniq -d >>"$T/dups"
  done ) &
watcher=$!
failed=0
for i in "${!loops[@]}"; do wait "${loops[$i]}" || { failed=1; echo "loop $i: $(cat "$T/loop.$i.err")" >&2; }; done
rm "$T/running"
wait "$reaper" "$watcher"
[ $failed = 0 ] || fail "a start/stop loop failed"
[ ! -s "$T/reap.err" ] || fail "reap failed: $(cat "$T/reap.err")"
[ ! -s "$T/reap.out" ] || fail "reap acted on live work: $(cat "$T/reap.out")"
[ ! -s "$T/dups" ] || fail "duplicate servers seen: $(sort -u "$T/dups")"
[ "$(cat "$T/reaps")" -gt 3 ] || fail "reap ran only $(cat "$T/reaps") times"
[ -z "$(marked)" ] || fail "servers left: $(marked)"
echo "reap_race: ok ($(cat "$T/reaps") reaps next to 192 starts and stops)"
