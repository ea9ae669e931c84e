# A full filesystem does not stop log rotation, since rotating is how space is freed: a server
# fills a 2 MiB tmpfs (the state dir) through its log; logs --rotate deletes the oldest kept
# file, then discards the head it cannot keep, says so (exit 0), frees the space and leaves the
# sidecar final. A follower that was up to date prints every line once, in order, and logs -n
# works after. Twice: with an old file to delete, then with none (the sidecar itself needs room).
. "$TEST_LIB"
if [ "$(id -u)" != 0 ]; then echo "logs_full_disk: skipped (needs root to mount a tmpfs)"; exit 0; fi
fs=$T/fs
mkdir -p "$fs" "$T/w"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$fs" || fail "cannot mount a tmpfs on $fs"
on_cleanup() {
  "$LLMCTL_BIN" stop --all -q >/dev/null 2>&1 || true   # the writer holds its log open on $fs
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
  wait_for 10 umount "$fs" 2>/dev/null || umount -l "$fs"
}
export LLMCTL_HOME=$fs/state
mock_config --range 9 'log_keep = 2'
logs=$LLMCTL_HOME/logs
log=$logs/filler.log
numbered() { seq -f '%09.0f' "$1" $(($2 - 1)); } # lines FROM … TO-1
free_kib() { echo $(( $(stat -f -c '%a * %S' "$fs") / 1024 )); }
# The follower printed every byte written so far: of the 200000 seeded bytes only the last line
# (its first, 10 bytes) is followed.
caught_up() { [ "$(stat -c %s "$T/followed")" -eq $(($(cut -d' ' -f1 "$log.offset") - 200000 + 10 + $(stat -c %s "$log"))) ]; }

# An old file to delete: 20000 lines, rotated into filler.log.1 (200 KB).
mkdir -p "$logs"
numbered 0 20000 >"$log"
expect_rc 0 llmctl logs --rotate filler -q
[ -s "$log.1" ] || fail "no filler.log.1"
# The follower starts at the last seeded line (read from .1); once it has printed it, it is
# following, and only then does the writer start (a follower that came up late would miss lines).
"$LLMCTL_BIN" logs -f -n 1 filler >"$T/followed" 2>"$T/follow.err" &   # not the function: $! must be llmctl
follower=$!
wait_for 10 grep -sqx 000019999 "$T/followed" || fail "the follower never printed the last seeded line: $(cat "$T/follow.err")"
llmctl start filler --no-wait -- python3 "$(dirname "$TEST_LIB")/filling_writer.py" "$T/w" 20000 >/dev/null

rotate_full_disk() { # WHAT: rotates the full filesystem, checks what logs --rotate said and did
  wait_for 30 test -e "$T/w/full" || fail "$1: the writer never filled $fs"
  wait_for 20 caught_up || fail "$1: the follower did not catch up: $(stat -c %s "$T/followed") bytes"
  local before written=$(($(stat -c %s "$T/followed") - 10)) # all the follower printed but the seeded line
  before=$(free_kib)
  [ "$before" -lt 64 ] || fail "$1: $fs is not full: $before KiB free"
  expect_rc 0 llmctl logs --rotate filler
  echo "logs --rotate on a full disk ($1): $ERR"
  echo "$ERR" | grep -q '^llmctl: warning: rotated .*discarded without keeping it' || fail "$1: no warning naming what was discarded: $ERR"
  echo "$ERR" | grep -q 'No space left on device' || fail "$1: the warning does not say why: $ERR"
  [ "$(free_kib)" -gt 1024 ] || fail "$1: only $(free_kib) KiB free after the rotation (was $before)"
  grep -q pending "$log.offset" && fail "$1: sidecar left pending: $(cat "$log.offset")"
  [ "$(cat "$log.offset")" -eq $((200000 + written)) ] || fail "$1: sidecar $(cat "$log.offset"), want $((200000 + written))"
  [ -z "$(find "$logs" -name '*.tmp')" ] || fail "$1: leftovers: $(find "$logs" -name '*.tmp')"
  [ ! -e "$log.1" ] || fail "$1: filler.log.1 kept, but the discarded head broke its chain"
}

rotate_full_disk "an old file to delete"
echo "$ERR" | grep -q 'deleted the 1 oldest kept file' || fail "the warning does not name the deleted old file: $ERR"
touch "$T/w/more"
rotate_full_disk "nothing left to delete"
echo 50 >"$T/w/stop"
touch "$T/w/more"
wait_for 20 test -e "$T/w/finished" || fail "the writer never finished"
read -r last <"$T/w/finished"
wait_for 20 grep -q "^$(printf '%09d' "$last")\$" "$T/followed" || fail "the follower did not reach line $last"
kill -INT "$follower"
rc=0; wait "$follower" || rc=$?
[ $rc -eq 130 ] || fail "follower exited $rc on SIGINT, want 130: $(cat "$T/follow.err")"
# The follower also saw the line start writes before the server's first byte.
tail -n +2 "$T/followed" | grep -v '^--- llmctl: starting filler ' | cmp -s - <(numbered 20000 $((last + 1))) || fail "the follower printed lines twice, out of order or not at all"
expect_rc 0 llmctl logs -n 3 filler
[ "$OUT" = "$(numbered $((last - 2)) $((last + 1)))" ] || fail "logs -n 3 after the rotations: $OUT"
numbered $((last + 1)) $((last + 501)) >>"$log" # more than a block: a smaller log is left as it is
expect_rc 0 llmctl logs --rotate filler -q
[ -s "$log.1" ] || fail "with room again, a rotation keeps filler.log.1"
echo "logs_full_disk: ok"
