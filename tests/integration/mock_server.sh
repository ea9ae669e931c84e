# The bundled mock server answers health (503 while loading, then 200), streams a chat, answers
# legacy completions (whole and streamed) and embeddings, logs a stream its client cut short, and
# holds the memory it is told to (--hold-memory: its RSS counts it).
. "$TEST_LIB"
port=$PORT_BASE
"$MOCK_BIN" --port "$port" --startup-delay 300ms >"$T/mock.log" 2>&1 &
probe() { python3 - "$port" "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", timeout=2); print(r.status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print(0)
PY
}
# (A function, so that wait_for probes again on each try; "$(probe …)" would be read once.)
listening() { [ "$(probe /health)" != 0 ]; }
healthy() { [ "$(probe /health)" = 200 ]; }
wait_for 10 listening || fail "mock never listened"
first=$(probe /health)
wait_for 10 healthy || fail "mock never became healthy"
[ "$first" = 503 ] || [ "$first" = 200 ] || fail "health answered $first"
reply=$(python3 - "$port" <<'PY'
import json, sys, urllib.request
body = json.dumps({"messages": [{"role": "user", "content": "hello there world"}], "stream": True}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", body, {"Content-Type": "application/json"})
out = ""
for line in urllib.request.urlopen(req, timeout=5):
    line = line.decode().strip()
    if line.startswith("data: ") and line != "data: [DONE]":
        for c in json.loads(line[6:]).get("choices", []):
            out += c.get("delta", {}).get("content") or ""
print(out)
PY
)
[ "$reply" = "hello there world" ] || fail "reply: '$reply'"
# POST /v1/completions (and /completions): the prompt (the last of an array) echoed as "text".
python3 - "$port" <<'PY' || fail "completions"
import json, sys, urllib.error, urllib.request
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=5)
def check(ok, what):
    if not ok: sys.exit(what)
r = json.load(post("/v1/completions", {"prompt": "hello there world"}))
check(r["object"] == "text_completion" and r["id"].startswith("cmpl-") and r["model"] == "echo" and isinstance(r["created"], int), f"whole: {r}")
check(r["choices"] == [{"index": 0, "text": "hello there world", "finish_reason": "stop", "logprobs": None}], f"whole: {r}")
check(r["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}, f"usage: {r}")
r = json.load(post("/completions", {"prompt": ["first one", "second one"], "max_tokens": 1, "model": "m"}))
check(r["model"] == "m" and r["choices"][0]["text"] == "second " and r["choices"][0]["finish_reason"] == "length", f"array prompt: {r}")
events = [l.decode().strip() for l in post("/v1/completions", {"prompt": "hello there world", "stream": True})]
events = [e[6:] for e in events if e.startswith("data: ")]
check(events[-1] == "[DONE]", f"stream end: {events}")
chunks = [json.loads(e) for e in events[:-1]]
check(all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks), f"chunks: {chunks}")
check([c["choices"] for c in chunks] == [[{"index": 0, "text": t, "finish_reason": None}] for t in ("hello ", "there ", "world")]
      + [[{"index": 0, "text": "", "finish_reason": "stop"}]], f"stream: {chunks}")
try:
    post("/v1/completions", {"stream": True})
    sys.exit("a completion without a prompt was answered")
except urllib.error.HTTPError as e:
    check(e.code == 400 and json.load(e)["error"]["type"] == "invalid_request_error", f"no prompt: {e.code}")
PY
# POST /v1/embeddings (and /embeddings): 8 numbers per input, the same for the same text; a bad
# input is a 400 with OpenAI's error object.
python3 - "$port" <<'PY' || fail "embeddings"
import json, math, sys, urllib.error, urllib.request
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=5)
def check(ok, what):
    if not ok: sys.exit(what)
