# llmctl serve's streams once their tokens come faster than a thread would be woken for each
# (serve's relay pump): a client that stops reading holds back its model's stream, not serve (its
# memory stays flat, other requests are answered meanwhile) and, once it reads again, gets every
# token in order; a model that stalls, dies mid-stream or outlasts request_timeout ends the stream
# with an SSE error event that says which, and its slot is free again.
. "$TEST_LIB"
port=$((PORT_BASE + 50))
mock_config
mock_model big --reply-tokens 400000 --request-log "$T/big.requests"
config_add 'max_concurrent = 4'
mock_model stall --reply-tokens 50 --stall-after 3
config_add 'stall_timeout = "1s"'
mock_model crash --reply-tokens 50 --crash-mid-stream 5
mock_model slow --reply-tokens 100 --tokens-per-second 5
config_add 'request_timeout = "2s"'
for m in big stall crash slow; do llmctl start "$m" >/dev/null || fail "start $m"; done
start_serve $port
db="$LLMCTL_HOME/state.db"
leases() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM leases").fetchone()[0])' "$db"; }

# A reader that stops: 400,000 tokens (about 60 MB of events) into a client that reads the head,
# then nothing for 3 s, then all of it. Were serve to go on reading the model meanwhile, it would
# buffer megabytes a second.
python3 - "$port" "$SERVE_PID" "$(chat_body big hi true)" "$T/big.requests" >"$T/reader.out" 2>&1 <<'EOF' || fail "slow reader: $(cat "$T/reader.out")"
import json, os, socket, sys, time, urllib.request
port, serve_pid, body, requests_log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def model_answers_ended():  # the mock's own log: a line when an answer's last byte is written
    return len(open(requests_log).readlines()) if os.path.exists(requests_log) else 0
def rss_kib():
    for line in open(f"/proc/{serve_pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
          f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
data = s.recv(4096)
assert data.startswith(b"HTTP/1.1 200"), data[:200]
time.sleep(1)  # not reading: the socket buffers fill, then serve holds back and the model's writes block
before = rss_kib()
time.sleep(2)
during = rss_kib()  # (from a second in: what an allocator keeps of the first second's pieces is not growth)
# The model has not finished: its writes wait for serve, which waits for the client (the socket
# buffers hold some MB of the 60; had serve read on, it would hold the rest and the model be done).
if model_answers_ended() != 0: sys.exit("the model finished its answer while the client read nothing: serve buffered it")
t0 = time.monotonic()  # meanwhile, another request is answered
with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps({"model": "big", "messages": [{"role": "user", "content": "x"}]}).encode(),
        headers={"Content-Type": "application/json"}), timeout=20) as r:
    answer = json.load(r)  # (not streamed: 1.5 MB with a Content-Length)
other_s = time.monotonic() - t0
n = len(answer["choices"][0]["message"]["content"].split())
assert n == 400000, f"the other request's answer has {n} tokens"
s.settimeout(60)
data = bytearray(data)
while not data.endswith(b"0\r\n\r\n"):
    chunk = s.recv(1 << 20)
    if not chunk: break
    data += chunk
data = bytes(data)
def unchunk(raw):
    out, i = bytearray(), 0
    while True:
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j], 16)
        if size == 0: return bytes(out)
        out += raw[j + 2:j + 2 + size]
        assert raw[j + 2 + size:j + 4 + size] == b"\r\n", f"a chunk of {size} bytes not ended by CRLF"
        i = j + 4 + size
text = unchunk(data.split(b"\r\n\r\n", 1)[1])
# Every content delta, in order.
words = []
for line in text.split(b"\n"):
    if line.startswith(b"data: {"):
        for c in json.loads(line[6:]).get("choices", []):
            words.append((c.get("delta") or {}).get("content") or "")
got = "".join(words).split()
want = [f"tok{i}" for i in range(400000)]
if got != want:
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    sys.exit(f"{len(got)} tokens, first difference at {first}: {got[first:first + 3]} vs {want[first:first + 3]}")
assert b"data: [DONE]" in text, "no [DONE]"
grew = (during - before) / 1024
print(f"400000 tokens in order; serve's RSS grew {grew:.1f} MiB while the client did not read; another request took {other_s:.2f} s")
if grew > 16: sys.exit(f"serve's RSS grew {grew:.1f} MiB while its client did not read (it should hold back, not buffer)")
if other_s > 10: sys.exit(f"another request took {other_s:.1f} s while a client did not read")
EOF
cat "$T/reader.out"

# stream MODEL: a streaming chat through serve into $T/MODEL.out; the seconds it took in $T/MODEL.s.
stream() {
  local t0=$SECONDS
  curl -sN -m 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body "$1" hi true)" >"$T/$1.out" || fail "$1: curl exit $?"
  echo $((SECONDS - t0)) >"$T/$1.s"
}
# error_event MODEL TEXT: the stream ended with an OpenAI error event whose message has TEXT.
error_event() {
  grep '^data: {"error"' "$T/$1.out" | grep -q "$2" || fail "$1: no error event with '$2': $(tail -c 600 "$T/$1.out")"
  ! grep -q '^data: \[DONE\]' "$T/$1.out" || fail "$1: [DONE] after a failure"
}

stream stall
error_event stall 'stalled'
grep -q 'tok2' "$T/stall.out" || fail "stall: the tokens before the stall are missing: $(head -c 600 "$T/stall.out")"
[ "$(cat "$T/stall.s")" -le 10 ] || fail "stall: the stream took $(cat "$T/stall.s") s to end (stall_timeout 1s)"

stream crash
error_event crash 'closed the connection mid-answer'
grep -q 'tok4' "$T/crash.out" || fail "crash: the tokens before the crash are missing: $(head -c 600 "$T/crash.out")"

stream slow
error_event slow 'total timeout'
[ "$(cat "$T/slow.s")" -le 10 ] || fail "slow: the stream took $(cat "$T/slow.s") s to end (request_timeout 2s)"

# Each failure is in the access log, and no slot is left taken.
for m in stall crash slow; do
  grep -q "model=$m status=200 .*error=" "$T/serve.$port.log" || fail "$m: no access log line with the error: $(cat "$T/serve.$port.log")"
done
wait_for 10 [ "$(leases)" = 0 ] || fail "leases left after the streams: $(leases)"
echo "ok: stalled, crashed and timed-out streams each ended with their error event; no lease left"
