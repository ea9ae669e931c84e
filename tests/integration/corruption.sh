# A damaged state file: truncated at 50 evenly spaced sizes, 50 copies with random byte
# flips (seeded), and 3 with rows llmctl could not have written. Every command either
# succeeds or exits with a documented code and an
# "llmctl: error:" message; none crashes or hangs; a refused file is left byte for byte as it
# was; no process outside this state dir's proven servers is ever signalled (a canary of the
# test survives); after `reap --rebuild` and `reap` the live servers all have rows again, one
# per name, and answer. The sweep itself is corruption_sweep.py.
. "$TEST_LIB"
mock_config --range 40
for m in a b; do mock_model $m; done
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
# Under the sanitizers a process start costs about 160 ms (shadow memory, the leak check at
# exit) and this test ran 2-3 minutes beside the others, so there every tenth file is swept
# (and every crafted row; fuzz_state covers the parser at length); the normal build sweeps
# them all.
stride=1
[ -z "${LLMCTL_TEST_SANITIZE:-}" ] || stride=10
python3 "$(dirname "$TEST_LIB")/corruption_sweep.py" "$LLMCTL_BIN" "$LLMCTL_HOME" "$T/variants" "$canary" "$stride"
kill $canary
