# A damaged state file: truncated at 50 evenly spaced sizes, 50 copies with random byte
# flips (seeded), and 3 with rows llmctl could not have written. Every command either
# succeeds or exits with a documented code and an
# "llmctl: error:" message; none crashes or hangs; a refused file is left byte for byte as it
# was; no process outside this state dir's proven servers is ever signalled (a canary of the
# test survives); after `reap --rebuild` and `reap` the live servers all have rows again, one
# per name, and answer.
. "$TEST_LIB"
{
  printf '[defaults]\nport_range = [%d, %d]\n' "$PORT_BASE" $((PORT_BASE + 40))
  for m in a b; do printf '[models.%s]\ncommand = ["%s", "--port", "{port}"]\n' "$m" "$MOCK_BIN"; done
} >"$LLMCTL_CONFIG"
db="$LLMCTL_HOME/state.db"
llmctl start a >/dev/null
llmctl start b >/dev/null
llmctl chat a --session s1 "remember me" >/dev/null
sleep 600 &          # the canary: ours, unmarked; nothing may signal it
canary=$!
llmctl reap -q       # checkpoint: the main file holds everything
cp "$db" "$T/good.db"
size=$(stat -c %s "$T/good.db")
mkdir -p "$T/variants"
python3 - "$T/good.db" "$T/variants" "$canary" <<'PY'
import random, shutil, sqlite3, sys
good = open(sys.argv[1], "rb").read()
out = sys.argv[2]
for i in range(50):
    open(f"{out}/trunc-{i:02d}", "wb").write(good[: len(good) * i // 50])
rng = random.Random(20261123)
for i in range(50):
    b = bytearray(good)
    for _ in range(rng.randint(1, 16)):
        # Half the flips land in the first page (header, schema), where damage matters most.
        pos = rng.randrange(100 if rng.random() < 0.25 else len(b)) if rng.random() < 0.5 else rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
    open(f"{out}/flip-{i:02d}", "wb").write(bytes(b))
# Rows llmctl could not have written, but a damaged page can hold: an unknown status, pid 0,
# and a's row pointing at the canary's pid.
for name, sql in [("row-status", "UPDATE servers SET status='runniNg' WHERE name='a'"),
                  ("row-pid0", "UPDATE servers SET pid=0 WHERE name='a'"),
                  ("row-canary", f"UPDATE servers SET pid={int(sys.argv[3])} WHERE name='a'")]:
    path = f"{out}/{name}"
    shutil.copy(sys.argv[1], path)
    c = sqlite3.connect(path)
    c.execute("PRAGMA ignore_check_constraints=1")
    c.execute(sql)
    c.commit()
    c.execute("PRAGMA journal_mode=DELETE")
    c.close()
PY
cmds=("ps" "ps --json" "start a" "chat a hi --no-start --connect-timeout 1s" "logs a -n 1" "reap --dry-run" "stop nosuch" "state path" "config check")
declare -A seen
n=0
for v in "$T"/variants/*; do
  name=$(basename "$v")
  rm -f "$db" "$db-wal" "$db-shm"
  cp "$v" "$db"
  for c in "${cmds[@]}"; do
    before=$(sha256sum <"$db")
    rc=0
    # shellcheck disable=SC2086
    t0=$(date +%s%N)
    timeout -s KILL 30 "$LLMCTL_BIN" $c >"$T/out" 2>"$T/err" || rc=$?
    echo "$(( ($(date +%s%N) - t0) / 1000000 )) $name $rc $c" >>"$T/times"
    n=$((n + 1))
    [ $rc -ne 137 ] || fail "$name: 'llmctl $c' hung (killed after 30 s)"
    grep -qE 'Sanitizer|terminate called|runtime error|Assertion' "$T/err" && fail "$name: 'llmctl $c' crashed: $(cat "$T/err")"
    case $rc in 0 | 1 | 4 | 5 | 6) ;; *) fail "$name: 'llmctl $c' exited $rc (undocumented here): $(cat "$T/err")" ;; esac
    if [ $rc -ne 0 ]; then
      [[ $(head -1 "$T/err") == "llmctl: error: "* ]] || fail "$name: 'llmctl $c' exited $rc without a clear message: $(cat "$T/err")"
      [ "$(sha256sum <"$db")" = "$before" ] || fail "$name: 'llmctl $c' failed (exit $rc) and changed the state file"
    fi
    seen[$rc]=$((${seen[$rc]:-0} + 1))
  done
  kill -0 $canary || fail "$name: the canary was signalled"
  # Recovery: an unreadable file is moved aside and rebuilt; then one reap settles the rest.
  expect_rc 0 llmctl reap --rebuild -q
  expect_rc 0 llmctl reap -q
  live=$(marked | sort)
  [ "$(echo "$live" | grep -c .)" = 2 ] || fail "$name: after reap, marked processes: [$(echo $live)], want 2 (a and b)"
  expect_rc 0 llmctl ps --json
  for m in a b; do
    pid=$(echo "$OUT" | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["name"]==sys.argv[1] and x["status"]=="running"]; print(r[0]["pid"] if r else "")' $m)
    [ -n "$pid" ] || fail "$name: $m has no running row after recovery: $OUT"
    # A pattern match, not `echo | grep -q`: no pipeline whose status could come from a signal.
    [[ $'\n'"$live"$'\n' == *$'\n'"$pid"$'\n'* ]] || fail "$name: $m's row names pid '$pid', not a live server ($(echo $live))"
  done
  rc=0; "$LLMCTL_BIN" chat a "still there" --no-start >"$T/out" 2>"$T/err" || rc=$?; OUT=$(cat "$T/out")
  [ $rc -eq 0 ] || fail "$name: chat after recovery exited $rc: $(cat "$T/err")"
  [ "$OUT" = "still there" ] || fail "$name: chat after recovery: $OUT"
  rm -f "$db".corrupt-*
done
kill $canary
echo "corruption: ok ($n commands on $(ls "$T/variants" | wc -l) damaged files; exit codes: $(for k in "${!seen[@]}"; do printf '%s×%s ' "$k" "${seen[$k]}"; done); slowest: $(sort -rn "$T/times" | head -1))"
