# Many streams at once through serve's relay pump, clients hanging up at random moments: every
# stream that ends gets exactly its own reply (the mock echoes each prompt, token by token, so a
# piece sent to the wrong client shows), every request is in the access log, and no lease or
# connection thread is left once the clients are gone.
. "$TEST_LIB"
port=$((PORT_BASE + 50))
mock_config
# 400 tokens a second: each stream waits for its pieces, so every one goes through the pump.
mock_model echo --tokens-per-second 400
config_add 'max_concurrent = 64'
llmctl start echo >/dev/null || fail "start echo"
start_serve $port
threads() { awk '/^Threads:/ {print $2}' "/proc/$SERVE_PID/status"; }
base_threads=$(threads)

python3 - "$port" >"$T/clients.out" 2>&1 <<'EOF' || fail "clients: $(cat "$T/clients.out")"
import json, random, socket, sys, threading
port = int(sys.argv[1])
clients, rounds = 48, 6
lock = threading.Lock()
stats = {"whole": 0, "hung_up": 0}
bad = []

def unchunk(raw):
    """The body of a chunked answer, or None while it is incomplete."""
    out, i = bytearray(), 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0: return None
        size = int(raw[i:j], 16)
        if size == 0: return bytes(out) if raw.endswith(b"\r\n\r\n") else None
        if len(raw) < j + 4 + size: return None
        out += raw[j + 2:j + 2 + size]
        i = j + 4 + size

def one(c, r, rng, s):
    """One stream on socket s (None: a new connection, closed after). Returns the socket to go on
    with, or None."""
    keep = s is not None
    if s is None:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
    prompt = " ".join(f"c{c}r{r}w{k}" for k in range(rng.randint(5, 40)))
    body = json.dumps({"model": "echo", "stream": True, "messages": [{"role": "user", "content": prompt}]})
    close = "" if keep else "Connection: close\r\n"
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n{close}\r\n{body}".encode())
    hang_up_after = rng.randint(200, 3000) if rng.random() < 0.3 else None
    data, text = bytearray(), None
    while text is None:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
        if hang_up_after is not None and len(data) >= hang_up_after:
            s.close()
            with lock: stats["hung_up"] += 1
            return None
        head, sep, raw = bytes(data).partition(b"\r\n\r\n")
        if sep: text = unchunk(raw)
    if not keep: s.close()
    if not data.startswith(b"HTTP/1.1 200") or text is None:
        with lock: bad.append(f"{c}/{r}: {bytes(data[:100])!r} (whole: {text is not None})")
        return None
    got = ""
    for line in text.split(b"\n"):
        if line.startswith(b"data: {"):
            for ch in json.loads(line[6:]).get("choices", []):
                got += (ch.get("delta") or {}).get("content") or ""
    with lock:
        if got != prompt or b"data: [DONE]" not in text:
            bad.append(f"{c}/{r}: got {got[:120]!r}, want {prompt[:120]!r}")
        else:
            stats["whole"] += 1
    return s if keep else None

def client(c):
    """Odd clients open a connection per stream; even ones keep theirs alive (a new one after a hang-up)."""
    rng = random.Random(c)
    s = None
    for r in range(rounds):
        try:
            if c % 2 == 0 and s is None:
                s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s = one(c, r, rng, s)
        except Exception as e:
            with lock: bad.append(f"{c}/{r}: {e!r}")
            s = None
    if s: s.close()

threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(f"{clients * rounds} streams: {stats['whole']} whole and exactly their own, {stats['hung_up']} hung up by their client")
for b in bad[:10]: print("BAD", b)
sys.exit(1 if bad or stats["whole"] == 0 or stats["hung_up"] == 0 else 0)
EOF
cat "$T/clients.out"

db="$LLMCTL_HOME/state.db"
leases() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM leases").fetchone()[0])' "$db"; }
wait_for 10 [ "$(leases)" = 0 ] || fail "leases left: $(leases)"
n=$(grep -c '"POST /v1/chat/completions" model=echo' "$T/serve.$port.log")
[ "$n" = 288 ] || fail "$n access log lines for 288 requests"
# The connection threads end with their connections (the pump's loops stay).
wait_for 10 [ "$(threads)" -le "$base_threads" ] || fail "serve has $(threads) threads after the clients left ($base_threads before)"
echo "ok: no stream got another's tokens; no lease left; $n requests logged; threads back to $(threads)"
