# logs: tail from the end, follow across rotation, lossless rotation under a full-speed writer,
# bytes passed through unchanged, logs of failed servers readable.
. "$TEST_LIB"
mock_config 'log_keep = 30'
mock_model crash --crash-at-start
writer="$(dirname "$TEST_LIB")/numbered_writer.py"
logs="$LLMCTL_HOME/logs"
# check_run LOG LAST: the kept old files and the live log, joined oldest first, are exactly lines 0..LAST.
check_run() {
  python3 - "$1" "$2" <<'PY'
import glob, re, sys
log, last = sys.argv[1], int(sys.argv[2])
olds = sorted(glob.glob(log + ".[0-9]*"), key=lambda p: -int(p.rsplit(".", 1)[1]))
data = b"".join(open(p, "rb").read() for p in olds + [log])
data = re.sub(rb"^--- llmctl: starting [^\n]*\n", b"", data, count=1)  # the line start writes before the server's first byte
want = "".join("%09d\n" % n for n in range(last + 1)).encode()
if data != want:
    i = next((k for k in range(min(len(data), len(want))) if data[k] != want[k]), min(len(data), len(want)))
    sys.exit("joined %d bytes vs %d expected; first difference at byte %d: %r" % (len(data), len(want), i, data[max(0, i - 20):i + 20]))
print(len(olds))
PY
}
fs_type=$(stat -f -c %T "$logs" 2>/dev/null || stat -f -c %T "$T")

# 1. 20 rotations while a server writes numbered lines at full speed.
mkdir -p "$T/w1"
llmctl start w1 --no-wait -- python3 "$writer" "$T/w1" >/dev/null
touch "$T/w1/go"
wait_for 10 grep -q "^000000000$" "$logs/w1.log" || fail "writer never wrote"
for i in $(seq 1 20); do llmctl logs --rotate w1 -q || fail "rotation $i failed"; done
touch "$T/w1/stop"
wait_for 20 test -e "$T/w1/finished" || fail "writer never finished"
read -r last stall <"$T/w1/finished"
if [ "$fs_type" = ext2/ext3 ] || [ "$fs_type" = xfs ] || [ "$fs_type" = ext4 ]; then
  olds=$(check_run "$logs/w1.log" "$last") || fail "rotation lost or duplicated output: $olds"
  [ "$olds" -le 30 ] || fail "$olds old files, log_keep is 30"
  echo "logs: 20 rotations under a full-speed writer: $((last + 1)) lines intact, longest write() $stall s"
else
  echo "logs: lossless rotation check skipped: $logs is on $fs_type (no COLLAPSE_RANGE)"
fi
# More than a block: the last rotation may have left less, and a log of at most one block is
# left as it is (copy + truncate would lose what the server writes meanwhile).
seq -f 'one more line %g' 400 >>"$logs/w1.log"
expect_rc 0 llmctl logs --rotate -v w1
echo "$ERR" | grep -q "rotated $logs/w1.log" || fail "logs --rotate -v: $ERR"
if [ "$fs_type" = ext2/ext3 ] || [ "$fs_type" = xfs ] || [ "$fs_type" = ext4 ]; then # a collapse leaves 1 byte to a block
  expect_rc 0 llmctl logs --rotate -v w1
  echo "$ERR" | grep -q "$logs/w1.log: nothing to rotate (.*: a log of at most one block, .*, is left as it is)" || fail "logs --rotate -v of one block: $ERR"
fi

