# llmctl serve with a real third-party client: the official `openai` package for Node (installed
# into the build dir by tests/tools/npm-install.sh) streams a chat completion (from a stopped
# model, so the stream begins with serve's loading comments), gets a whole one, lists the models,
# creates embeddings and legacy completions (tests/integration/openai_client.mjs); curl -N sees a
# paced stream piece by piece; with --api-key-env a wrong key raises the client's
# AuthenticationError (401) and the right key works.
. "$TEST_LIB"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BUILD_DIR:?the build dir, where the npm prefix lives}"
prefix=$(bash "$here/../tools/npm-install.sh" "$BUILD_DIR") || fail "could not install the openai package (see above)"
export OPENAI_PKG="$prefix/node_modules/openai"

mock_config
mock_model m1 --startup-delay 2s --tokens-per-second 20
mock_model e1
config_add 'model = "text-embedding-mock"'
mock_model p1 --reply-tokens 30 --tokens-per-second 10
port=$((PORT_BASE + 50))
start_serve $port
export SERVE_URL CHAT_MODEL=m1 EMBED_MODEL=e1 EXPECT_MODELS=m1,e1,p1
# m1 streams the client's 8 words at 20 a second: 350 ms from its first delta to its last
# (buffered: a few ms).
export MIN_STREAM_MS=150
# client MODE: openai_client.mjs, its report in $T/client.MODE.N; fails unless every check held.
runs=0
client() {
  runs=$((runs + 1))
  local out="$T/client.$1.$runs" rc=0
  node "$here/openai_client.mjs" "$1" >"$out" 2>&1 || rc=$?
  [ $rc -eq 0 ] || fail "openai client ($1, key ${CLIENT_KEY:-none}) exited $rc:
$(cat "$out")
serve's log: $(tail -20 "$T/serve.$port.log")"
  [ "$(grep -c '^ok: ' "$out")" -ge 4 ] || fail "the client ran too few checks: $(cat "$out")"
}

# Every call through the official client, the first one starting the stopped m1.
[ "$(ps_field m1 status)" != running ] || fail "m1 is running before the first request"
client all
[ "$(ps_field m1 status)" = running ] || fail "m1 not running after the client's requests"
[ "$(ps_field e1 status)" = running ] || fail "e1 not running after the client's embeddings"
# serve saw the client's requests (its access log), each answered 200.
for route in chat/completions completions embeddings models; do
  grep -q "\"[A-Z]* /v1/$route\" .*status=200" "$T/serve.$port.log" || fail "no 200 for /v1/$route in serve's log: $(cat "$T/serve.$port.log")"
done
! grep -q 'status=[45]' "$T/serve.$port.log" || fail "serve answered an error: $(grep 'status=[45]' "$T/serve.$port.log")"

# curl -N: a paced stream (30 tokens at 10 a second) reaches curl piece by piece: the first token
# is there while the last is still 3 s away.
curl -sN "$SERVE_URL/v1/chat/completions" -d "$(chat_body p1 'anything' true)" >"$T/curl.stream" &
curl_pid=$!
wait_for 30 grep -q '"tok0 *"' "$T/curl.stream" || fail "curl -N saw no first token: $(cat "$T/curl.stream")"
! grep -q 'tok29' "$T/curl.stream" || fail "the whole stream arrived at once: $(cat "$T/curl.stream")"
! grep -qx 'data: \[DONE\]' "$T/curl.stream" || fail "[DONE] with the first token"
wait "$curl_pid" || fail "curl -N exited $?"
want=$(for i in $(seq 0 29); do printf 'tok%d ' "$i"; done)
[ "$(sse_text <"$T/curl.stream")" = "${want% }" ] || fail "curl -N stream: $(cat "$T/curl.stream")"
grep -qx 'data: \[DONE\]' "$T/curl.stream" || fail "curl -N: no [DONE]"
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
[ $rc = 0 ] || fail "serve exited $rc after SIGTERM: $(tail -5 "$T/serve.$port.log")"

# With a key: no key, or a wrong one, raises AuthenticationError (401); the right one works.
export SERVE_KEY=sekrit-openai-7
port=$((PORT_BASE + 51))
start_serve $port --api-key-env SERVE_KEY
CLIENT_KEY=none client unauthorized
CLIENT_KEY=wrong-key client unauthorized
[ "$(grep -c 'status=401' "$T/serve.$port.log")" -ge 8 ] || fail "serve did not log the 401s: $(cat "$T/serve.$port.log")"
CLIENT_KEY=$SERVE_KEY client all
! grep -q sekrit "$T/serve.$port.log" || fail "the key was logged"
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
[ $rc = 0 ] || fail "serve (with a key) exited $rc after SIGTERM: $(tail -5 "$T/serve.$port.log")"
echo "serve_openai: ok"
