# The bundled mock server answers health (503 while loading, then 200), streams a chat, answers
# legacy completions (whole and streamed) and embeddings.
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
echo "mock_server: ok"