# 2. logs -f sees every line written after it started, in order, across rotations; SIGINT → 130.
mkdir -p "$T/w2"
llmctl start w2 --no-wait -- python3 "$writer" "$T/w2" >/dev/null
wait_for 10 grep -sq "^--- llmctl: starting w2" "$logs/w2.log" || fail "no start marker in w2's log"
# The follower starts at the marker line (the log's only line); once it has printed it, it is
# following, and only then does the writer begin (a follower that came up late would skip lines).
"$LLMCTL_BIN" logs -f -n 1 w2 >"$T/followed" 2>"$T/follow.err" &   # not the function: $! must be llmctl
follower=$!
wait_for 10 grep -sq "^--- llmctl: starting w2" "$T/followed" || fail "the follower never printed the start marker"
touch "$T/w2/go"
wait_for 10 grep -q "^000000000$" "$logs/w2.log" || fail "w2 never wrote"
for i in $(seq 1 5); do llmctl logs --rotate w2 -q; done
touch "$T/w2/stop"
wait_for 20 test -e "$T/w2/finished" || fail "w2 never finished"
read -r last2 _ <"$T/w2/finished"
tail_is() { [ "$(tail -c 10 "$T/followed")" = "$(printf '%09d' "$1")" ]; }
wait_for 20 tail_is "$last2" || fail "follower did not reach line $last2: $(tail -c 30 "$T/followed" | cat -v)"
kill -INT "$follower"
rc=0; wait "$follower" || rc=$?
[ $rc -eq 130 ] || fail "follower exited $rc on SIGINT, want 130"
if [ "$fs_type" = ext2/ext3 ] || [ "$fs_type" = xfs ] || [ "$fs_type" = ext4 ]; then
  python3 - "$T/followed" "$last2" <<'PY' || fail "the follower missed or repeated lines"
import sys
data = open(sys.argv[1], "rb").read().split(b"\n", 1)[1]  # after the start marker line
want = "".join("%09d\n" % n for n in range(int(sys.argv[2]) + 1)).encode()
sys.exit(0 if data == want else "followed %d bytes, want %d" % (len(data), len(want)))
PY
fi
# A closed pipe ends a follower promptly and quietly (nothing is being written now).
rc=$(timeout 20 bash -c '"$0" logs -f w2 | head -5 >/dev/null; echo "${PIPESTATUS[0]}"' "$LLMCTL_BIN") || fail "logs -f | head did not return"
[ "$rc" = 0 ] || fail "logs -f | head: llmctl exited $rc"
llmctl stop w1 w2 -q

# 3. -n 10 on a 1 GiB (sparse) log: the right 10 lines, read from the end.
truncate -s 1G "$logs/big.log"
seq 1 20 >>"$logs/big.log"
expect_rc 0 llmctl logs big -n 10
[ "$OUT" = "$(seq 11 20)" ] || fail "logs -n 10 on 1 GiB: $OUT"

# 4. Bytes unchanged: no final newline, invalid UTF-8, 1 MiB lines.
printf 'one\ntwo\nthree without newline' >"$logs/nonl.log"
printf 'ok\n\xff\xfe bad \xc3\x28 utf8\n\xe2\x82\n' >"$logs/bin.log"
python3 -c 'import sys; sys.stdout.write(("a" * 1048576 + "\n") * 3 + "b" * 1048576)' >"$logs/long.log"
for f in nonl bin long; do
  llmctl logs "$f" -n 2 >"$T/got.$f"
  tail -n 2 "$logs/$f.log" >"$T/want.$f"
  cmp -s "$T/got.$f" "$T/want.$f" || fail "logs $f -n 2 differs from tail -n 2"
done
llmctl logs long -n 100 >"$T/got.long"
cmp -s "$T/got.long" "$logs/long.log" || fail "logs long -n 100 is not the whole file"

# 5. A failed server's log stays readable after its row is gone; unknown names are exit 4.
expect_rc 5 llmctl start crash
llmctl stop crash -q
[ -z "$(llmctl ps -a -q)" ] || fail "crash row left"
expect_rc 0 llmctl logs crash
echo "$OUT" | grep -q "simulated crash at start" || fail "failed server's log: $OUT"
expect_rc 4 llmctl logs crsh
echo "$ERR" | grep -q 'did you mean "crash"' || fail "no suggestion: $ERR"
expect_rc 0 llmctl logs --path crash
[ "$OUT" = "$logs/crash.log" ] || fail "--path: $OUT"
expect_rc 0 llmctl logs --all -n 1
echo "$OUT" | grep -a "^crash *| " >/dev/null || fail "--all: $OUT"
echo "logs: ok"
