# serve's quick way (a running model, a free slot: the request never leaves its event loop):
# requests pipelined on one connection, and a next request sent before its answer was read, get
# their answers whole and in order; a slot handed on from one request to the next (a spare) goes
# back to the state file's queue within its bound, so that a chat of another process waiting for a
# max_concurrent = 1 model gets its turn while serve's clients keep asking; once they stop, no
# lease is left; a client's next request is answered after its model server was restarted; long
# streams that move to the loop that gathers them, and their connections' next requests, are
# answered whole.
. "$TEST_LIB"
# leases [WHAT]: the lease rows of the state file (count, or WHAT of each).
leases() { python3 -c 'import sqlite3,sys; print("\n".join("|".join(map(str, r)) for r in sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True).execute("SELECT %s FROM leases" % sys.argv[2])))' "$LLMCTL_HOME/state.db" "${1:-count(*)}"; }
port=$((PORT_BASE + 50))
mock_config
mock_model echo --request-log "$T/requests.log"
config_add 'max_concurrent = 1'
mock_model long --tokens-per-second 5000
llmctl start echo >/dev/null || fail "start echo"
llmctl start long >/dev/null || fail "start long"
start_serve $port

# Pipelined: five requests in one write, then the answers, read in order off the one connection.
python3 - "$port" >"$T/pipelined.out" 2>&1 <<'EOF' || fail "pipelined requests: $(cat "$T/pipelined.out")"
import json, socket, sys

def read_answer(f):
    """One HTTP/1.1 answer off the file: its status and body (Content-Length or chunked)."""
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        return status, f.read(int(headers["content-length"]))
    body = b""
    while True:
        size = int(f.readline().strip(), 16)
        if size == 0:
            f.readline()
            return status, body
        body += f.read(size)
        f.readline()

def request(i):
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "pipelined %d a b" % i}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"".join(request(i) for i in range(5)))
f = s.makefile("rb")
for i in range(5):
    status, body = read_answer(f)
    text = json.loads(body)["choices"][0]["message"]["content"]
    if status != 200 or not text.startswith("pipelined %d" % i):
        sys.exit("answer %d: %d %r" % (i, status, body))
# The next request sent before the last answer was read, on the same connection.
s.sendall(request(5))
s.sendall(request(6))
for i in (5, 6):
    status, body = read_answer(f)
    if status != 200 or not json.loads(body)["choices"][0]["message"]["content"].startswith("pipelined %d" % i):
        sys.exit("answer %d: %d %r" % (i, status, body))
print("ok")
EOF

