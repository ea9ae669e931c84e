# llmctl serve with curl: routing (name, model value, alias), on-demand start with SSE loading
# comments, streaming and whole answers, OpenAI-form errors, the key, Host and Origin guards,
# and SIGTERM finishing the streams in flight.
. "$TEST_LIB"
mock_config
mock_model m1 --startup-delay 1s
config_add 'aliases = ["gpt-4o-mini"]'
mock_model m2 --tokens-per-second 20
config_add 'model = "upstream-two"'
port=$((PORT_BASE + 50))
start_serve $port
post() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

# GET /v1/models lists both, stopped.
models=$(curl -sf "$SERVE_URL/v1/models")
[ "$(echo "$models" | json_get data.0.id)" = m1 ] || fail "models: $models"
[ "$(echo "$models" | json_get data.0.llmctl.status)" = stopped ] || fail "m1 not stopped: $models"

# A stream for a stopped model (by its alias) starts it: loading comments, then the answer.
curl -sN "$SERVE_URL/v1/chat/completions" -d "$(chat_body gpt-4o-mini 'hello there' true)" >"$T/stream"
grep -q '^: loading m1 ' "$T/stream" || fail "no loading comment: $(head -3 "$T/stream")"
[ "$(sse_text <"$T/stream")" = "hello there" ] || fail "stream: $(cat "$T/stream")"
grep -qx 'data: \[DONE\]' "$T/stream" || fail "no [DONE]"
[ "$(ps_field m1 status)" = running ] || fail "m1 not running after the request"
[ "$(echo "$(curl -sf "$SERVE_URL/v1/models")" | json_get data.0.llmctl.status)" = running ] || fail "models does not say running"

# A whole answer; the upstream sees the model's own name.
[ "$(post "$SERVE_URL/v1/chat/completions" -d "$(chat_body m2 'whole answer')")" = 200 ] || fail "m2: $(cat "$T/body")"
[ "$(json_get choices.0.message.content <"$T/body")" = "whole answer" ] || fail "m2 body: $(cat "$T/body")"
[ "$(json_get model <"$T/body")" = upstream-two ] || fail "the model was not rewritten: $(cat "$T/body")"
# ...also by the model value.
[ "$(post "$SERVE_URL/v1/chat/completions" -d "$(chat_body upstream-two 'by value')")" = 200 ] || fail "by value: $(cat "$T/body")"

# An HTTP/1.0 client gets the stream unchunked (it knows no chunked encoding), ended by the close.
python3 - "$port" "$(chat_body m2 'old client' true)" >"$T/http10" <<'PY'
import socket, sys
body = sys.argv[2].encode()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/chat/completions HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (sys.argv[1].encode(), len(body)) + body)
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.decode())
PY
grep -qi '^transfer-encoding: chunked' "$T/http10" && fail "chunked to an HTTP/1.0 client: $(head -5 "$T/http10")"
[ "$(sed '1,/^\r$/d' "$T/http10" | sse_text)" = "old client" ] || fail "HTTP/1.0 stream: $(cat "$T/http10")"
grep -q 'data: \[DONE\]' "$T/http10" || fail "HTTP/1.0 stream not complete: $(cat "$T/http10")"
grep -qE $'^[0-9a-f]+\r$' "$T/http10" && fail "chunk sizes in an HTTP/1.0 stream: $(cat "$T/http10")"

# Errors, in OpenAI's form.
[ "$(post "$SERVE_URL/v1/chat/completions" -d "$(chat_body m3 x)")" = 404 ] || fail "unknown model: $(cat "$T/body")"
grep -q 'did you mean \\"m1\\"' "$T/body" || fail "no did-you-mean: $(cat "$T/body")"
[ "$(json_get error.code <"$T/body")" = model_not_found ] || fail "404 code: $(cat "$T/body")"
[ "$(post "$SERVE_URL/v1/chat/completions" -d '{"model": "m1", ')" = 400 ] || fail "malformed JSON: $(cat "$T/body")"
[ "$(json_get error.type <"$T/body")" = invalid_request_error ] || fail "400 type: $(cat "$T/body")"
grep -q 'not valid JSON' "$T/body" || fail "malformed JSON, the message: $(cat "$T/body")"
[ "$(post "$SERVE_URL/v1/chat/completions" -d '["m1"]')" = 400 ] || fail "a JSON array: $(cat "$T/body")"
grep -q 'JSON but not an object' "$T/body" || fail "a JSON array, the message: $(cat "$T/body")"
[ "$(post "$SERVE_URL/v1/chat/completions" -d '{"messages": []}')" = 400 ] || fail "no model: $(cat "$T/body")"
# A body nested deeper than 256 is refused, saying so (a million '[' does not overflow a stack).
python3 -c 'print("{\"model\": \"m1\", \"x\": " + "[" * 1000000 + "]" * 1000000 + "}")' >"$T/deep"
[ "$(post "$SERVE_URL/v1/chat/completions" --data-binary @"$T/deep")" = 400 ] || fail "a deep body: $(head -c 300 "$T/body")"
grep -q 'deeper than 256' "$T/body" || fail "the deep body's error does not say why: $(head -c 300 "$T/body")"
[ "$(post "$SERVE_URL/v1/chat/completions")" = 405 ] || fail "GET on chat: $(cat "$T/body")"
[ "$(post "$SERVE_URL/v2/nothing")" = 404 ] || fail "unknown path: $(cat "$T/body")"
head -c $((40 << 20)) /dev/zero | tr '\0' 'a' >"$T/big"
[ "$(post "$SERVE_URL/v1/chat/completions" --data-binary @"$T/big")" = 413 ] || fail "40 MiB body: $(head -c 300 "$T/body")"
# Requests that could not be read (a body over max_body, one that is not HTTP) are logged too,
# with "- -" for their request line.
python3 -c 'import socket,sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5); s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
while s.recv(4096): pass' "$port"
wait_for 5 grep -q '"- -" model=- status=400 .*error="not an HTTP/1.1 request"' "$T/serve.$port.log" ||
  fail "no log line for a request that is not HTTP: $(tail -5 "$T/serve.$port.log")"