one = json.load(post("/v1/embeddings", {"input": "hello there"}))
check(one["object"] == "list" and one["model"] == "echo" and one["usage"] == {"prompt_tokens": 2, "total_tokens": 2}, f"one: {one}")
check(len(one["data"]) == 1 and one["data"][0]["object"] == "embedding" and one["data"][0]["index"] == 0, f"one: {one}")
v = one["data"][0]["embedding"]
check(len(v) == 8 and all(isinstance(x, float) for x in v) and abs(math.hypot(*v) - 1) < 1e-9, f"vector: {v}")
two = json.load(post("/embeddings", {"input": ["hello there", "other text"], "model": "m"}))
check(two["model"] == "m" and [d["index"] for d in two["data"]] == [0, 1], f"two: {two}")
check(two["data"][0]["embedding"] == v, f"not deterministic: {two['data'][0]['embedding']} vs {v}")
check(two["data"][1]["embedding"] != v, "two texts, one embedding")
for bad in ({}, {"input": 5}, {"input": []}, {"input": ["a", 1]}):
    try:
        post("/v1/embeddings", bad)
        sys.exit(f"{bad} was answered")
    except urllib.error.HTTPError as e:
        err = json.load(e)
        check(e.code == 400 and set(err) == {"error"} and isinstance(err["error"]["message"], str), f"{bad}: {e.code} {err}")
        check(err["error"]["type"] == "invalid_request_error" and err["error"]["code"] is None, f"{bad}: {err}")
PY
# A client that closes a stream early: the mock logs it once, stops that stream (its access line
# is written when the handler returns), writes its request-log line and serves on.
slow=$((port + 1))
"$MOCK_BIN" --port "$slow" --tokens-per-second 20 --reply-tokens 200 --request-log "$T/requests.log" >"$T/slow.log" 2>&1 &
wait_for 10 grep -q "model loaded" "$T/slow.log" || fail "the slow mock never loaded: $(cat "$T/slow.log")"
python3 - "$slow" <<'PY' || fail "the slow stream"
import socket, sys
body = b'{"prompt": "count", "stream": true}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
seen = b""
while seen.count(b"data: ") < 3:
    data = s.recv(4096)
    if not data: sys.exit("the stream ended early: %r" % seen)
    seen += data
s.close()
PY
closed() { grep -q "^mock: client closed stream early after [0-9]* tokens$" "$T/slow.log"; }
wait_for 10 closed || fail "no early-close line: $(cat "$T/slow.log")"
line=$(grep "client closed stream early" "$T/slow.log")
[ "$(echo "$line" | wc -l)" = 1 ] || fail "early close logged more than once: $line"
n=$(echo "$line" | sed 's/.* after \([0-9]*\) tokens/\1/')
[ "$n" -ge 3 ] && [ "$n" -lt 200 ] || fail "closed after $n tokens: $line"
wait_for 5 grep -q 'request POST /v1/completions 200 .*(client disconnected' "$T/slow.log" || fail "no access line: $(cat "$T/slow.log")"
read -r start end _ stream prompt <"$T/requests.log" || fail "no request-log line"
[ "$stream" = 1 ] && [ "$prompt" = '"count"' ] && [ "$end" -gt "$start" ] || fail "request log: $(cat "$T/requests.log")"
reply=$(python3 - "$slow" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/completions", b'{"prompt": "x", "max_tokens": 1}', {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=5))["choices"][0]["text"])
PY
)
[ "$reply" = "tok0 " ] || fail "after the early close: '$reply'"

held=$((port + 2))
"$MOCK_BIN" --port "$held" --hold-memory 96MiB >"$T/held.log" 2>&1 &
held_pid=$!
wait_for 10 grep -q "listening on" "$T/held.log" || fail "the holding mock never listened: $(cat "$T/held.log")"
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$held_pid/status")
[ "$rss_kib" -ge $((96 * 1024)) ] || fail "holding 96 MiB, RSS ${rss_kib} KiB"
grep -q "^holding 100663296 bytes$" "$T/held.log" || fail "no holding line: $(cat "$T/held.log")"
kill "$held_pid"
rc=0; "$MOCK_BIN" --port "$held" --hold-memory 96X 2>"$T/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q "invalid size '96X'" "$T/bad.err" || fail "a bad size: rc $rc, $(cat "$T/bad.err")"
echo "mock_server: ok"
