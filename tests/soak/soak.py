#!/usr/bin/env python3
"""Randomized crash-and-race soak for llmctl (seeded; the operation sequence is reproducible).

W workers run random operations (start, stop, restart, chat, reap, ps, logs, exec, and execs
cancelled with SIGTERM, SIGINT or SIGKILL at a random moment) on M models for N operations in all,
each invocation naming the state dir by a random spelling (absolute, through a symlink, with a
trailing slash, relative to its working directory; as --state-dir or LLMCTL_HOME), while a chaos
thread SIGKILLs random llmctl invocations in flight (never a server directly) and, now and then,
one server whose markers prove it is ours. Afterwards one `llmctl reap`, then the invariants:
  - at most one live server per name, no two live servers on one port (counted by markers);
  - no orphan (every live marked process's instance has a row) and no lease row;
  - every server's LLMCTL_HOME marker is the canonical state dir, whatever spelling started it;
  - no server of the exec-only model "xo" (only exec runs it, so each one's last exec stops it, or
    reap does when that exec died), and no exec_users row;
  - every row (but failed ones) names a live process; PRAGMA integrity_check is ok;
  - every chat that exited 0 printed exactly the reply to its own prompt (the echo mock);
  - no invocation died of anything but our SIGKILL, and none exited with an undocumented code.
With --pool N, every model (xo too) takes 1 GiB of a pool of N GiB (llmctl.toml(5), MEMORY), and
  - an observer thread that reads only /proc never sees more than N live servers at once (double
    passes: a server alive at two looks was alive all along between them, so the servers that pass
    both were alive together at the instant between: a sound count, never a false alarm);
  - no chat is cut (a stream ended early, a connection closed mid-answer): an eviction takes only
    servers with no request in flight (server kills by the chaos thread are off with --pool,
    unless --server-kill-share is given, since they cut chats too);
  - no place is left in a pool's queue.
With --crash, every model has restart = "on-failure", and the server kills of the chaos thread are
crashes by a random signal (SIGSEGV, SIGABRT, SIGBUS, SIGKILL); once the restarts settle,
  - every crash is in the exit history (the exits table), seen by its server's monitor (known),
    with the signal sent as its cause (or the exit of a stop that got there first: SIGTERM's
    code 0, a SIGKILL);
  - and the invariants above hold (a row restarting or failed names no live process by design; a
    restarting row's restarter, waiting out a backoff that may have grown past the settling time,
    must be alive).
Prints one summary line and exits 1 on any violation.

  tests/soak/soak.py --llmctl build/bin/llmctl --mock build/bin/llmctl-mock-server \\
      --ops 10000 --workers 6 --models 4 --seed 1
"""
import argparse, collections, json, os, random, signal, sqlite3, subprocess, sys, tempfile, threading, time