# Four clients keep asking through serve (each its next request once its answer came) while a chat
# of this test's own process waits for the one slot: it gets it. Meanwhile serve's connections to
# the model's server are counted: however many clients, at most twice its slots' worth (one kept
# by a client's connection, one in the pool).
echo_port=$(llmctl ps --json | json_get 0.port)
python3 - "$port" "$SERVE_PID" "$echo_port" >"$T/load.out" 2>&1 <<'EOF' &
import http.client, json, os, sys, threading, time
port, serve_pid, echo_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
most = 0
def upstream_connections():
    """serve's sockets connected to the model's server (its descriptors' inodes in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{serve_pid}/fd"):
        try:
            link = os.readlink(f"/proc/{serve_pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if int(f[2].split(":")[1], 16) == echo_port and f[3] == "01" and f[9] in inodes:
            n += 1
    return n
counts = [0] * 4
errors = []
stop = time.time() + 6
def client(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < stop:
        c.request("POST", "/v1/chat/completions", json.dumps({"model": "echo", "messages": [{"role": "user", "content": "load %d" % k}]}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            errors.append((r.status, body[:200]))
        counts[k] += 1
threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in threads: t.start()
while time.time() < stop:
    most = max(most, upstream_connections())
    time.sleep(0.02)
for t in threads: t.join()
print("requests", sum(counts), "errors", len(errors), errors[:3], "upstream_connections", most)
EOF
load=$!
wait_for 10 eval '[ "$(grep -c "load " "$T/requests.log" 2>/dev/null)" -ge 20 ]' || fail "the load never got going: $(cat "$T/load.out")"
t0=$(date +%s%N)
timeout 20 "$LLMCTL_BIN" chat echo "the chat waits its turn" >"$T/chat.out" 2>"$T/chat.err" || fail "the chat failed: $(cat "$T/chat.err")"
waited_ms=$((($(date +%s%N) - t0) / 1000000))
grep -q 'the chat waits' "$T/chat.out" || fail "the chat got no answer: $(cat "$T/chat.out")"
wait "$load" || fail "the load failed: $(cat "$T/load.out")"
grep -q 'errors 0 ' "$T/load.out" || fail "serve's clients got errors: $(cat "$T/load.out")"
most=$(grep -o 'upstream_connections [0-9]*' "$T/load.out" | cut -d' ' -f2)
[ -n "$most" ] && [ "$most" -ge 1 ] && [ "$most" -le 2 ] ||
  fail "serve held ${most:-?} connections to a max_concurrent = 1 model's server (at most 2): $(cat "$T/load.out")"
# The chat came in while the load ran (the load ran 6 s; the chat took less than half of it).
[ "$waited_ms" -lt 3000 ] || fail "the chat waited $waited_ms ms for its turn under serve's load"
# One at a time at the model, whoever asked.
[ "$(max_overlap "$T/requests.log")" = 1 ] || fail "requests overlapped under max_concurrent = 1"
wait_for 5 eval '[ "$(leases)" = 0 ]' || fail "leases left after the clients stopped: $(leases '*')"
# A client's connection keeps its model server's connection from one request to the next: when
# the server goes away meanwhile (a restart), the next request on the same client connection is
# still answered (by the new server), and so is one after a second idle (the kept connection
# went back to the pool).
python3 - "$port" "$LLMCTL_BIN" >"$T/kept.out" 2>&1 <<'EOF' || fail "a request after a restart of its server: $(cat "$T/kept.out")"
import http.client, json, subprocess, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
def ask(text):
    c.request("POST", "/v1/chat/completions", json.dumps({"model": "echo", "messages": [{"role": "user", "content": text}]}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or text not in json.loads(body)["choices"][0]["message"]["content"]:
        sys.exit("%s: %d %r" % (text, r.status, body[:300]))
ask("before the restart")
subprocess.run([sys.argv[2], "restart", "echo"], check=True, stdout=subprocess.DEVNULL)
ask("after the restart")
ask("at once again")
time.sleep(1.5)
ask("after a second idle")
print("ok")
EOF
# A long stream goes on on the loop that gathers streams, and its connection comes home for its
# next request (relay_pump.hpp): on connections spread over the loops, a long stream, a small
# request and a long stream again, each answered whole.
python3 - "$port" >"$T/gather.out" 2>&1 <<'EOF' || fail "long streams moved between loops: $(cat "$T/gather.out")"
import http.client, json, os, sys
conns = [http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30) for _ in range(2 * (os.cpu_count() or 1))]
def ask(c, text, stream):
    c.request("POST", "/v1/chat/completions", json.dumps({"model": "long", "stream": stream, "messages": [{"role": "user", "content": text}]}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read().decode()
    if stream:
        chunks = [json.loads(l[6:]) for l in body.splitlines() if l.startswith("data: {")]
        got = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    else:
        got = json.loads(body)["choices"][0]["message"]["content"]
    if r.status != 200 or got.split() != text.split():
        sys.exit("%s: %d, %d words of %d back" % ("stream" if stream else "request", r.status, len(got.split()), len(text.split())))
for i, c in enumerate(conns):
    words = " ".join("w%d.%d" % (i, k) for k in range(400))
    ask(c, words, True)
    ask(c, "small %d" % i, False)
    ask(c, words, True)
print("ok")
EOF
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "serve did not exit 0"
echo "serve_quick: ok ($(grep -o 'requests [0-9]*' "$T/load.out") through serve meanwhile, at most $most connections to the model; the chat waited $waited_ms ms)"
