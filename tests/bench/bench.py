#!/usr/bin/env python3
"""llmctl benchmarks: llmctl next to its peers (pm2, supervisor) and next to the physical floor.

Run through tests/bench/bench.sh, which installs hyperfine, supervisor and pm2 and builds the
binaries. Every figure comes from one run on one machine; the table reports ratios, and
docs/BENCHMARKS.md gets the table with the date, CPU and core count.

Everything runs in a private temp dir with ports from 23000-23999 (the serve section: from 52000,
skipping ports in use); every process started here is stopped here (by the PIDs we started or the
tool that started them), never by name. The serve section drives `llmctl serve`, a private nginx
and the mock directly with one C++ load generator (serve_load.cpp) and measures leases with a
driver built on llmctl's own slots code (lease_driver.cpp).
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def ms(x):
    return f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.llmctl = os.path.join(self.build, "bin", "llmctl")
        self.mock = os.path.join(self.build, "bin", "llmctl-mock-server")
        self.floor = os.path.join(self.build, "bin", "llmctl-bench-floor")
        self.load = os.path.join(self.build, "bin", "llmctl-bench-load")
        self.leases = os.path.join(self.build, "bin", "llmctl-bench-leases")
        self.tmp = tempfile.mkdtemp(prefix="llmctl-bench-")
        self.rows = []     # (section, what, value, reference, ratio text, target text, ok or None)
        self.notes = []
        self.started = []  # Popen objects to stop at the end
        self.envs = []     # state dirs whose servers to stop at the end
        self.next_port = 23000
        self.quick = args.quick

    # --- helpers -------------------------------------------------------------------------------

    def ports(self, n):
        base = self.next_port
        self.next_port += n
        return base, base + n - 1

    def free_port(self):
        """The next port that nothing listens on now (other programs on the machine may use the range)."""
        while True:
            port = self.ports(1)[0]
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue

    def env(self, name, models, port_count=None, defaults="", model_keys=None, tail=""):
        """A config and state dir; models maps name -> mock args (list) or a full command list;
        model_keys maps name -> more lines of its table; tail ends the file (e.g. [serve])."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, mode=0o700)
        lo, hi = self.ports(port_count or max(len(models), 1) + 4)
        with open(os.path.join(d, "llmctl.toml"), "w") as f:
            f.write(f"[defaults]\nport_range = [{lo}, {hi}]\n{defaults}\n")
            for m, a in models.items():
                cmd = a if a and os.path.isabs(a[0]) else [self.mock, "--port", "{port}"] + a
                f.write(f"[models.{m}]\ncommand = {json.dumps(cmd)}\n{(model_keys or {}).get(m, '')}\n")
            f.write(tail)
        e = {"dir": d, "config": os.path.join(d, "llmctl.toml"), "state": os.path.join(d, "state")}
        self.envs.append(e)
        return e

    def cmd(self, e, *a):
        return [self.llmctl, "--config", e["config"], "--state-dir", e["state"], *a]

    def run(self, argv, check=True, **kw):
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        if check and p.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
        return p

    def hyperfine(self, cmds, runs, warmup=5, ignore_failure=False):
        """Mean and median wall time (ms) of each command (list of argv), by hyperfine -N."""
        out = os.path.join(self.tmp, "hf.json")
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
                "--export-json", out]
        if ignore_failure:
            argv.append("-i")
        argv += [" ".join(_quote(x) for x in c) for c in cmds]
        self.run(argv)
        with open(out) as f:
            res = json.load(f)["results"]
        return [{"mean": r["mean"] * 1e3, "median": r["median"] * 1e3, "user": r["user"] * 1e3,
                 "system": r["system"] * 1e3} for r in res]

    def add(self, section, what, value, reference=None, ratio=None, target=None, ok=None):
        self.rows.append((section, what, value, reference or "", ratio or "", target or "", ok))
        mark = "" if ok is None else (" [ok]" if ok else " [MISSED]")
        log(f"{section}: {what}: {value} {('vs ' + reference) if reference else ''} {ratio or ''}{mark}")

    # --- sections ------------------------------------------------------------------------------

    def ps_and_start(self, pm2, supctl):
        runs = 40 if self.quick else 300
        e = self.env("ten", {f"s{i}": [] for i in range(10)})
        for i in range(10):
            self.run(self.cmd(e, "start", f"s{i}", "-q"))
        db = os.path.join(e["state"], "state.db")
        floor, ps, start = self.hyperfine(
            [[self.floor, db], self.cmd(e, "ps"), self.cmd(e, "start", "s0")], runs)
        r_ps, r_start = ps["mean"] / floor["mean"], start["mean"] / floor["mean"]
        self.add("ps (10 servers)", "llmctl ps", ms(ps["mean"]), f"floor {ms(floor['mean'])}",
                 f"{r_ps:.2f}x floor", "<= 2x floor", r_ps <= 2)
        self.add("start (running)", "llmctl start s0", ms(start["mean"]), f"floor {ms(floor['mean'])}",
                 f"{r_start:.2f}x floor", "<= 2x floor", r_start <= 2)
        peers = {}
        if pm2:
            jl, pst = self.hyperfine([pm2.cmd("jlist"), pm2.start_running_cmd()], 5 if self.quick else 30,
                                     warmup=2, ignore_failure=True)
            peers["pm2"] = (jl, pst)
            self.add("ps (10 servers)", "pm2 jlist", ms(jl["mean"]), f"llmctl ps {ms(ps['mean'])}",
                     f"llmctl {jl['mean'] / ps['mean']:.0f}x faster", ">= 20x faster", jl["mean"] / ps["mean"] >= 20)
            self.add("start (running)", "pm2 start (already launched)", ms(pst["mean"]),
                     f"llmctl start {ms(start['mean'])}", f"llmctl {pst['mean'] / start['mean']:.0f}x faster",
                     ">= 20x faster", pst["mean"] / start["mean"] >= 20)
        if supctl:
            st, sst = self.hyperfine([supctl.cmd("status"), supctl.cmd("start", "p0")], 10 if self.quick else 60,
                                     warmup=2, ignore_failure=True)
            self.add("ps (10 servers)", "supervisorctl status", ms(st["mean"]), f"llmctl ps {ms(ps['mean'])}",
                     f"llmctl {st['mean'] / ps['mean']:.0f}x faster")
            self.add("start (running)", "supervisorctl start (running)", ms(sst["mean"]),
                     f"llmctl start {ms(start['mean'])}", f"llmctl {sst['mean'] / start['mean']:.0f}x faster")
        self.run(self.cmd(e, "stop", "--all"), check=False)

    def startup(self):
        runs = 40 if self.quick else 300
        v, f = self.hyperfine([[self.llmctl, "--version"], [self.floor, "--version"]], runs)
        self.add("start-up", "llmctl --version", ms(v["mean"]), f"floor {ms(f['mean'])}",
                 f"{v['mean'] / f['mean']:.2f}x floor")
        libs = self.run(["ldd", self.llmctl]).stdout
        names = [ln.split()[0] for ln in libs.splitlines() if ln.strip()]
        self.notes.append("Shared libraries llmctl loads (ldd): " + ", ".join(f"`{n}`" for n in names) + ".")

    def stop_vs_kill(self):
        n = 5 if self.quick else 30
        e = self.env("stop", {"k": []})
        stops, kills = [], []
        for _ in range(n):
            self.run(self.cmd(e, "start", "k", "-q"))
            t = time.monotonic()
            self.run(self.cmd(e, "stop", "k"))
            stops.append((time.monotonic() - t) * 1e3)
        for _ in range(n):
            port = self.ports(1)[0]
            p = subprocess.Popen([self.mock, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port)
            t = time.monotonic()
            p.send_signal(signal.SIGTERM)
            p.wait()
            kills.append((time.monotonic() - t) * 1e3)
        s, k = statistics.median(stops), statistics.median(kills)
        self.add("stop", "llmctl stop (median)", ms(s), f"kill + wait {ms(k)}", f"{s - k:+.2f} ms")

    def spawn_ready(self):
        """A stopped server started: spawn (under its monitor) to ready, next to the mock spawned
        by hand and waited for until its port answers (the floor: no gate, no monitor, no row)."""
        n = 5 if self.quick else 30
        e = self.env("spawn", {"k": []})
        starts, direct = [], []
        for _ in range(n):
            t = time.monotonic()
            self.run(self.cmd(e, "start", "k", "-q"))
            starts.append((time.monotonic() - t) * 1e3)
            self.run(self.cmd(e, "stop", "k", "-q"))
        for _ in range(n):
            port = self.ports(1)[0]
            t = time.monotonic()
            p = subprocess.Popen([self.mock, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port)
            direct.append((time.monotonic() - t) * 1e3)
            p.send_signal(signal.SIGTERM)
            p.wait()
        s, d = statistics.median(starts), statistics.median(direct)
        self.add("spawn to ready", "llmctl start, stopped (median)", ms(s), f"spawn + port answers {ms(d)}", f"{s - d:+.2f} ms")

    def race(self):
        rounds = int(os.environ.get("BENCH_RACE_ROUNDS", 1 if self.quick else 5))
        e = self.env("race", {f"r{i}": ["--startup-delay", "1s"] for i in range(8)}, port_count=16)
        walls, holds, cpus, waits, fails = [], [], [], [], 0
        for _ in range(rounds):
            envv = dict(os.environ, LLMCTL_DEBUG="lock")
            t = time.monotonic()
            procs = [subprocess.Popen(self.cmd(e, "start", f"r{i % 8}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=envv) for i in range(64)]
            per_cmd_cpu = []
            for p in procs:
                out, err = p.communicate()
                fails += p.returncode != 0
                cpu = 0
                for m in re.finditer(r"lock pid=\d+ wait_us=(\d+) held_us=(\d+) cpu_us=(\d+)", err):
                    waits.append(int(m.group(1)) / 1e3)
                    holds.append(int(m.group(2)) / 1e3)
                    cpu += int(m.group(3))
                per_cmd_cpu.append(cpu / 1e3)
            walls.append((time.monotonic() - t) * 1e3)
            cpus += per_cmd_cpu
            servers = json.loads(self.run(self.cmd(e, "ps", "--json")).stdout)
            if len(servers) != 8 or len({s["port"] for s in servers}) != 8:
                raise SystemExit(f"bench: race ended with {len(servers)} servers: {servers}")
            self.run(self.cmd(e, "stop", "--all"))
        w = max(walls)
        self.add("race (64 starts, 8 models, 1 s load)", "total wall (worst of %d)" % rounds, ms(w), "1 s load",
                 f"+{w - 1000:.0f} ms", "<= 1.5 s", w <= 1500 and fails == 0)
        self.add("race (64 starts, 8 models, 1 s load)", f"lock hold wall p50 / p99 ({len(holds)} holds)",
                 f"{pct(holds, 50):.2f} / {pct(holds, 99):.2f} ms", target="p99 < 20 ms", ok=pct(holds, 99) < 20)
        self.add("race (64 starts, 8 models, 1 s load)", "CPU inside the lock per command p50 / p99 / max",
                 f"{pct(cpus, 50):.2f} / {pct(cpus, 99):.2f} / {max(cpus):.2f} ms", target="< 2 ms",
                 ok=pct(cpus, 99) < 2)
        self.add("race (64 starts, 8 models, 1 s load)", "lock wait p50 / p99",
                 f"{pct(waits, 50):.2f} / {pct(waits, 99):.2f} ms")
        if fails:
            self.notes.append(f"{fails} of the race's starts failed.")

    def chat(self):
        rate, n = 2000, (400 if self.quick else 2000)
        e = self.env("chat", {"paced": ["--reply-tokens", str(n), "--tokens-per-second", str(rate), "--stamp-tokens"],
                              "fast": ["--reply-tokens", "200000", "--stamp-tokens"],
                              "one": ["--reply-tokens", "1", "--stamp-tokens"]})
        urls = {}
        for m in ("paced", "fast", "one"):
            urls[m] = self.run(self.cmd(e, "start", m, "-q")).stdout.strip()
        body = json.dumps({"model": "x", "stream": True, "messages": [{"role": "user", "content": "hi"}]})

        def curl(m):
            return ["curl", "-sN", "-H", "Content-Type: application/json", "-d", body, urls[m] + "/v1/chat/completions"]

        def relay(m):
            return self.cmd(e, "chat", m, "hi")

        # Paced: delivered share and per-token latency (arrival time - the mock's send stamp).
        res = {}
        for label, argv in (("llmctl chat", relay("paced")), ("curl -N", curl("paced"))):
            lat, count, first, last, _, _ = read_stamps(argv)
            res[label] = (lat, count, first, last)
        lc, cc = res["llmctl chat"], res["curl -N"]
        deliv = lc[1] / n
        rate_l = (lc[1] - 1) / ((lc[3] - lc[2]) / 1e9) if lc[1] > 1 else 0
        self.add("chat relay @ 2000 tok/s", "tokens delivered", f"{lc[1]} of {n} ({deliv * 100:.1f}%), {rate_l:.0f} tok/s",
                 f"curl {cc[1]} of {n}", target=">= 99%", ok=deliv >= 0.99)
        l50, c50 = statistics.median(lc[0]), statistics.median(cc[0])
        l99, c99 = pct(lc[0], 99), pct(cc[0], 99)
        self.add("chat relay @ 2000 tok/s", "per-token latency p50 / p99", f"{l50:.3f} / {l99:.3f} ms",
                 f"curl {c50:.3f} / {c99:.3f} ms", f"{l50 - c50:+.3f} / {l99 - c99:+.3f} ms", "within 1 ms of curl",
                 l50 - c50 <= 1 and l99 - c99 <= 1)
        # Fastest: the mock unpaced; tokens/s and the relay's CPU per 1,000 tokens.
        best = None
        for _ in range(1 if self.quick else 3):
            lat, count, first, last, cpu_ms, wall = read_stamps(relay("fast"), want_cpu=True)
            r = (count / wall, cpu_ms / count * 1000)
            best = r if best is None or r[0] > best[0] else best
        _, ccount, _, _, ccpu, cwall = read_stamps(curl("fast"), want_cpu=True)
        self.add("chat relay, unpaced", "tokens/s; CPU per 1,000 tokens", f"{best[0]:.0f} tok/s; {best[1]:.2f} ms",
                 f"curl {ccount / cwall:.0f} tok/s; {ccpu / ccount * 1000:.2f} ms")
        # Time to first token, the server already running.
        reps = 10 if self.quick else 40
        tl = [read_stamps(relay("one"), first_only=True) for _ in range(reps)]
        tc = [read_stamps(curl("one"), first_only=True) for _ in range(reps)]
        a, b = statistics.median(tl), statistics.median(tc)
        self.add("chat relay", "time to first token (median)", ms(a), f"curl {ms(b)}", f"{a - b:+.2f} ms", "< 5 ms overhead",
                 a - b < 5)
        self.run(self.cmd(e, "stop", "--all"))

    def chat_tls(self):
        """Time to first token over TLS (an https url, through llmctl-tls) next to curl -N over TLS,
        both to one TLS mock with the certificate made here."""
        d = os.path.join(self.tmp, "pki")
        os.makedirs(d)
        key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        self.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                  "-out", crt, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        port = self.free_port()
        log = os.path.join(d, "mock.log")
        with open(log, "w") as out:  # (a file, not a pipe: its lines never block it)
            mock = subprocess.Popen([self.mock, "--port", str(port), "--tls-cert", crt, "--tls-key", key, "--reply-tokens", "1",
                                     "--stamp-tokens"], stdout=out, stderr=subprocess.STDOUT)
        try:
            for _ in range(500):
                if "listening on https://" in open(log).read():
                    break
                time.sleep(0.01)
            url = f"https://localhost:{port}"
            e = self.env("chat_tls", {}, tail=f'[models.tls]\nurl = "{url}"\nca_file = "{crt}"\n')
            body = json.dumps({"model": "tls", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
            curl = ["curl", "-sN", "--cacert", crt, "-H", "Content-Type: application/json", "-d", body, url + "/v1/chat/completions"]
            reps = 10 if self.quick else 40
            tl, tc = [], []
            for _ in range(reps):  # interleaved: a drift of the machine touches both alike
                tl.append(read_stamps(self.cmd(e, "chat", "tls", "hi"), first_only=True))
                tc.append(read_stamps(curl, first_only=True))
            a, b = statistics.median(tl), statistics.median(tc)
            self.add("chat over TLS", "time to first token (median)", ms(a), f"curl -N {ms(b)}", f"{a - b:+.2f} ms",
                     "within 2 ms of curl -N", a - b <= 2)
        finally:
            mock.terminate()
            mock.wait()

    def log_throughput(self):
        size = "64M" if self.quick else "1G"
        nbytes = 64 << 20 if self.quick else 1 << 30
        e = self.env("log", {"spam": ["--log-spam", size]})
        logf = os.path.join(e["state"], "logs", "spam.log")
        under, plain = [], []

        def with_llmctl():
            os.sync()  # the previous round's dirty pages are not this round's cost
            t = time.monotonic()
            self.run(self.cmd(e, "start", "spam", "-q"))
            wait_log_done(logf, nbytes)
            under.append(time.monotonic() - t)
            self.run(self.cmd(e, "stop", "spam"))
            os.unlink(logf)

        def with_shell():
            out = os.path.join(self.tmp, "plain.log")
            port = self.ports(1)[0]
            os.sync()
            t = time.monotonic()
            p = subprocess.Popen(["sh", "-c", f'exec "$0" --port {port} --log-spam {size} >"$1" 2>&1', self.mock, out])
            wait_log_done(out, nbytes)
            plain.append(time.monotonic() - t)
            p.send_signal(signal.SIGTERM)
            p.wait()
            os.unlink(out)

        for i in range(1 if self.quick else 3):  # alternating which goes first
            for fn in ((with_llmctl, with_shell) if i % 2 == 0 else (with_shell, with_llmctl)):
                fn()
        u, pl = min(under), min(plain)
        mib = nbytes / (1 << 20)
        share = pl / u
        self.add(f"log ({size[:-1]} {size[-1]}iB)", "server writing its log under llmctl", f"{mib / u:.0f} MiB/s",
                 f"shell redirect {mib / pl:.0f} MiB/s", f"{share * 100:.0f}%", ">= 95%", share >= 0.95)

    def logs_tail(self):
        runs = 40 if self.quick else 200
        e = self.env("tail", {"small": ["--exit-after", "0"], "big": ["--exit-after", "0"]})
        logs = os.path.join(e["state"], "logs")
        os.makedirs(logs, mode=0o700)
        line = b"".join(b"%08d the server said something of ordinary length here\n" % i for i in range(16384))
        with open(os.path.join(logs, "small.log"), "wb") as f:
            f.write(line[: 1 << 20])
        big = (64 << 20) if self.quick else (1 << 30)
        with open(os.path.join(logs, "big.log"), "wb") as f:
            while f.tell() < big:
                f.write(line)
        s, b = self.hyperfine([self.cmd(e, "logs", "small", "-n", "10"), self.cmd(e, "logs", "big", "-n", "10")], runs)
        r = b["mean"] / s["mean"]
        self.add("logs -n 10", f"on {big >> 20} MiB", ms(b["mean"]), f"on 1 MiB {ms(s['mean'])}", f"{r:.2f}x",
                 "within 2x", r <= 2)

    def reap(self):
        nserv, nproc = (20, 200) if self.quick else (100, 1000)
        e = self.env("reap", {f"m{i:03d}": [] for i in range(nserv)})
        for i in range(nserv):
            self.run(self.cmd(e, "start", f"m{i:03d}", "-q"))
        sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(nproc)]
        self.started += sleepers
        try:
            total = len(os.listdir("/proc"))
            r, ps = self.hyperfine([self.cmd(e, "reap"), ["ps", "-e", "-o", "pid,sess,args"]], 5 if self.quick else 30,
                                   warmup=2)
            self.add("reap", f"{nserv} rows, {nproc} extra processes", ms(r["mean"]),
                     f"procps ps -e {ms(ps['mean'])}", f"{r['mean'] / ps['mean']:.2f}x one /proc scan by procps")
            self.notes.append(f"During the reap benchmark /proc listed {total} entries.")
        finally:
            for p in sleepers:
                p.kill()
                p.wait()
            self.started = [p for p in self.started if p not in sleepers]
            self.run(self.cmd(e, "stop", "--all"), check=False)

    def admission(self):
        """Memory pools: the CPU a start spends inside the lock when it must pick its victim among 50
        running servers (LLMCTL_DEBUG=lock), against the same start in no pool; and a start of a
        running server in a pool against one in no pool (admission must cost it nothing)."""
        n, rounds = 50, (5 if self.quick else 30)
        names = [f"a{i:02d}" for i in range(n + 1)]
        keys = {m: 'memory = "1GiB"' for m in names}
        pooled = self.env("admission", {m: [] for m in names}, port_count=n + 8, defaults='pool = "p"', model_keys=keys,
                          tail=f'[pools.p]\nmemory = "{n}GiB"\n')
        plain = self.env("admission-none", {m: [] for m in names}, port_count=n + 8)
        envv = dict(os.environ, LLMCTL_DEBUG="lock")

        def holds_of(e, name):
            p = self.run(self.cmd(e, "start", name, "-q"), env=envv)
            return [int(m.group(1)) / 1e3 for m in re.finditer(r"lock pid=\d+ wait_us=\d+ held_us=\d+ cpu_us=(\d+)", p.stderr)]

        try:
            for e in (pooled, plain):
                for m in names[:n]:
                    self.run(self.cmd(e, "start", m, "-q"))
            firsts, totals, plain_firsts, plain_totals = [], [], [], []
            spare = names[n]
            for k in range(rounds):
                # The pool is full: `spare` evicts the least recently used (names[k % n] in turn),
                # which becomes the next round's spare.
                cpu = holds_of(pooled, spare)
                firsts.append(cpu[0])
                totals.append(sum(cpu))
                spare = names[k % n]
                # The same start in no pool: the stop first, so it spawns too.
                self.run(self.cmd(plain, "stop", names[n], "-q"), check=False)
                cpu = holds_of(plain, names[n])
                plain_firsts.append(cpu[0])
                plain_totals.append(sum(cpu))
            evicted = self.run(["sqlite3", os.path.join(pooled["state"], "state.db"),
                                "SELECT count(*) FROM events WHERE kind='evicted'"]).stdout.strip()
            sec = f"admission ({n} running servers, pool full)"
            self.add(sec, f"CPU inside the lock, the evicting decision p50 / max ({rounds} starts, {evicted} evictions)",
                     f"{pct(firsts, 50):.2f} / {max(firsts):.2f} ms",
                     f"no pool, the spawning decision {pct(plain_firsts, 50):.2f} / {max(plain_firsts):.2f} ms",
                     f"{pct(firsts, 50) / pct(plain_firsts, 50):.2f}x", "p50 < 1 ms", pct(firsts, 50) < 1)
            self.add(sec, "CPU inside the lock, the whole start p50 / max", f"{pct(totals, 50):.2f} / {max(totals):.2f} ms",
                     f"no pool {pct(plain_totals, 50):.2f} / {max(plain_totals):.2f} ms")
            r, q = self.hyperfine([self.cmd(pooled, "start", names[n // 2], "-q"), self.cmd(plain, "start", names[n // 2], "-q")],
                                  40 if self.quick else 300)
            self.add(sec, "start of a running server in the pool", ms(r["mean"]), f"no pool {ms(q['mean'])}",
                     f"{r['mean'] / q['mean']:.2f}x", "no measurable cost")
        finally:
            for e in (pooled, plain):
                self.run(self.cmd(e, "stop", "--all"), check=False)

    # --- the gateway (llmctl serve) ------------------------------------------------------------

    def serve(self):
        """`llmctl serve` next to a direct connection to the mock (the floor) and to nginx as a
        streaming reverse proxy, all three driven by the same C++ load generator; the mocks are
        llmctl-managed servers, so direct, nginx and serve reach the very same processes."""
        q = self.quick
        secs = 2 if q else 5            # one streaming run
        lat_secs, lat_runs = (2, 1) if q else (5, 5)
        # Each comparison is made in rounds, direct, nginx and serve one after another in each,
        # and told as the median with the range: on 2 cores shared by the mock's threads, the
        # proxy and the generator, one run of a few seconds moves by a third from run to run.
        rounds = 1 if q else 5  # (three were not enough: this machine's runs moved by a third from one to the next)
        levels = (1, 64) if q else (1, 64, 512)
        idle_n = 100 if q else 1000
        rate = 2000
        self.next_port = max(self.next_port, 52000)
        many = "max_concurrent = 4096"
        slow = ["--reply-tokens", "2", "--tokens-per-second", "0.005"]  # one token, the next in 200 s
        listen = self.free_port()
        e = self.env("serve", {"fast": ["--reply-tokens", "20000"],
                               "paced": ["--reply-tokens", str(rate * (lat_secs + 5)), "--tokens-per-second", str(rate),
                                         "--stamp-tokens"],
                               "one": ["--reply-tokens", "1"], "idle": slow, "held": slow},
                     model_keys={"fast": many, "paced": many, "one": many, "idle": many, "held": "max_concurrent = 1"},
                     tail=f'[serve]\nlisten = "127.0.0.1:{listen}"\nmax_queue = 100000\n')
        models = ("fast", "paced", "one", "idle", "held")
        for m in models:
            self.run(self.cmd(e, "start", m, "-q"))
        upstream = {s["name"]: s["port"] for s in json.loads(self.run(self.cmd(e, "ps", "--json")).stdout)}
        ngx = Nginx(self, upstream)
        ngx.up()
        srv = Serve(self, e, listen)
        srv.up()
        targets = {"direct": lambda m: upstream[m], "nginx": lambda m: ngx.ports[m], "serve": lambda m: listen}
        order = ("direct", "nginx", "serve")

        def turn(k):  # round k's order: each target goes first in turn (none always follows the same one)
            return order[k % len(order):] + order[:k % len(order)]
        gen_cpu = []  # the generator's share of a core in the saturated runs

        def load(mode, who, model, c, d=None, n=None, stream=True, check=True, rate=None):
            body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
            argv = [self.load, mode, "--target", f"127.0.0.1:{targets[who](model)}", "--body", body, "-c", str(c)]
            argv += ["-d", str(d)] if d is not None else []
            argv += ["-n", str(n)] if n is not None else []
            argv += ["--rate", str(rate)] if rate is not None else []
            r = json.loads(self.run(argv).stdout)
            if check and r["errors"]:
                self.notes.append(f"serve: {mode} -c {c} via {who}: {r['errors']} errors (first: {r['first_error']}).")
            return r

        of_rounds = f", median of {rounds} rounds" if rounds > 1 else ""

        def spread(v, fmt="{:.2f}"):  # the range of a figure over the rounds
            return f" ({fmt.format(min(v))}..{fmt.format(max(v))})" if len(v) > 1 else ""

        def cpu_of(who):
            return srv.cpu_ms() if who == "serve" else ngx.cpu_ms() if who == "nginx" else 0.0

        try:
            # Streaming relay at the mock's fastest rate; CPU per 1,000 tokens from the 64-stream runs.
            load("stream", "direct", "fast", 4, d=1)  # warm-up
            per_k = {"serve": [], "nginx": []}
            for c in levels:
                res = {who: [] for who in order}
                for k in range(rounds):
                    for who in turn(k):
                        c0 = cpu_of(who)
                        r = load("stream", who, "fast", c, d=secs)
                        res[who].append(r["tokens_per_s"])
                        gen_cpu.append(r["cpu_s"] / r["seconds"])
                        if c == 64 and who != "direct":
                            per_k[who].append((cpu_of(who) - c0) / max(r["tokens"], 1) * 1000)
                s, d_, n_ = (statistics.median(res[w]) for w in ("serve", "direct", "nginx"))
                d_, n_ = max(d_, 1e-9), max(n_, 1e-9)
                to_n = [a / max(b, 1e-9) for a, b in zip(res["serve"], res["nginx"])]
                self.add("serve relay, unpaced", f"tokens/s, {c} stream{'s' if c > 1 else ''}{of_rounds}", f"{s:.0f}",
                         f"direct {d_:.0f}; nginx {n_:.0f}", f"{s / d_:.2f}x direct, {s / n_:.2f}x nginx{spread(to_n)}",
                         ">= 0.9x direct, >= nginx", s >= 0.9 * d_ and s >= n_)
            if 64 in levels:
                ks, kn = statistics.median(per_k["serve"]), statistics.median(per_k["nginx"])
                self.add("serve relay, unpaced, 64 streams", f"CPU per 1,000 relayed tokens{of_rounds}", f"{ks:.2f} ms",
                         f"nginx {kn:.2f} ms", f"{ks / max(kn, 1e-9):.1f}x nginx")

            # Per-token latency at 2,000 tokens/s per stream, 64 streams: arrival - the mock's send stamp.
            lat = {who: [] for who in order}
            for k in range(lat_runs):
                for who in turn(k):
                    r = load("stream", who, "paced", 64, d=lat_secs)
                    t = r["token_latency_ms"]
                    lat[who].append((t["p50"], t["p99"], r["tokens_per_s"]))
            for i, name in ((0, "p50"), (1, "p99")):
                def added(who):
                    v = [lat[who][k][i] - lat["direct"][k][i] for k in range(lat_runs)]
                    return statistics.median(v), min(v), max(v)
                sv, nv = added("serve"), added("nginx")
                dv = statistics.median(x[i] for x in lat["direct"])
                self.add(f"serve relay @ {rate} tok/s, 64 streams", f"added per-token latency {name} (median, range of {lat_runs})",
                         f"{sv[0]:+.3f} ms ({sv[1]:+.3f}..{sv[2]:+.3f})",
                         f"nginx {nv[0]:+.3f} ms ({nv[1]:+.3f}..{nv[2]:+.3f}); direct {dv:.3f} ms", f"{sv[0] - nv[0]:+.3f} ms vs nginx",
                         "no worse than nginx (aim)", sv[0] <= nv[0])
            got = statistics.median(x[2] for x in lat["serve"]) / 64
            self.notes.append(f"serve: at {rate} tokens/s per stream, 64 streams, each stream through serve delivered "
                              f"{got:.0f} tokens/s (median of the runs); direct "
                              f"{statistics.median(x[2] for x in lat['direct']) / 64:.0f}.")

            # Time to first byte, 64 clients, each request one lease through serve (running model):
            # the overhead over direct of each round's percentiles, at two loads.
            # - Paced (the target): each client sends 50 requests a second (3,200 a second) on a
            #   schedule, the time counted from when each request was due (wrk2's way: an answer
            #   that holds up the next request is charged for it). Direct then leaves this machine
            #   40-70% idle and serve or nginx about 40%: the overhead is the proxy's, not a
            #   queue's. At 6,400 a second a proxy left 10-25% idle, and in some rounds the
            #   generator itself wrote its requests up to 500 ms late (for nginx up to 43 ms): the
            #   round measured the machine. The generator's own lateness (written - due) is told.
            # - Saturated (told, no target): each client sends its next request as soon as the
            #   answer came, 200 requests a client. Direct alone keeps both cores busy, so every
            #   microsecond a proxy adds is a microsecond more in the run queue, and the p99 is the
            #   scheduler's: with the mock's 65 threads it moved between 10 and 66 ms from round to
            #   round for direct itself, and a proxy's loop thread waited up to 106 ms runnable
            #   (perf sched). What a proxy carries at saturation is the small requests' row.
            ttfb_rate = 50  # requests a second per client

            def first_byte(label, rate, n):
                over = {"serve": ([], []), "nginx": ([], [])}
                direct_tt, idle, late = [], [], {who: [] for who in order}
                for k in range(rounds):
                    tt = {}
                    for who in turn(k):
                        busy0 = machine_busy()
                        r = load("ttfb", who, "one", 64, n=n, rate=rate)
                        tt[who] = r["ttfb_ms"]
                        if rate is not None:
                            late[who].append(r["send_lag_ms"]["p99"])
                        if who == "direct":
                            idle.append(machine_idle_since(busy0))
                    direct_tt.append(tt["direct"])
                    for who in ("serve", "nginx"):
                        over[who][0].append(tt[who]["p50"] - tt["direct"]["p50"])
                        over[who][1].append(tt[who]["p99"] - tt["direct"]["p99"])
                o50, o99 = statistics.median(over["serve"][0]), statistics.median(over["serve"][1])
                n50, n99 = statistics.median(over["nginx"][0]), statistics.median(over["nginx"][1])
                d50, d99 = statistics.median(t["p50"] for t in direct_tt), statistics.median(t["p99"] for t in direct_tt)
                target = rate is not None
                self.add(f"serve time to first byte, 64 clients, {label}",
                         f"overhead over direct p50 / p99 ({64 * n} requests a round){of_rounds}",
                         f"{o50:+.2f} / {o99:+.2f} ms" + (f" (p99{spread(over['serve'][1], '{:+.2f}')})" if rounds > 1 else ""),
                         f"direct {d50:.2f} / {d99:.2f} ms (machine {statistics.median(idle):.0f}% idle); nginx {n50:+.2f} / {n99:+.2f} ms",
                         "", "p50 <= 1 ms, p99 <= 5 ms" if target else "", (o50 <= 1 and o99 <= 5) if target else None)
                if target:
                    self.notes.append(f"serve: first byte at {label}: the generator wrote its requests late by at most "
                                      + ", ".join(f"{max(late[who]):.2f} ms ({who})" for who in order)
                                      + " at p99 in a round (request written - due; counted in the first byte).")

            for who in order:
                load("ttfb", who, "one", 8, n=5)  # warm-up
            first_byte(f"{ttfb_rate * 64:,} requests/s", ttfb_rate, 25 if q else 100)
            first_byte("saturated", None, 50 if q else 200)

            # Small non-streaming requests, 64 keep-alive connections.
            rps = {who: [] for who in order}
            for who in order:
                load("rps", who, "one", 8, d=1, stream=False)  # warm-up
            for k in range(rounds):
                for who in turn(k):
                    rps[who].append(load("rps", who, "one", 64, d=lat_secs, stream=False)["requests_per_s"])
            ratios = [a / max(b, 1e-9) for a, b in zip(rps["serve"], rps["nginx"])]
            r = statistics.median(ratios)
            rps = {who: statistics.median(v) for who, v in rps.items()}
            self.add("serve small requests, 64 connections", f"requests/s (non-streaming){of_rounds}", f"{rps['serve']:.0f}",
                     f"nginx {rps['nginx']:.0f}; direct {rps['direct']:.0f}", f"{r:.2f}x nginx{spread(ratios)}", ">= 0.8x nginx", r >= 0.8)

            # Leases through the state file: the lease driver, 64 threads of one process.
            le = self.env("leases", {"m": []})
            self.run(self.cmd(le, "ps"))  # makes the state file
            lr = {"leases_per_s": float("nan")}
            if os.path.exists(self.leases):
                lr = json.loads(self.run([self.leases, le["state"], "m", "64", str(lat_secs)]).stdout)
            self.add("serve leases, 64 concurrent", "acquired and released per second (lease driver)", f"{lr['leases_per_s']:.0f}/s",
                     f"through serve {rps['serve']:.0f}/s (one lease per request)")

            # 1,000 idle streams held open (opened one after another): RSS (serve's and nginx's);
            # 1,000 streams asked for at once: how many began within a while; 1,000 waiting for a
            # slot: CPU.
            base_rss = srv.rss_kib()
            rss = {}
            for who in ("nginx", "serve"):
                h = Hold(self, targets[who]("idle"), "idle", idle_n, ready_on="head", serial=True)
                try:
                    h.wait_ready()
                    time.sleep(1)
                    rss[who] = srv.rss_kib() if who == "serve" else ngx.rss_kib()
                    if who == "serve":
                        threads = srv.threads()
                finally:
                    h.stop()
                time.sleep(2)  # the streams end upstream too
            self.add(f"serve {idle_n:,} idle streams", "RSS of serve", f"{rss['serve'] / 1024:.1f} MiB",
                     f"nginx (all processes) {rss['nginx'] / 1024:.1f} MiB; serve before {base_rss / 1024:.1f} MiB", "",
                     "<= 64 MiB", rss["serve"] <= 64 * 1024)
            self.notes.append(f"serve: holding {idle_n} streams it ran {threads} threads.")
            burst_s = 3 if q else 10
            began = {}
            for who in ("nginx", "serve"):
                h = Hold(self, targets[who]("idle"), "idle", idle_n, ready_on="sent")
                try:
                    h.wait_ready()
                    time.sleep(burst_s)
                finally:
                    began[who] = (h.stop() or {}).get("heads", 0)
                deadline = time.monotonic() + 90  # the streams end, and serve drops their leases
                while time.monotonic() < deadline:
                    row = [s for s in json.loads(self.run(self.cmd(e, "ps", "--json")).stdout) if s["name"] == "idle"][0]
                    if row.get("queued", 0) == 0 and row.get("active", 0) == 0:
                        break
                    time.sleep(0.5)
                time.sleep(1)
            self.add(f"serve {idle_n:,} idle streams", f"streams begun {burst_s} s after {idle_n:,} asked at once", f"{began['serve']}",
                     f"nginx {began['nginx']}", f"{began['serve'] / max(began['nginx'], 1):.2f}x nginx")
            holder = Hold(self, listen, "held", 1, ready_on="head")
            waiting = None
            try:
                holder.wait_ready()
                waiting = Hold(self, listen, "held", idle_n, ready_on="sent")
                waiting.wait_ready()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    row = [s for s in json.loads(self.run(self.cmd(e, "ps", "--json")).stdout) if s["name"] == "held"][0]
                    if row.get("queued", 0) >= idle_n:
                        break
                    time.sleep(0.2)
                time.sleep(1)
                span = 3 if q else 10
                c0, t0 = srv.cpu_ms(), time.monotonic()
                time.sleep(span)
                share = (srv.cpu_ms() - c0) / ((time.monotonic() - t0) * 1000)
                self.add(f"serve {idle_n:,} requests waiting for a slot", f"CPU of serve over {span} s; RSS",
                         f"{share * 100:.1f}% of a core; {srv.rss_kib() / 1024:.1f} MiB", f"{row.get('queued', 0)} queued in ps")
            finally:
                if waiting:
                    waiting.stop()
                holder.stop()
            self.notes.append(f"serve: the load generator used at most {max(gen_cpu) * 100:.0f}% of a core in the "
                              "unpaced runs (it is one thread).")
        finally:
            srv.down()
            ngx.down()
            self.run(self.cmd(e, "stop", "--all"), check=False)

    # --- the end -------------------------------------------------------------------------------

    def cleanup(self):
        for e in self.envs:
            if os.path.exists(e["state"]):
                subprocess.run(self.cmd(e, "stop", "--all", "--timeout", "5s"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        for p in self.started:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def report(self, rows):
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
        head = [f"Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
                f"CPU: {cpu}, {os.cpu_count()} cores; kernel {platform.release()}; {_os_name()}",
                f"Build: {os.path.relpath(self.build, ROOT)}/, LLMCTL_LEAN_LINK ({'quick run' if self.quick else 'full run'})"]
        lines = ["| section | measured | value | reference | ratio | target | met |", "|---|---|---|---|---|---|---|"]
        for sec, what, val, ref, ratio, target, ok in rows:
            lines.append(f"| {sec} | {what} | {val} | {ref} | {ratio} | {target} | {'' if ok is None else ('yes' if ok else '**no**')} |")
        return head, lines

    def write(self, path):
        """Two blocks in the doc: the gateway's rows (sections "serve ...") in bench-serve, the
        others in bench; a block is replaced only when this run has rows for it."""
        gw = "serve: "
        blocks = [("bench", [r for r in self.rows if not r[0].startswith("serve ")], [n for n in self.notes if not n.startswith(gw)]),
                  ("bench-serve", [r for r in self.rows if r[0].startswith("serve ")],
                   [n[len(gw):] for n in self.notes if n.startswith(gw)])]
        doc = None
        if path:
            with open(path) as f:
                doc = f.read()
        for name, rows, notes in blocks:
            if not rows:
                continue
            head, lines = self.report(rows)
            print("\n".join(head + [""] + lines + [""] + notes))
            if doc is None:
                continue
            start, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
            block = start + "\n" + "\n\n".join(["  \n".join(head), "\n".join(lines)] + notes) + "\n" + end
            if start in doc and end in doc:
                doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
            else:
                doc += "\n" + block + "\n"
        if doc is not None:
            with open(path, "w") as f:
                f.write(doc)
            log(f"wrote {path}")


def _quote(s):
    return "'" + s.replace("'", "'\\''") + "'" if re.search(r"[^\w@%+=:,./-]", s) else s


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for ln in f:
                if ln.startswith("PRETTY_NAME="):
                    return ln.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.002)
    raise SystemExit(f"bench: nothing listens on port {port}")


def wait_log_done(path, nbytes, timeout=300):
    """Polls until the mock's log holds its spam and the "log spam done" line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.path.getsize(path) >= nbytes:
                with open(path, "rb") as f:
                    f.seek(-4096, os.SEEK_END)
                    if b"log spam done" in f.read():
                        return
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"bench: {path} did not reach {nbytes} bytes")


def read_stamps(argv, want_cpu=False, first_only=False):
    """Runs argv, reading its stdout as it arrives. Each token the mock sent carries its send time
    (CLOCK_MONOTONIC ns); latency = arrival - send. Returns (latencies ms, count, first arrival,
    last arrival, CPU ms of the child, wall s), or with first_only the time to the first token in ms."""
    t0 = time.monotonic_ns()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fd = p.stdout.fileno()
    buf, lat, first, last, count = b"", [], 0, 0, 0
    pat = re.compile(rb"(\d{6,}) ")
    while True:
        chunk = os.read(fd, 1 << 16)
        now = time.monotonic_ns()
        if not chunk:
            break
        buf += chunk
        if first_only:
            if pat.search(buf):
                p.stdout.close()
                p.wait()
                return (now - t0) / 1e6
            continue
        pos = 0
        for m in pat.finditer(buf):
            lat.append((now - int(m.group(1))) / 1e6)
            count += 1
            first = first or now
            last = now
            pos = m.end()
        buf = buf[pos:] if pos else buf[-64:]
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} exited {p.returncode}")
    cpu = (ru.ru_utime + ru.ru_stime) * 1e3
    return lat, count, first, last, cpu, (time.monotonic_ns() - t0) / 1e9


def proc_cpu_ms(pid):
    """utime + stime of a process, all its threads, in ms (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """The machine's (busy, total) CPU ticks since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:9]]
    return sum(t) - t[3] - t[4], sum(t)


def machine_idle_since(before):
    """The machine's idle share (%) since `before` (a machine_busy())."""
    busy, total = machine_busy()
    return 100.0 * (1 - (busy - before[0]) / max(total - before[1], 1))


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return int(ln.split()[1])
    return 0


def proc_children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            if int(s[s.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(d))
    return kids


class Nginx:
    """A private nginx from Debian as a streaming reverse proxy: its own config, prefix, pid file and
    logs in a temp dir, one listening port per upstream model, run as our child (daemon off) and
    stopped by its pid."""

    def __init__(self, bench, upstream):
        self.bench = bench
        self.dir = os.path.join(bench.tmp, "nginx")
        self.upstream = upstream
        self.ports = {m: bench.free_port() for m in upstream}
        self.proc = None

    def up(self):
        d = self.dir
        os.makedirs(os.path.join(d, "logs"))
        conf = [f"worker_processes {os.cpu_count()};", "worker_rlimit_nofile 20000;", f"pid {d}/nginx.pid;",
                f"error_log {d}/logs/error.log warn;", "events { worker_connections 10000; }", "http {",
                f"  access_log {d}/logs/access.log;",
                *(f"  {k}_temp_path {d}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))]
        for m, port in self.upstream.items():
            conf += [f"  upstream {m} {{ server 127.0.0.1:{port}; keepalive 512; }}",
                     f"  server {{ listen 127.0.0.1:{self.ports[m]} backlog=4096;",
                     f"    location / {{ proxy_pass http://{m}; proxy_http_version 1.1; proxy_set_header Connection \"\";",
                     "      proxy_buffering off; proxy_read_timeout 600s; } }"]
        conf.append("}")
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "logs", "error.log"),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.ports.values():
            wait_port(port)
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "logs", "error.log")) as f:
                raise SystemExit(f"bench: nginx exited: {f.read().strip()}")

    def pids(self):
        return [self.proc.pid] + proc_children(self.proc.pid)

    def cpu_ms(self):
        return sum(proc_cpu_ms(p) for p in self.pids())

    def rss_kib(self):
        return sum(proc_status(p, "VmRSS") for p in self.pids())

    def down(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master stops its workers
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Serve:
    """`llmctl serve` on a bench env, its stderr (the access log) to a file."""

    def __init__(self, bench, e, port):
        self.bench, self.e, self.port, self.proc = bench, e, port, None

    def up(self):
        with open(os.path.join(self.e["dir"], "serve.err"), "w") as err:
            self.proc = subprocess.Popen(self.bench.cmd(self.e, "serve"), stdout=subprocess.DEVNULL, stderr=err)
        wait_port(self.port)
        if self.proc.poll() is not None:
            raise SystemExit(f"bench: llmctl serve exited {self.proc.returncode} (see {self.e['dir']}/serve.err)")

    def cpu_ms(self):
        return proc_cpu_ms(self.proc.pid)

    def rss_kib(self):
        return proc_status(self.proc.pid, "VmRSS")

    def threads(self):
        return proc_status(self.proc.pid, "Threads")

    def down(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Hold:
    """The load generator holding N streaming requests open until stopped."""

    def __init__(self, bench, port, model, n, ready_on, serial=False):
        body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        self.proc = subprocess.Popen([bench.load, "hold", "--target", f"127.0.0.1:{port}", "--body", body, "-c", str(n),
                                      "-d", "600", "--ready-on", ready_on] + (["--serial"] if serial else []),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        os.set_blocking(fd, False)
        buf = ""
        while time.monotonic() < deadline:
            try:
                buf += os.read(fd, 4096).decode(errors="replace")
            except BlockingIOError:
                pass
            if "ready" in buf:
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the load generator (hold) exited: {buf.strip()}")
            time.sleep(0.05)
        raise SystemExit("bench: the held requests were not all sent/answered in time")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out) if out.strip() else None


class Pm2:
    def __init__(self, bench, prefix):
        self.bin = os.path.join(prefix, "node_modules", ".bin", "pm2")
        self.home = os.path.join(bench.tmp, "pm2home")
        self.bench = bench
        self.env = dict(os.environ, PM2_HOME=self.home)
        self.script = bench.mock

    def cmd(self, *a):
        return ["env", f"PM2_HOME={self.home}", self.bin, *a]

    def start_running_cmd(self):
        return self.cmd("start", self.script, "--name", "p0")

    def up(self, ports):
        for i, port in enumerate(ports):
            self.bench.run(self.cmd("start", self.script, "--name", f"p{i}", "--", "--port", str(port)))
        for port in ports:
            wait_port(port)

    def down(self):
        subprocess.run(self.cmd("kill"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Supervisor:
    def __init__(self, bench):
        self.dir = os.path.join(bench.tmp, "supervisor")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "supervisord.conf")
        self.bench = bench
        self.proc = None

    def cmd(self, *a):
        return ["supervisorctl", "-c", self.conf, *a]

    def up(self, ports):
        d = self.dir
        with open(self.conf, "w") as f:
            f.write(f"[unix_http_server]\nfile={d}/sock\nchmod=0700\n\n"
                    f"[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nchildlogdir={d}\n"
                    f"nodaemon=true\n\n"
                    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                    f"[supervisorctl]\nserverurl=unix://{d}/sock\n\n")
            for i, port in enumerate(ports):
                f.write(f"[program:p{i}]\ncommand={self.bench.mock} --port {port}\nstartsecs=0\n"
                        f"stdout_logfile={d}/p{i}.log\nredirect_stderr=true\n\n")
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports:
            wait_port(port, timeout=30)

    def down(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # supervisord stops its programs on TERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build dir with bin/llmctl (default build/)")
    ap.add_argument("--pm2-prefix", help="npm prefix holding pm2 (node_modules/.bin/pm2); omitted: no pm2 rows")
    ap.add_argument("--no-supervisor", action="store_true", help="skip the supervisor rows")
    ap.add_argument("--write", metavar="FILE", help="replace the bench block in FILE (docs/BENCHMARKS.md)")
    ap.add_argument("--quick", action="store_true", help="small sizes and few runs (a smoke run, not figures)")
    ap.add_argument("--only", help="comma-separated sections: ps,startup,spawn,stop,race,chat,tls,log,tail,reap,admission,serve")
    args = ap.parse_args()
    b = Bench(args)
    only = set(args.only.split(",")) if args.only else None
    pm2 = sup = None
    try:
        if only is None or "ps" in only:
            if args.pm2_prefix:
                pm2 = Pm2(b, args.pm2_prefix)
                lo, _ = b.ports(10)
                pm2.up(range(lo, lo + 10))
            if not args.no_supervisor and shutil.which("supervisord"):
                sup = Supervisor(b)
                lo, _ = b.ports(10)
                sup.up(range(lo, lo + 10))
            b.ps_and_start(pm2, sup)
            if pm2:
                pm2.down()
            if sup:
                sup.down()
        for name, fn in (("startup", b.startup), ("spawn", b.spawn_ready), ("stop", b.stop_vs_kill), ("race", b.race), ("chat", b.chat), ("tls", b.chat_tls),
                         ("log", b.log_throughput), ("tail", b.logs_tail), ("reap", b.reap), ("admission", b.admission),
                         ("serve", b.serve)):
            if only is None or name in only:
                fn()
        b.write(args.write)
    finally:
        if pm2:
            pm2.down()
        if sup:
            sup.down()
        b.cleanup()
    return 0 if all(ok is not False for *_, ok in b.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
