#!/usr/bin/env python3
"""A flood of bad connections at `llmctl serve` while a valid client keeps using it.

Opens --conns connections, --concurrency at once (asyncio), each one of four kinds, in a
shuffled mix:
  garbage  random bytes ending in a blank line: answered 400, then closed
  half     half a request line, then closed (every other one with a reset)
  headers  a request with 64 KiB of headers: answered 431 (or reset, as the server closes while
           the rest is still coming), never 2xx
  stall    a request stopped mid-header: closed by serve without an answer (--header-timeout)
Meanwhile a thread does valid GET /v1/models and small chat requests in a loop, each on a new
connection, from before the flood until it ends; every one must succeed. Another thread samples
serve's threads and descriptors. Prints a summary; exits 1 on any failure.
"""
import argparse
import asyncio
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--conns", type=int, default=1000)
ap.add_argument("--concurrency", type=int, default=250)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--end-timeout", type=float, default=30.0, help="most seconds a flood connection may stay open")
ap.add_argument("--min-valid", type=int, default=10, help="fewest valid requests during the flood")
args = ap.parse_args()

HOST = "127.0.0.1"
failures = []


def failure(msg):
    if len(failures) < 20:
        failures.append(msg)
    elif len(failures) == 20:
        failures.append("...")


# --- the valid client ----------------------------------------------------------------------------

flood_done = threading.Event()
valid = {"ok": 0, "models": 0, "chats": 0, "max_s": 0.0, "during_flood": 0}
flood_started = threading.Event()


