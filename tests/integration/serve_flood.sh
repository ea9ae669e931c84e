# llmctl serve under a flood of bad connections (serve_flood.py): 1,000 connections, 250 at once,
# sending garbage, half a request line, 64 KiB of headers or stalling mid-header, while a client's
# valid GET /v1/models and chat requests all succeed; afterwards serve's descriptors are back to
# where they were, its RSS grew by less than 10 MiB (outside ASan), it is alive, its log shows no
# crash, and SIGTERM stops it within seconds (no flood connection left to drain). First a quick
# look at the refusals that serve.sh covers in full.
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
mock_config
mock_model m1
port=$((PORT_BASE + 50))
export FLOOD_KEY=flood-key-42
start_serve $port --api-key-env FLOOD_KEY --header-timeout 2s
log=$T/serve.$port.log
auth=(-H "Authorization: Bearer $FLOOD_KEY")
code() { curl -s -m 60 -o "$T/body" -w '%{http_code}' "$@"; }

# The refusals, once each.
[ "$(code "$SERVE_URL/v1/models")" = 401 ] || fail "no key: $(cat "$T/body")"
[ "$(code -H 'Authorization: Bearer nope' "$SERVE_URL/v1/models")" = 401 ] || fail "wrong key: $(cat "$T/body")"
[ "$(code "${auth[@]}" -H 'Origin: http://evil.example' "$SERVE_URL/v1/models")" = 403 ] || fail "foreign origin: $(cat "$T/body")"
[ "$(code "${auth[@]}" -H 'Host: evil.example' "$SERVE_URL/v1/models")" = 403 ] || fail "foreign host: $(cat "$T/body")"
[ "$(code "${auth[@]}" "$SERVE_URL/v1/chat/completions" -d '{"model": "m1", ')" = 400 ] || fail "malformed JSON: $(cat "$T/body")"
head -c $((40 << 20)) /dev/zero | tr '\0' 'a' >"$T/big"
[ "$(code "${auth[@]}" "$SERVE_URL/v1/chat/completions" --data-binary @"$T/big")" = 413 ] || fail "40 MiB body: $(head -c 300 "$T/body")"
rm -f "$T/big"

# m1 running (the flood is about serve, not starts), and 8 chats at once, which queue for its one
# slot (serve keeps what that opens for good: its lease watcher's connection to the state file),
# then serve's descriptors and memory.
[ "$(code "${auth[@]}" "$SERVE_URL/v1/chat/completions" -d "$(chat_body m1 warm)")" = 200 ] || fail "warm-up: $(cat "$T/body")"
warm=()
for i in 1 2 3 4 5 6 7 8; do
  curl -s -m 60 -o "$T/warm.$i" -w '%{http_code}' "${auth[@]}" "$SERVE_URL/v1/chat/completions" -d "$(chat_body m1 "warm $i")" >"$T/warm.$i.code" &
  warm+=($!)
done
wait "${warm[@]}" || true # each one's code is checked below
for i in 1 2 3 4 5 6 7 8; do
  [ "$(cat "$T/warm.$i.code")" = 200 ] || fail "warm-up chat $i: HTTP $(cat "$T/warm.$i.code") $(cat "$T/warm.$i" 2>/dev/null)"
done
# serve's descriptors, those of the state file (SQLite's) apart: SQLite keeps a closed
# connection's descriptor for reuse while another connection of the process holds a lock on the
# file (the lease watcher's, for good), so their number is the most connections open at once.
fd_list() { find "/proc/$SERVE_PID/fd" -mindepth 1 -printf '%f -> %l\n' | sort -n; }
fds() { ls "/proc/$SERVE_PID/fd" | wc -l; }
state_fds() { fd_list | grep -c -- "-> $LLMCTL_HOME/" || true; }
other_fds() { echo $(($(fds) - $(state_fds))); }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }
fd_list >"$T/fds.before"
fds0=$(fds)
other0=$(other_fds)
state0=$(state_fds)
rss0=$(rss_kib)

t0=$(date +%s%N)
python3 "$src/tests/integration/serve_flood.py" --port $port --key "$FLOOD_KEY" --model m1 --pid "$SERVE_PID" \
  --conns 1000 --concurrency 250 >"$T/flood" 2>&1 || fail "the flood: $(cat "$T/flood")"$'\n'"serve log: $(tail -5 "$log")"
t1=$(date +%s%N)
cat "$T/flood"
alive "$SERVE_PID" || fail "serve died in the flood: $(tail -20 "$log")"

# Every stalled connection closed by its header timeout: the descriptors go back to the baseline
# (those of the state file: a few more at most, not one per request).
fds_back() { [ "$(other_fds)" -le "$other0" ]; }
wait_for 30 fds_back ||
  fail "serve's descriptors did not go back: $(fds) now, $fds0 before the flood:"$'\n'"$(fd_list | diff "$T/fds.before" - || true)"
[ "$(state_fds)" -le $((state0 + 8)) ] ||
  fail "serve has $(state_fds) descriptors of the state file, $state0 before the flood:"$'\n'"$(fd_list | diff "$T/fds.before" - || true)"
t2=$(date +%s%N)
rss1=$(rss_kib)
echo "serve: fds $fds0 before ($state0 of the state file), $(fds) after ($(state_fds));" \
  "VmRSS $rss0 KiB before, $rss1 KiB after; flood $(((t1 - t0) / 1000000)) ms, fds back $(((t2 - t1) / 1000000)) ms later"
if [ -z "${LLMCTL_TEST_SANITIZE:-}" ]; then
  [ $((rss1 - rss0)) -lt $((10 << 10)) ] || fail "serve's RSS grew by $((rss1 - rss0)) KiB in the flood ($rss0 -> $rss1 KiB)"
fi

# Alive, still answering, no crash in its log.
alive "$SERVE_PID" || fail "serve died after the flood: $(tail -20 "$log")"
[ "$(code "${auth[@]}" "$SERVE_URL/v1/chat/completions" -d "$(chat_body m1 after)")" = 200 ] || fail "after the flood: $(cat "$T/body")"
! grep -E 'Sanitizer|runtime error:|terminate called|Segmentation fault|Aborted|cannot start a thread|Too many open files' "$log" ||
  fail "serve's log shows trouble"
valid=$(sed -n 's/^valid client: \([0-9]*\) of .*/\1/p' "$T/flood")
[ "$(grep -c ' status=200 ' "$log")" -gt "$valid" ] || fail "the access log lacks some of the $valid valid requests"

# SIGTERM: nothing left open from the flood holds the stop up.
t3=$(date +%s%N)
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
[ $rc = 0 ] || fail "serve exited $rc after SIGTERM: $(tail -5 "$log")"
[ $(($(date +%s%N) - t3)) -lt 10000000000 ] || fail "serve took $((($(date +%s%N) - t3) / 1000000)) ms to stop: $(tail -5 "$log")"
! grep -q 'still open' "$log" || fail "connections still open at the stop: $(tail -5 "$log")"
echo "serve_flood: ok"
