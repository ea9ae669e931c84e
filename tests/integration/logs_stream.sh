# logs reads a rotated log as one stream (NAME.log.K … .1 and the live file): -n reads back
# into the old files when the live file holds fewer lines, a line that a rotation split is
# printed whole and once, and -f (with --all prefixes) starts on a whole line and goes on
# across rotations. Run on the state dir's filesystem (ext4 here: COLLAPSE_RANGE, the cut falls
# mid-line) and on tmpfs (copy + truncate: the live file is empty right after a rotation).
. "$TEST_LIB"
mock_config --range 9 'log_keep = 3'
shm=$(mktemp -d /dev/shm/llmctl-it.XXXXXX)
on_cleanup() { rm -rf "$shm"; }

# lines FROM TO: "line N ...\n", 37 bytes each, so a 4 KiB block boundary falls inside a line.
lines() { seq -f 'line %06.0f of the server log.......' "$1" $(($2 - 1)); }
# stream LOG: the kept old files and the live file, oldest first.
stream() { for k in 3 2 1; do [ -e "$1.$k" ] && cat "$1.$k"; done; cat "$1"; }

check_stream_reads() { # STATE_DIR
  export LLMCTL_HOME=$1
  local logs=$1/logs fs
  mkdir -p "$logs"
  fs=$(stat -f -c %T "$logs")
  lines 0 1000 >"$logs/s.log"
  expect_rc 0 llmctl logs --rotate s -q
  [ -s "$logs/s.log.1" ] || fail "$fs: no s.log.1 after a rotation"
  # Right after the rotation: 4 whole lines, though the live file holds 3 and a fragment (the
  # cut falls mid-line: 37000 bytes less 9 blocks of 4 KiB) or nothing (copy + truncate).
  expect_rc 0 llmctl logs -n 4 s
  [ "$OUT" = "$(lines 996 1000)" ] || fail "$fs: logs -n 4 right after a rotation: $(echo "$OUT" | cat -v)"
  # -n N reads back into .1, .2: as many lines as kept, each whole, none twice. (120 lines are
  # more than a block: a log of at most one block is not rotated.)
  lines 1000 1120 >>"$logs/s.log"
  expect_rc 0 llmctl logs --rotate s -q
  [ -s "$logs/s.log.2" ] || fail "$fs: no s.log.2 after a second rotation"
  lines 1120 1122 >>"$logs/s.log"
  expect_rc 0 llmctl logs -n 150 s
  [ "$OUT" = "$(lines 972 1122)" ] || fail "$fs: logs -n 150 across .2, .1 and the live file: $(echo "$OUT" | head -3 | cat -v)"
  expect_rc 0 llmctl logs -n 100000 s
  [ "$OUT" = "$(stream "$logs/s.log")" ] || fail "$fs: logs -n 100000 is not the whole kept stream"
  [ "$OUT" = "$(lines 0 1122)" ] || fail "$fs: the kept stream lost or repeated bytes"
  # --all -n: each server's last lines, whole, grouped by server.
  printf 'other one\nother two\n' >"$logs/t.log"
  expect_rc 0 llmctl logs --all -n 2
  [ "$OUT" = "$(printf 's | %s\ns | %s\nt | other one\nt | other two' "$(lines 1120 1121)" "$(lines 1121 1122)")" ] ||
    fail "$fs: logs --all -n 2: $OUT"
  # -f with prefixes: starts on a whole line, and follows a rotation that splits a line.
  "$LLMCTL_BIN" logs --all -f -n 2 >"$T/followed" 2>"$T/follow.err" &   # not the function: $! must be llmctl
  local follower=$!
  wait_for 10 grep -q '^t | other two$' "$T/followed" || fail "$fs: the follower printed no tail: $(cat "$T/follow.err")"
  lines 1122 1300 >>"$logs/s.log"
  expect_rc 0 llmctl logs --rotate s -q
  lines 1300 1310 >>"$logs/s.log"
  wait_for 10 grep -q "^s | $(lines 1309 1310)\$" "$T/followed" || fail "$fs: the follower did not reach line 1309"
  kill -INT "$follower"
  local rc=0
  wait "$follower" || rc=$?
  [ $rc -eq 130 ] || fail "$fs: follower exited $rc on SIGINT, want 130"
  grep '^s | ' "$T/followed" | sed 's/^s | //' >"$T/followed.s"
  lines 1120 1310 | cmp -s - "$T/followed.s" || fail "$fs: logs -f printed other lines than 1120..1309: $(diff <(lines 1120 1310) "$T/followed.s" | head -5)"
  echo "logs_stream: $fs ok"
}

check_stream_reads "$T/state"
check_stream_reads "$shm/state"
