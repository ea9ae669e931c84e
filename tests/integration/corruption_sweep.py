# The command sweep of corruption.sh (args: LLMCTL_BIN STATE_DIR VARIANTS_DIR CANARY_PID STRIDE):
# for every STRIDE-th damaged copy of the state file (and every crafted row), runs every command on it and checks the outcome, then recovers
# with `reap --rebuild` + `reap` and checks that the live servers have rows again and answer.
# One process for the whole sweep: a shell loop spent most of its time forking helpers.
import hashlib
import json
import os
import re
import subprocess
import sys
import time

llmctl, state_dir, variants_dir, canary, stride = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
db = os.path.join(state_dir, "state.db")
COMMANDS = ["ps", "ps --json", "start a", "chat a hi --no-start --connect-timeout 1s", "logs a -n 1",
            "reap --dry-run", "stop nosuch", "state path", "config check"]
DOCUMENTED = {0, 1, 4, 5, 6}
CRASH = re.compile(r"Sanitizer|terminate called|runtime error|Assertion")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(args, timeout=30):
    try:
        p = subprocess.run([llmctl, *args], capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return p


def marked():
    """PIDs of live processes carrying this state dir's markers (read from /proc, not from llmctl)."""
    want = f"LLMCTL_HOME={state_dir}".encode()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        if want in env and any(v.startswith(b"LLMCTL_INSTANCE=") for v in env) and stat.rsplit(") ", 1)[1][0] != "Z":
            pids.add(int(entry))
    return pids


def canary_alive():
    try:
        os.kill(canary, 0)
        return True
    except ProcessLookupError:
        return False


seen, times, n = {}, [], 0
variants = [v for i, v in enumerate(sorted(os.listdir(variants_dir))) if i % stride == 0 or v.startswith("row-")]
for name in variants:
    for f in ("state.db", "state.db-wal", "state.db-shm"):
        try:
            os.unlink(os.path.join(state_dir, f))
        except FileNotFoundError:
            pass
    with open(os.path.join(variants_dir, name), "rb") as src, open(db, "wb") as dst:
        dst.write(src.read())
    for c in COMMANDS:
        before = digest(db)
        t0 = time.monotonic()
        p = run(c.split())
        times.append((time.monotonic() - t0, name, c))
        n += 1
        if p is None:
            fail(f"{name}: 'llmctl {c}' hung (killed after 30 s)")
        if CRASH.search(p.stderr):
            fail(f"{name}: 'llmctl {c}' crashed: {p.stderr}")
        if p.returncode not in DOCUMENTED:
            fail(f"{name}: 'llmctl {c}' exited {p.returncode} (undocumented here): {p.stderr}")
        if p.returncode != 0:
            if not p.stderr.startswith("llmctl: error: "):
                fail(f"{name}: 'llmctl {c}' exited {p.returncode} without a clear message: {p.stderr}")
            if digest(db) != before:
                fail(f"{name}: 'llmctl {c}' failed (exit {p.returncode}) and changed the state file")
        seen[p.returncode] = seen.get(p.returncode, 0) + 1
    if not canary_alive():
        fail(f"{name}: the canary was signalled")
    # Recovery: an unreadable file is moved aside and rebuilt; then one reap settles the rest.
    for args in (["reap", "--rebuild", "-q"], ["reap", "-q"]):
        p = run(args)
        if p is None or p.returncode != 0:
            fail(f"{name}: 'llmctl {' '.join(args)}' exited {p.returncode if p else 'hung'}: {p.stderr if p else ''}")
    live = marked()
    if len(live) != 2:
        fail(f"{name}: after reap, marked processes: {sorted(live)}, want 2 (a and b)")
    p = run(["ps", "--json"])
    if p is None or p.returncode != 0:
        fail(f"{name}: ps --json after recovery failed: {p.stderr if p else 'hung'}")
    rows = json.loads(p.stdout)
    for m in ("a", "b"):
        r = [x for x in rows if x["name"] == m and x["status"] == "running"]
        if not r:
            fail(f"{name}: {m} has no running row after recovery: {p.stdout}")
        if r[0]["pid"] not in live:
            fail(f"{name}: {m}'s row names pid {r[0]['pid']}, not a live server ({sorted(live)})")
    p = run(["chat", "a", "still there", "--no-start"])
    if p is None or p.returncode != 0:
        fail(f"{name}: chat after recovery exited {p.returncode if p else 'hung'}: {p.stderr if p else ''}")
    if p.stdout.rstrip("\n") != "still there":
        fail(f"{name}: chat after recovery: {p.stdout}")
    for f in os.listdir(state_dir):
        if f.startswith("state.db.corrupt-"):
            os.unlink(os.path.join(state_dir, f))

slowest = max(times)
print(f"corruption: ok ({n} commands on {len(variants)} damaged files; exit codes: "
      + " ".join(f"{k}×{v}" for k, v in sorted(seen.items()))
      + f"; slowest: {slowest[0] * 1000:.0f} ms, {slowest[1]}: llmctl {slowest[2]})")
