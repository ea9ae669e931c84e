#!/usr/bin/env python3
"""Watches the servers of one state dir from /proc, trusting nothing llmctl records, until FILE
exists; then prints a JSON report.

usage: pool_observer.py STATE_DIR STOP_FILE NAME=BYTES... (the memory each model counts)

A server is a process whose environment holds LLMCTL_HOME=STATE_DIR, LLMCTL_INSTANCE and
LLMCTL_NAME, and that is not a zombie. Each one's lifetime is recorded: its start time from
/proc/PID/stat, its exit from a pidfd (the poll of a thread of its own, woken at the exit).

Memory in use is measured by double passes: pass 1 lists the live servers, pass 2 checks that each
still lives with the same start time. A process alive at both looks was alive all along between
them (a pid cannot come back with the same start time), so every server that passes both was alive
at the instant between the passes: their memory summed is a sound lower bound of the memory in use
then, never a false alarm. Passes repeat back to back.
"""
import json
import os
import select
import sys
import threading
import time

home, stop_file = sys.argv[1], sys.argv[2]
memory = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
tick = os.sysconf("SC_CLK_TCK")


def stat_of(pid):
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[19])  # state, starttime (ticks since boot)


def marker_name(pid):
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return None
    if f"LLMCTL_HOME={home}".encode() not in env:
        return None
    if not any(e.startswith(b"LLMCTL_INSTANCE=") for e in env):
        return None
    for e in env:
        if e.startswith(b"LLMCTL_NAME="):
            return e[len("LLMCTL_NAME="):].decode()
    return None


lives = {}  # (pid, starttime) -> {"name", "start_s", "exit_s"}
lock = threading.Lock()
poller = select.poll()
fds = {}
wake_r, wake_w = os.pipe()
poller.register(wake_r, select.POLLIN)
done = False


def watch_exits():
    while not done:
        for fd, _ in poller.poll(200):
            if fd == wake_r:
                os.read(wake_r, 4096)
                continue
            now = time.clock_gettime(time.CLOCK_BOOTTIME)
            with lock:
                key = fds.pop(fd)
                lives[key]["exit_s"] = now
            poller.unregister(fd)
            os.close(fd)


def discover(pid, st):
    key = (pid, st[1])
    if key in lives:
        return key
    name = marker_name(pid)
    if name is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    now_st = stat_of(pid)
    if now_st is None or now_st[1] != st[1] or now_st[0] in "ZX":  # gone (or a new process) meanwhile
        os.close(fd)
        return None
    with lock:
        lives[key] = {"name": name, "start_s": st[1] / tick, "exit_s": None}
        fds[fd] = key
    poller.register(fd, select.POLLIN)
    os.write(wake_w, b"x")
    return key


threading.Thread(target=watch_exits, daemon=True).start()
passes = 0
worst = {"bytes": 0, "servers": []}
over = []
while not os.path.exists(stop_file):
    first = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = stat_of(int(d))
        if st is None or st[0] in "ZX":
            continue
        key = discover(int(d), st)
        if key:
            first.append(key)
    both = []
    for pid, start in first:
        st = stat_of(pid)
        if st and st[1] == start and st[0] not in "ZX":
            both.append((pid, start))
    passes += 1
    names = sorted(lives[k]["name"] for k in both)
    used = sum(memory.get(n, 0) for n in names)
    if used > worst["bytes"]:
        worst = {"bytes": used, "servers": names}
    if used > memory.get("_budget", 1 << 62):
        over.append({"at_pass": passes, "bytes": used, "servers": names})
    time.sleep(0.001)
time.sleep(0.3)  # exits seen by the poll thread
done = True
with lock:
    report = {
        "passes": passes,
        "worst": worst,
        "over_budget": over,
        "servers": [dict(v, pid=k[0]) for k, v in sorted(lives.items(), key=lambda kv: kv[1]["start_s"])],
    }
print(json.dumps(report))