def valid_request(i):
    conn = http.client.HTTPConnection(HOST, args.port, timeout=30)
    auth = {"Authorization": f"Bearer {args.key}"}
    try:
        if i % 2 == 0:
            conn.request("GET", "/v1/models", headers=auth)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                return f"GET /v1/models #{i}: HTTP {r.status}: {body[:200]!r}"
            ids = [m["id"] for m in json.loads(body)["data"]]
            if args.model not in ids:
                return f"GET /v1/models #{i}: no {args.model} in {ids}"
            valid["models"] += 1
        else:
            text = f"valid request {i}"
            req = {"model": args.model, "stream": False, "messages": [{"role": "user", "content": text}]}
            conn.request("POST", "/v1/chat/completions", body=json.dumps(req),
                         headers={**auth, "Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                return f"chat #{i}: HTTP {r.status}: {body[:200]!r}"
            got = json.loads(body)["choices"][0]["message"]["content"]
            if got != text:
                return f"chat #{i}: answer {got!r}, want {text!r}"
            valid["chats"] += 1
    except Exception as e:  # a timeout, a reset, a refused connection, a bad body
        return f"valid request #{i}: {type(e).__name__}: {e}"
    finally:
        conn.close()
    return None


def valid_client():
    i = 0
    while not flood_done.is_set():
        t0 = time.monotonic()
        err = valid_request(i)
        dt = time.monotonic() - t0
        valid["max_s"] = max(valid["max_s"], dt)
        if err:
            failure(err)
        else:
            valid["ok"] += 1
            if flood_started.is_set() and not flood_done.is_set():
                valid["during_flood"] += 1
        i += 1
        if len(failures) > 20:
            break
    valid["total"] = i


# --- serve's threads and descriptors -------------------------------------------------------------

peak = {"threads": 0, "fds": 0}


def sampler():
    while not flood_done.is_set():
        try:
            with open(f"/proc/{args.pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        peak["threads"] = max(peak["threads"], int(line.split()[1]))
            peak["fds"] = max(peak["fds"], len(os.listdir(f"/proc/{args.pid}/fd")))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


# --- the flood -----------------------------------------------------------------------------------

rng = random.Random(args.seed)
kinds = ["garbage", "half", "headers", "stall"]
plan = [kinds[i % 4] for i in range(args.conns)]
rng.shuffle(plan)
outcomes = {k: {} for k in kinds}
stall_s = []
host_line = f"Host: {HOST}:{args.port}\r\n".encode()
big_headers = b"GET /v1/models HTTP/1.1\r\n" + host_line + b"".join(
    b"X-Pad-%02d: %s\r\n" % (n, b"a" * 1024) for n in range(64)) + b"\r\n"
assert len(big_headers) >= 64 * 1024


def note(kind, what):
    outcomes[kind][what] = outcomes[kind].get(what, 0) + 1


async def read_to_end(reader):
    """What serve sends until it closes; a reset after some bytes keeps those."""
    data = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return data, "reset"


def status_of(data):
    parts = data.split(b" ", 2)
    return parts[1].decode(errors="replace") if len(parts) > 1 and parts[0].startswith(b"HTTP/1.") else None


async def one(n, kind, sem):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, args.port), 30)
        except Exception as e:
            note(kind, f"connect failed: {type(e).__name__}")
            failure(f"flood #{n} ({kind}): connect: {type(e).__name__}: {e}")
            return
        t0 = time.monotonic()
        sock = writer.get_extra_info("socket")
        try:
            if kind == "garbage":
                junk = bytes(b for b in rng.randbytes(rng.randint(1, 4000)) if b not in b"\r\n")
                writer.write(b"\x00" + junk + b"\r\n\r\n")
                await writer.drain()
                data, how = await asyncio.wait_for(read_to_end(reader), args.end_timeout)
                st = status_of(data)
                note(kind, f"{st or 'no answer'} {how}")
                if st != "400":
                    failure(f"flood #{n} (garbage): wanted 400, got {data[:100]!r} ({how})")
            elif kind == "half":
                line = b"POST /v1/chat/completions HTTP/1.1\r\n"
                writer.write(line[:rng.randint(1, len(line) // 2)])
                await writer.drain()
                if n % 2:  # a reset instead of a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                note(kind, "sent, closed")
            elif kind == "headers":
                try:
                    writer.write(big_headers)
                    await writer.drain()
                except (ConnectionResetError, BrokenPipeError):
                    pass
                data, how = await asyncio.wait_for(read_to_end(reader), args.end_timeout)
                st = status_of(data)
                note(kind, f"{st or 'no answer'} {how}")
                if st not in ("431", None) or (st is None and data):
                    failure(f"flood #{n} (64 KiB headers): wanted 431 or a reset, got {data[:100]!r} ({how})")
            else:  # stall
                writer.write(b"GET /v1/models HTTP/1.1\r\n" + host_line + b"X-Stalled-Hea")
                await writer.drain()
                data, how = await asyncio.wait_for(read_to_end(reader), args.end_timeout)
                stall_s.append(time.monotonic() - t0)
                note(kind, f"{status_of(data) or 'no answer'} {how}")
                if data:
                    failure(f"flood #{n} (stall): wanted a close without an answer, got {data[:100]!r}")
        except asyncio.TimeoutError:
            note(kind, "still open")
            failure(f"flood #{n} ({kind}): serve kept it open over {args.end_timeout:.0f} s")
        except Exception as e:
            note(kind, f"{type(e).__name__}")
            failure(f"flood #{n} ({kind}): {type(e).__name__}: {e}")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:
                pass


async def flood():
    sem = asyncio.Semaphore(args.concurrency)
    await asyncio.gather(*(one(n, k, sem) for n, k in enumerate(plan)))


vt = threading.Thread(target=valid_client)
st = threading.Thread(target=sampler, daemon=True)
st.start()
vt.start()
# A few valid requests first: the client works before the flood.
while valid["ok"] + len(failures) < 4 and vt.is_alive():
    time.sleep(0.01)
t0 = time.monotonic()
flood_started.set()
asyncio.run(flood())
flood_s = time.monotonic() - t0
flood_done.set()
vt.join(120)
if vt.is_alive():
    failure("the valid client is stuck")

print(f"flood: {args.conns} connections ({args.concurrency} at once) in {flood_s:.1f} s; "
      f"serve peaked at {peak['threads']} threads, {peak['fds']} fds")
for k in kinds:
    print(f"  {k}: " + ", ".join(f"{v} {w}" for w, v in sorted(outcomes[k].items())))
if stall_s:
    print(f"  stalled connections closed after {min(stall_s):.1f}..{max(stall_s):.1f} s")
print(f"valid client: {valid['ok']} of {valid.get('total', '?')} requests succeeded ({valid['models']} GET /v1/models, "
      f"{valid['chats']} chats; {valid['during_flood']} during the flood), slowest {valid['max_s']:.2f} s")
if valid["during_flood"] < args.min_valid:
    failure(f"only {valid['during_flood']} valid requests during the flood (want {args.min_valid})")
if failures:
    print("FAILURES:\n  " + "\n  ".join(failures))
    sys.exit(1)
