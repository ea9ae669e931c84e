# The bundled mock server answers health (503 while loading, then 200) and streams a chat.
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
echo "mock_server: ok"