DOCUMENTED = {0, 1, 4, 5, 6, 130}
# What a chat says when its answer was cut short by its server (llmctl chat, http_client).
CUT = ("the server closed the connection mid-answer", "the stream ended without [DONE]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmctl", required=True)
    ap.add_argument("--mock", required=True)
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port-base", type=int, default=22000)
    ap.add_argument("--kill-every", type=float, default=0.15, help="seconds between chaos kills (mean)")
    ap.add_argument("--server-kill-share", type=float, default=None, help="share of chaos kills aimed at a server (0.1; 0 with --pool)")
    ap.add_argument("--pool", type=int, default=0, help="models take 1 GiB each of a pool of this many GiB (0: no pool)")
    ap.add_argument("--crash", action="store_true", help="restart = on-failure; server kills are crashes by a random signal")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    a.llmctl, a.mock = os.path.abspath(a.llmctl), os.path.abspath(a.mock)  # invocations run in the soak's dir
    if a.server_kill_share is None:
        a.server_kill_share = 0.0 if a.pool else 0.1

    root = os.path.realpath(tempfile.mkdtemp(prefix="llmctl-soak."))
    home, cfg = os.path.join(root, "state"), os.path.join(root, "config.toml")
    models = [f"m{i}" for i in range(a.models)]
    exec_models = models + ["xo"]  # xo: run by exec only
    with open(cfg, "w") as f:
        f.write(f"[defaults]\nport_range = [{a.port_base}, {a.port_base + 4 * a.models + 24}]\n"
                "startup_timeout = \"20s\"\nstop_timeout = \"3s\"\nmax_concurrent = 2\n")
        if a.crash:
            f.write("restart = \"on-failure\"\nrestart_delay = \"50ms\"\nrestart_max = 1000\n")
        if a.pool:
            f.write(f"pool = \"p\"\n[pools.p]\nmemory = \"{a.pool}GiB\"\n")
        for i, m in enumerate(exec_models):
            delay = ["--startup-delay", "300ms"] if i % 2 else []
            argv = json.dumps([a.mock, "--host", "{host}", "--port", "{port}", "--tokens-per-second", "200"] + delay)
            f.write(f"[models.{m}]\ncommand = {argv}\n" + ("memory = \"1GiB\"\n" if a.pool else ""))
            if a.crash:  # a mock built with ASan would report a SIGSEGV or SIGBUS and exit 1
                f.write("env = { ASAN_OPTIONS = \"handle_segv=0:handle_sigbus=0\" }\n")
    # Spellings of the one state dir; the relative ones from `root`, every invocation's cwd.
    os.symlink(root, os.path.join(root, "alias"))
    os.mkdir(os.path.join(root, "sub"))
    spellings = [home, home + "/", os.path.join(root, "alias", "state"), os.path.join(root, "sub", "..", "state"),
                 "state", "./state/", "sub/../state", "alias/state"]
    env = dict(os.environ, LLMCTL_HOME=home, LLMCTL_CONFIG=cfg, LLMCTL_LOCK_TIMEOUT="60s")
    env.pop("LLMCTL_FAULT", None)

    lock = threading.Lock()
    inflight = {}  # pid -> Popen (not yet waited: the pid cannot be recycled)
    stats = collections.Counter()
    codes = collections.Counter()
    messages = collections.Counter()  # first error line of failed invocations, for the report
    violations = []
    crashes = []  # (pid, signal, time) of each crash the chaos thread caused
    remaining = [a.ops]
    done = threading.Event()

    def launch(args, rng=None):
        """Starts llmctl ARGS naming the state dir by a random spelling (rng) or the canonical one."""
        env2, pre = env, []
        if rng:
            spelling = rng.choice(spellings)
            if rng.random() < 0.5:
                pre = ["--state-dir", spelling]
            else:
                env2 = dict(env, LLMCTL_HOME=spelling)
        p = subprocess.Popen([a.llmctl] + pre + args, env=env2, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with lock:
            inflight[p.pid] = p
        return p

    def run(args, timeout=120, rng=None, cancel=None):
        p = launch(args, rng)
        if cancel:  # (seconds, signal): an exec cancelled at a random moment, as a CI job is
            time.sleep(cancel[0])
            with lock:
                if p.poll() is None:
                    p.send_signal(cancel[1])
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            with lock:
                violations.append(f"hang: llmctl {' '.join(args)} ran over {timeout}s")
        with lock:
            inflight.pop(p.pid, None)
        return p.returncode, out, err

    def worker(i):
        rng = random.Random(a.seed * 1000 + i)
        n = 0
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            n += 1
            op = rng.choices(["start", "stop", "restart", "chat", "reap", "ps", "logs", "exec", "exec_cancel"],
                             [25, 12, 5, 30, 8, 12, 8, 6, 5])[0]
            m = rng.choice(exec_models if op.startswith("exec") else models)
            if op == "chat":
                prompt = f"w{i} op{n} {rng.randrange(10**9)}"
                rc, out, err = run(["chat", m, prompt], rng=rng)
                if rc == 0 and out != prompt + "\n":
                    with lock:
                        violations.append(f"chat {m} {prompt!r} exited 0 but printed {out[:120]!r}")
                if a.pool and a.server_kill_share == 0 and any(s in err for s in CUT):
                    with lock:
                        violations.append(f"chat {m} {prompt!r} was cut: {err[-300:]!r}")
            elif op in ("start", "stop", "restart"):
                rc, out, err = run([op, m, "-q"], rng=rng)
            elif op == "exec_cancel":
                # CMD would run for 30 s; the signal comes while the model loads, while exec waits
                # for another start, or once CMD runs. Either way: 128+N, or death by that signal
                # when it lands before exec is under way (nothing is registered then).
                sig = rng.choice([signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
                rc, out, err = run(["exec", m, "-q", "--", "sleep", "30"], rng=rng,
                                   cancel=(rng.uniform(0, 0.6), sig))
                if rc not in (128 + sig, -sig, -signal.SIGKILL, 125):
                    with lock:
                        violations.append(f"exec {m} cancelled by {sig.name} exited {rc}: {err[-300:]!r}")
                rc = 0 if rc in (128 + sig, -sig) else 1 if rc == 125 else rc
            elif op == "exec":
                # CMD talks to the server it was given; its exit code comes back through exec.
                code = rng.choice([0, 3])
                probe = ("import os, sys, urllib.request\n"
                         "try: urllib.request.urlopen(os.environ['LLMCTL_URL'] + '/health', timeout=5)\n"
                         f"except Exception: sys.exit(9)\nsys.exit({code})")
                rc, out, err = run(["exec", m, "-q", "--", sys.executable, "-c", probe], rng=rng)
                if rc not in (code, 9, 125, -signal.SIGKILL):
                    with lock:
                        violations.append(f"exec {m} (CMD exits {code}) exited {rc}: {err[-300:]!r}")
                if rc == 9:  # a concurrent stop took the server away mid-CMD: allowed, counted
                    with lock:
                        stats["exec_server_gone"] += 1
                # For the checks below: CMD's own codes are success, exec's 125 is a failure
                # that must come with an error message.
                rc = 0 if rc in (code, 9) else 1 if rc == 125 else rc
            elif op == "reap":
                rc, out, err = run(["reap", "-q"], rng=rng)
            elif op == "ps":
                rc, out, err = run(["ps", "--json"], rng=rng)
                if rc == 0:
                    try:
                        json.loads(out)
                    except ValueError:
                        with lock:
                            violations.append(f"ps --json printed invalid JSON: {out[:120]!r}")
            else:
                rc, out, err = run(["logs", m, "-n", "5"], rng=rng)
            with lock:
                stats[op] += 1
                codes[rc] += 1
                if rc > 0:
                    first = next((l for l in err.splitlines() if l.startswith("llmctl: error:")), err[:100])
                    messages[f"{op} exit {rc}: " + "".join(c if not c.isdigit() else "N" for c in first)[:150]] += 1
                if rc == -signal.SIGKILL:
                    pass  # ours, from the chaos thread
                elif rc < 0:
                    violations.append(f"llmctl {op} {m} died of signal {-rc}: {err[-300:]!r}")
                elif rc not in DOCUMENTED:
                    violations.append(f"llmctl {op} {m} exited {rc} (not documented for it): {err[-300:]!r}")
                elif rc != 0 and "llmctl: error:" not in err and not (op == "logs" and rc == 4):
                    violations.append(f"llmctl {op} {m} exited {rc} without an error message: {err[-300:]!r}")

    def marked(strays=None):
        """Live marked processes of this state dir: {pid: (instance, name, port, start_ticks)}.
        With `strays` (a list), servers whose LLMCTL_HOME is another spelling of it are added there."""
        found = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                envs = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            kv = dict(e.split(b"=", 1) for e in envs if b"=" in e)
            if b"LLMCTL_INSTANCE" not in kv:
                continue
            if kv.get(b"LLMCTL_HOME") != home.encode():
                spelled = kv.get(b"LLMCTL_HOME", b"").decode(errors="replace")
                if strays is not None and os.path.realpath(os.path.join(root, spelled)) == home:
                    strays.append(f"pid {d} carries LLMCTL_HOME={spelled!r}, not the canonical {home!r}")
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            found[int(d)] = (kv[b"LLMCTL_INSTANCE"].decode(), kv.get(b"LLMCTL_NAME", b"").decode(),
                             kv.get(b"LLMCTL_PORT", b"").decode(), int(fields[19]))
        return found

    def chaos():
        rng = random.Random(a.seed)
        while not done.wait(rng.expovariate(1 / a.kill_every)):
            if rng.random() < a.server_kill_share:
                servers = marked()
                if servers:
                    pid = rng.choice(sorted(servers))
                    sig = rng.choice([signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGKILL]) if a.crash else signal.SIGKILL
                    try:
                        os.kill(pid, sig)  # proven ours: it carries this state dir's markers
                        with lock:
                            stats["server_kills"] += 1
                            crashes.append((pid, sig, time.time()))
                    except ProcessLookupError:
                        pass
                continue
            with lock:
                if not inflight:
                    continue
                p = inflight[rng.choice(sorted(inflight))]
                if p.poll() is None:  # still running: the pid is our unwaited child
                    p.send_signal(signal.SIGKILL)
                    stats["llmctl_kills"] += 1

    def alive_as(pid, ticks):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return False
        return fields[0] != "Z" and int(fields[19]) == ticks

    def watch_budget():
        """--pool: the servers alive together, counted by double passes (see the docstring)."""
        while not done.is_set():
            first = marked()
            both = [pid for pid, (_, _, _, ticks) in first.items() if alive_as(pid, ticks)]
            with lock:
                stats["budget_passes"] += 1
                stats["most_live"] = max(stats["most_live"], len(both))
                if len(both) > a.pool:
                    stats["budget_violations"] += 1
                    violations.append(f"{len(both)} servers alive at once in a pool that fits {a.pool}: "
                                      f"{sorted(first[p][1] for p in both)}")
            time.sleep(0.002)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.workers)]
    ch = threading.Thread(target=chaos)
    watchers = [threading.Thread(target=watch_budget)] if a.pool else []
    for t in threads + [ch] + watchers:
        t.start()
    for t in threads:
        t.join()
    done.set()
    ch.join()
    for t in watchers:
        t.join()
    elapsed = time.time() - t0

    if a.crash:  # the restarts settle: no row restarting, every live row's server up
        db = sqlite3.connect(os.path.join(home, "state.db"))
        settle_end = time.time() + 60
        while time.time() < settle_end:
            rows = db.execute("SELECT status, pid, start_ticks FROM servers WHERE status != 'failed'").fetchall()
            if all(st != "restarting" and alive_as(pid, ticks) for st, pid, ticks in rows):
                break
            time.sleep(0.1)
        db.close()

    rc, out, err = run(["reap"])
    reap_lines = len(out.splitlines())
    if rc != 0:
        violations.append(f"final reap exited {rc}: {err!r}")
    strays = []
    live = marked(strays)
    violations.extend(strays)
    by_name = collections.defaultdict(set)
    by_port = collections.defaultdict(set)
    for pid, (inst, name, port, _) in live.items():
        by_name[name].add(inst)
        by_port[port].add(inst)
    for name, insts in by_name.items():
        if len(insts) > 1:
            violations.append(f"{len(insts)} live servers named {name}")
    if by_name.get("xo"):
        violations.append(f"a server of the exec-only model xo outlived its execs and the final reap ({len(by_name['xo'])})")
    for port, insts in by_port.items():
        if len(insts) > 1:
            violations.append(f"{len(insts)} live servers on port {port}")
    db = sqlite3.connect(os.path.join(home, "state.db"))
    rows = db.execute("SELECT name, instance, status, pid, start_ticks, owner_pid, owner_start_ticks FROM servers").fetchall()
    instances = {r[1] for r in rows}
    for pid, (inst, name, _, _) in live.items():
        if inst not in instances:
            violations.append(f"orphan: pid {pid} ({name}, instance {inst}) has no row")
    for name, inst, status, pid, ticks, owner, owner_ticks in rows:
        if status == "failed":
            continue
        if status == "restarting":  # its server is dead by design; its restarter waits out the backoff
            if not (owner and alive_as(owner, owner_ticks)):
                violations.append(f"row {name} (restarting) has no live restarter (owner pid {owner})")
            continue
        if pid not in live or live[pid][3] != ticks:
            violations.append(f"row {name} ({status}) names pid {pid}, which is not a live server of ours")
    leases = db.execute("SELECT count(*) FROM leases").fetchone()[0]
    if leases:
        violations.append(f"{leases} lease row(s) left")
    execs = db.execute("SELECT count(*) FROM exec_users").fetchone()[0]
    if execs:
        violations.append(f"{execs} exec user row(s) left")
    if a.pool:
        places = db.execute("SELECT count(*) FROM admissions").fetchone()[0]
        if places:
            violations.append(f"{places} place(s) left in the pool's queue")
        stats["evictions"] = db.execute("SELECT count(*) FROM events WHERE kind='evicted'").fetchone()[0]
    if a.crash:
        sent = {}  # pid -> every signal the chaos thread sent it: a second may reach a server the first is killing
        for pid, sig, _ in crashes:
            sent.setdefault(pid, set()).add(sig)
        for pid, sig, at in crashes:
            seen = db.execute("SELECT known, signal, code, cause FROM exits WHERE pid=? AND at >= ? ORDER BY id LIMIT 1",
                              (pid, int(at * 1000) - 1000)).fetchone()
            if not seen:
                violations.append(f"the crash of pid {pid} by {sig.name} is not in the exit history")
            elif not seen[0]:
                violations.append(f"the crash of pid {pid} by {sig.name} was recorded without its cause: {seen[3]}")
            elif seen[1] in sent[pid]:
                stats["crashes_recorded"] += 1
            elif seen[1] in (signal.SIGKILL, signal.SIGTERM) or seen[2] == 0:
                stats["crashes_stop_first"] += 1  # a stop's SIGTERM (the mock exits 0) or SIGKILL got there first
            else:
                violations.append(f"the crash of pid {pid} by {sig.name} was recorded as {seen[3]}")
        stats["restarts"] = db.execute("SELECT count(*) FROM exits WHERE action='restarted'").fetchone()[0]
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        violations.append(f"integrity_check: {check}")
    db.close()

    run(["stop", "--all", "-q"])
    for pid in marked():  # proven ours by the markers; nothing should be left
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def with_our_home():
        """Live processes of this state dir in any spelling (servers and helpers by their
        environment, monitors by their arguments): a monitor records its server's exit after the stop, so the state dir is
        removed only once they are gone (else it comes back with that one record)."""
        pids = []
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                envs = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
                argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
                state = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            spelled = next((e[len(b"LLMCTL_HOME="):].decode(errors="replace") for e in envs if e.startswith(b"LLMCTL_HOME=")), None)
            if len(argv) > 2 and os.path.basename(argv[0]) == b"llmctl-monitor":  # (given the state dir as its 2nd argument)
                spelled = argv[2].decode(errors="replace")
            if state != "Z" and spelled and os.path.realpath(os.path.join(root, spelled)) == home:
                pids.append(int(d))
        return pids

    deadline = time.time() + 10
    while with_our_home() and time.time() < deadline:
        time.sleep(0.05)
    kinds = ("start", "stop", "restart", "chat", "reap", "ps", "logs", "exec", "exec_cancel")
    ops = sum(stats[k] for k in kinds)
    print(f"soak: seed {a.seed}, {ops} operations ({', '.join(f'{k} {stats[k]}' for k in kinds)}) "
          f"by {a.workers} workers on {a.models} models in {elapsed:.0f}s; killed {stats['llmctl_kills']} llmctl invocations "
          f"and {stats['server_kills']} servers; exit codes {dict(sorted(codes.items()))}; final reap: {reap_lines} action(s); "
          f"{len(live)} live servers, {len(rows)} rows; invariant violations: {len(violations)}")
    if a.pool:
        print(f"  pool of {a.pool}: {stats['evictions']} evictions (events); {stats['budget_passes']} double passes, "
              f"at most {stats['most_live']} servers alive at once, {stats['budget_violations']} budget violations; "
              f"chats cut: {sum(1 for v in violations if ' was cut: ' in v)}")
    if a.crash:
        print(f"  crashes: {len(crashes)} caused, {stats['crashes_recorded']} recorded with their signal, "
              f"{stats['crashes_stop_first']} ended by a stop first, {sum(len(s) > 1 for s in sent.values())} servers "
              f"sent two signals; {stats['restarts']} policy restarts")
    for msg, count in messages.most_common(8):
        print(f"  {count}x {msg}")
    for v in violations[:20]:
        print("  VIOLATION:", v)
    if not a.keep and not violations:
        subprocess.run(["rm", "-rf", root])
    elif violations:
        print(f"  state kept in {root}")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