grep -q '"- -" model=- status=413 .*error="the request body is over max_body' "$T/serve.$port.log" ||
  fail "no log line for the 40 MiB body: $(tail -5 "$T/serve.$port.log")"
# Another site's page (Origin) and a rebound name (Host) are refused; the gateway's own name is not.
[ "$(post -H 'Origin: http://evil.example' "$SERVE_URL/v1/models")" = 403 ] || fail "foreign origin: $(cat "$T/body")"
[ "$(post -H 'Host: evil.example' "$SERVE_URL/v1/models")" = 403 ] || fail "foreign host: $(cat "$T/body")"
[ "$(post -H "Host: localhost:$port" "$SERVE_URL/v1/models")" = 200 ] || fail "localhost: $(cat "$T/body")"
[ "$(post -H "Host: localhost:1" "$SERVE_URL/v1/models")" = 403 ] || fail "another port: $(cat "$T/body")"

# SIGTERM with 3 streams in flight: they complete, serve exits 0.
for i in 1 2 3; do
  curl -sN "$SERVE_URL/v1/chat/completions" -d "$(chat_body m2 "one two three four five six seven eight $i" true)" >"$T/term.$i" &
done
wait_for 10 grep -q 'data:' "$T/term.1" "$T/term.2" "$T/term.3" || true
wait_for 10 sh -c "[ \$(cat '$T'/term.* | grep -c '^data: {') -ge 3 ]" || fail "the streams did not begin"
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
[ $rc = 0 ] || fail "serve exited $rc after SIGTERM: $(tail -5 "$T/serve.$port.log")"
for i in 1 2 3; do
  [ "$(sse_text <"$T/term.$i")" = "one two three four five six seven eight $i" ] || fail "stream $i cut by SIGTERM: $(cat "$T/term.$i")"
done

# A key: 401 without it or with another, 200 with it; /health needs none.
export SERVE_KEY=sekrit-123
start_serve $port --api-key-env SERVE_KEY
[ "$(post "$SERVE_URL/v1/models")" = 401 ] || fail "no key: $(cat "$T/body")"
[ "$(json_get error.code <"$T/body")" = invalid_api_key ] || fail "401 code: $(cat "$T/body")"
[ "$(post -H 'Authorization: Bearer wrong' "$SERVE_URL/v1/models")" = 401 ] || fail "wrong key: $(cat "$T/body")"
[ "$(post -H 'Authorization: Bearer sekrit-123' "$SERVE_URL/v1/models")" = 200 ] || fail "right key: $(cat "$T/body")"
[ "$(post "$SERVE_URL/health")" = 200 ] || fail "health with a key asked"
! grep -q sekrit "$T/serve.$port.log" || fail "the key was logged"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true

# A browser page of an allowed origin can read every answer: relayed ones (streamed and whole) and
# the gateway's own errors carry Access-Control-Allow-Origin; the preflight says what is allowed.
start_serve $port --cors-origin http://app.example
app() { curl -s -D "$T/head" -o "$T/body" -H 'Origin: http://app.example' "$@"; }
allowed() { tr -d '\r' <"$T/head" | grep -qix 'access-control-allow-origin: http://app.example'; }
app -X OPTIONS -H 'Access-Control-Request-Method: POST' "$SERVE_URL/v1/chat/completions"
allowed && grep -qi '^access-control-allow-methods: .*POST' "$T/head" || fail "preflight: $(cat "$T/head")"
app "$SERVE_URL/v1/chat/completions" -d "$(chat_body m2 'from a page')"
allowed || fail "a whole answer without CORS: $(cat "$T/head")"
app -N "$SERVE_URL/v1/chat/completions" -d "$(chat_body m2 'streamed to a page' true)"
allowed && [ "$(sse_text <"$T/body")" = 'streamed to a page' ] || fail "a stream without CORS: $(cat "$T/head" "$T/body")"
app "$SERVE_URL/v1/chat/completions" -d "$(chat_body nope x)"
allowed && grep -q ' 404' "$T/head" || fail "an error without CORS: $(cat "$T/head")"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true

# Every interface without a key is refused (exit 2); a bad address is a usage error.
expect_rc 2 llmctl serve --listen 0.0.0.0:$port
echo "$ERR" | grep -q 'api-key-env' || fail "no hint: $ERR"
expect_rc 2 llmctl serve --listen nowhere:80
expect_rc 2 llmctl serve --listen 127.0.0.1:99999
echo "serve: ok"
