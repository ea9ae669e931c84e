# https:// urls (issue 21): chat, serve and exec reach TLS mock servers through llmctl-tls, with
# certificates this test makes with the openssl command (a CA, server certificates for the right
# name, the wrong name and an expired one, a client certificate). Each refusal gives the message
# llmctl.toml(5) documents, and no command that never uses TLS maps a TLS library.
. "$TEST_LIB"
command -v openssl >/dev/null || fail "the openssl command is missing (make deps installs it)"
pki=$T/pki
mkdir -p "$pki"
cd "$pki"
# key NAME: a P-256 key (fast to make).
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.pem -days 3 -subj "/CN=llmctl test CA" 2>/dev/null
# cert NAME SUBJECT_ALT_NAME [EXTENDED_KEY_USAGE]: NAME.pem signed by the CA.
cert() {
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "${3:-serverAuth}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 3 -extfile "$1.ext" 2>/dev/null
}
cert good "DNS:localhost,IP:127.0.0.1,IP:::1"
cert wrong "DNS:other.example"
cert client "DNS:client" clientAuth
# An expired certificate (openssl ca takes explicit dates; x509 -req does not).
key expired
openssl req -new -key expired.key -out expired.csr -subj "/CN=expired" 2>/dev/null
touch index.txt
printf '1000\n' >serial
cat >ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = $pki/index.txt
serial = $pki/serial
new_certs_dir = $pki
default_md = sha256
policy = any
x509_extensions = ext
[any]
commonName = supplied
[ext]
subjectAltName = DNS:localhost,IP:127.0.0.1
EOF
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1 || fail "openssl ca could not make the expired certificate"
cd - >/dev/null

# tls_mock NAME PORT CERT [ARG...]: a TLS mock server (a "remote" server: a job of the test).
tls_mock() {
  local name=$1 port=$2 cert=$3; shift 3
  "$MOCK_BIN" --port "$port" --tls-cert "$pki/$cert.pem" --tls-key "$pki/$cert.key" --model-name "$name" \
    --request-log "$T/$name.requests" "$@" >"$T/$name.log" 2>&1 &
  wait_for 10 grep -q "listening on https://" "$T/$name.log" || fail "TLS mock $name never listened: $(cat "$T/$name.log")"
}
p=$((PORT_BASE + 30))
tls_mock good $p good --tokens-per-second 50 --reply-tokens 10
tls_mock wrong $((p + 1)) wrong
tls_mock expired $((p + 2)) expired
tls_mock mtls $((p + 3)) good --tls-client-ca "$pki/ca.pem"
tls_mock slow $((p + 4)) good --tokens-per-second 5 --reply-tokens 40
tls_mock limited $((p + 5)) good --rate-limit-once "$T/rate-limit" --reply-tokens 10
tls_mock cut $((p + 6)) good --crash-mid-stream 3 --tokens-per-second 50 --reply-tokens 10
full="$(seq -s ' ' -f 'tok%g' 0 9)"

mock_config
mock_model plain --tokens-per-second 5 --reply-tokens 40
config_add <<EOF
[models.good]
url = "https://localhost:$p"
ca_file = "$pki/ca.pem"
api_key_env = "TLS_TEST_KEY"
[models.nocafile]
url = "https://localhost:$p"
model = "good"
[models.wronghost]
url = "https://localhost:$((p + 1))"
ca_file = "$pki/ca.pem"
[models.byip]
url = "https://127.0.0.1:$((p + 1))"
ca_file = "$pki/ca.pem"
[models.expired]
url = "https://localhost:$((p + 2))"
ca_file = "$pki/ca.pem"
[models.nocert]
url = "https://127.0.0.1:$((p + 3))"
ca_file = "$pki/ca.pem"
model = "mtls"
[models.mtls]
url = "https://127.0.0.1:$((p + 3))"
ca_file = "$pki/ca.pem"
client_cert = "$pki/client.pem"
client_key = "$pki/client.key"
[models.unverified]
url = "https://localhost:$((p + 1))"
tls_verify = false
model = "wrong"
[models.slow]
url = "https://localhost:$((p + 4))"
ca_file = "$pki/ca.pem"
[models.limited]
url = "https://localhost:$((p + 5))"
ca_file = "$pki/ca.pem"
[models.limitedshort]
url = "https://localhost:$((p + 5))"
ca_file = "$pki/ca.pem"
model = "limited"
request_timeout = "1s"
[models.cut]
url = "https://localhost:$((p + 6))"
ca_file = "$pki/ca.pem"
[models.closed]
url = "https://127.0.0.1:$((p + 9))"
ca_file = "$pki/ca.pem"
[models.mute]
url = "https://127.0.0.1:$((p + 7))"
ca_file = "$pki/ca.pem"
connect_timeout = "1s"
[models.mutenolimit]
url = "https://127.0.0.1:$((p + 7))"
ca_file = "$pki/ca.pem"
connect_timeout = "0"
EOF
export TLS_TEST_KEY=sk-provider-secret-4242
expect_rc 0 llmctl config check
# config check reads an https model's files: one it cannot read is named, with its model.
cp "$LLMCTL_CONFIG" "$T/all.toml"
config_add '[models.typo]' 'url = "https://localhost:1"' 'ca_file = "certs/nosuch.pem"'
expect_rc 3 llmctl config check
echo "$ERR" | grep -q "\"ca_file\" of model \"typo\": $T/certs/nosuch.pem: No such file or directory" || fail "config check, a missing ca_file: $ERR"
cp "$T/all.toml" "$LLMCTL_CONFIG"

# 1. chat streams over TLS with the CA from ca_file (and sends the model's key).
expect_rc 0 llmctl chat good "over tls"
[ "$OUT" = "$full" ] || fail "chat over TLS: $OUT / $ERR"
expect_rc 0 llmctl chat mtls "with a client certificate"
[ -n "$OUT" ] || fail "chat with mTLS answered nothing: $ERR"

# Each refusal: exit 1 and a message a person can act on.
expect_rc 1 llmctl chat nocafile "hi"
echo "$ERR" | grep -q "certificate verify failed" && echo "$ERR" | grep -q "ca_file" || fail "unknown CA: $ERR"
expect_rc 1 llmctl chat wronghost "hi"
echo "$ERR" | grep -q "certificate verify failed: the server's certificate is for other.example, not localhost" || fail "host mismatch: $ERR"
expect_rc 1 llmctl chat byip "hi"
echo "$ERR" | grep -q "is for other.example, not 127.0.0.1" || fail "IP mismatch: $ERR"
expect_rc 1 llmctl chat expired "hi"
echo "$ERR" | grep -q "expired on 2020-01-02 00:00:00 UTC" || fail "expired: $ERR"
expect_rc 1 llmctl chat nocert "hi"
echo "$ERR" | grep -q "requires a client certificate" && echo "$ERR" | grep -q "client_cert" || fail "mTLS without a certificate: $ERR"
expect_rc 5 llmctl chat closed "hi"
echo "$ERR" | grep -q "cannot connect to 127.0.0.1:$((p + 9))" || fail "nothing listening: $ERR"
# A port that accepts and never shakes hands (a listening socket nobody accepts from): the
# timeout ends the chat (6); with no limit, a chat killed while its helper waits ends the helper.
python3 -c "import socket,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $((p + 7)))); s.listen(64); print('listening', flush=True); time.sleep(900)" >"$T/mute.out" 2>&1 &
mute=$!
wait_for 10 grep -q listening "$T/mute.out" || fail "the mute listener did not start: $(cat "$T/mute.out")"
expect_rc 6 llmctl chat mute "hi"
echo "$ERR" | grep -q "no TLS connection to 127.0.0.1:$((p + 7)) within 1s (connect_timeout)" || fail "a handshake that never comes: $ERR"
# helper_of PID: the pid of chat PID's llmctl-tls, if it runs.
helper_of() {
  local d
  for d in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -q "llmctl-tls --for $1 "; then echo "${d#/proc/}"; fi
  done
}
"$LLMCTL_BIN" chat mutenolimit "hi" >/dev/null 2>&1 &
mute_chat=$!
wait_for 10 eval '[ -n "$(helper_of $mute_chat)" ]' || fail "no llmctl-tls for the chat $mute_chat"
mute_helper=$(helper_of $mute_chat)
kill -KILL $mute_chat
wait $mute_chat || true
wait_for 10 eval '! alive $mute_helper' || fail "llmctl-tls $mute_helper outlived its chat (killed) while the handshake waited"
kill $mute
wait $mute || true
# tls_verify = false: it works, and says what it skips, every time.
expect_rc 0 llmctl chat unverified "hi"
echo "$ERR" | grep -q 'warning: model "unverified" has tls_verify = false' || fail "tls_verify = false gave no warning: $ERR"

# 6. exec on an https model: CMD gets the url and the key, and reaches the TLS mock.
expect_rc 0 llmctl exec good -- sh -c 'echo "$LLMCTL_URL $OPENAI_API_KEY"; curl -sf --cacert "$1" "$OPENAI_BASE_URL/models"' sh "$pki/ca.pem"
echo "$OUT" | head -1 | grep -qx "https://localhost:$p sk-provider-secret-4242" || fail "exec's environment: $OUT"
echo "$OUT" | grep -q '"id":"good"' || fail "exec's command did not reach the TLS mock: $OUT / $ERR"

# 2. No TLS library where TLS is not used; the https chat's helper maps it.
tls_mapped() { grep -qE 'libssl|libcrypto' "/proc/$1/maps"; }
llmctl start plain -q
"$LLMCTL_BIN" logs -f plain >/dev/null 2>&1 & # (the binary itself: $! is its pid)
logs_pid=$!
"$LLMCTL_BIN" chat plain "a slow stream" >"$T/plain.out" 2>&1 &
plain_chat=$!
wait_for 20 test -s "$T/plain.out" || fail "the http chat never streamed"
alive $logs_pid && alive $plain_chat || fail "logs -f or the chat ended early"
! tls_mapped $logs_pid || fail "logs -f maps a TLS library"
! tls_mapped $plain_chat || fail "chat on an http model maps a TLS library"
"$LLMCTL_BIN" chat slow "a slow stream" >"$T/slow.out" 2>&1 &
slow_chat=$!
wait_for 20 test -s "$T/slow.out" || fail "the https chat never streamed: $(cat "$T/slow.out")"
helper=$(helper_of $slow_chat)
[ -n "$helper" ] || fail "no llmctl-tls for the https chat $slow_chat"
tls_mapped "$helper" || fail "the https chat's llmctl-tls maps no TLS library"
! tls_mapped $slow_chat || fail "chat on an https model maps a TLS library itself (its helper should)"
kill -INT $slow_chat
rc=0; wait $slow_chat || rc=$?
[ $rc = 130 ] || fail "chat on an https model after Ctrl-C exited $rc: $(cat "$T/slow.out")"
wait_for 10 eval '! alive $helper' || fail "llmctl-tls $helper outlived its chat"
wait $plain_chat || fail "the http chat failed: $(cat "$T/plain.out")"

# serve with only http models maps no TLS library; with https ones, the same messages as a 502.
cp "$LLMCTL_CONFIG" "$T/all.toml"
mock_config
mock_model plain
start_serve $((p + 10))
expect_rc 0 curl -sf "$SERVE_URL/v1/chat/completions" -d "$(chat_body plain hi)"
! tls_mapped $SERVE_PID || fail "serve with only http models maps a TLS library"
kill -TERM $SERVE_PID
wait $SERVE_PID || true
cp "$T/all.toml" "$LLMCTL_CONFIG"
start_serve $((p + 11))
curl -sN --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body good "through serve" true)" >"$T/serve.stream"
[ "$(sse_text <"$T/serve.stream")" = "$full" ] || fail "serve's stream over TLS: $(cat "$T/serve.stream")"
code=$(curl -s -o "$T/serve.err" -w '%{http_code}' --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body nocafile hi)")
[ "$code" = 502 ] && grep -q "certificate verify failed" "$T/serve.err" || fail "serve, unknown CA: HTTP $code: $(cat "$T/serve.err")"
code=$(curl -s -o "$T/serve.err" -w '%{http_code}' --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body wronghost hi)")
[ "$code" = 502 ] && grep -q "is for other.example, not localhost" "$T/serve.err" || fail "serve, host mismatch: HTTP $code: $(cat "$T/serve.err")"
grep -q 'warning: model "unverified" has tls_verify = false' "$T/serve.$((p + 11)).log" || fail "serve gave no tls_verify warning"
# 5. A provider's 429 with Retry-After: 1, then 200: the client gets the 200 (the provider saw
# both); one that fails mid-stream: the client gets the error, and it is not sent again.
touch "$T/rate-limit"
code=$(curl -s -o "$T/limited.out" -w '%{http_code}' --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body limited "again")")
[ "$code" = 200 ] && [ "$(json_get choices.0.message.content <"$T/limited.out")" = "$full" ] || fail "after a 429: HTTP $code: $(cat "$T/limited.out")"
[ ! -e "$T/rate-limit" ] && [ "$(wc -l <"$T/limited.requests")" = 2 ] || fail "the provider did not see the 429'd request and its retry: $(cat "$T/limited.requests")"
# A Retry-After longer than what is left of request_timeout: the 429 goes to the client at once.
touch "$T/rate-limit"
code=$(curl -s -D "$T/limited.head" -o "$T/limited.out" -w '%{http_code}' --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body limitedshort "no time")")
[ "$code" = 429 ] && grep -qi '^retry-after: 1' "$T/limited.head" || fail "a 429 with no time left for its Retry-After: HTTP $code: $(cat "$T/limited.head" "$T/limited.out")"
[ "$(wc -l <"$T/limited.requests")" = 3 ] || fail "a 429 with no time left was sent again: $(cat "$T/limited.requests")"
curl -sN --max-time 30 "$SERVE_URL/v1/chat/completions" -d "$(chat_body cut "cut short" true)" >"$T/cut.stream" || true
grep -q '"error"' "$T/cut.stream" && grep -q 'tok1' "$T/cut.stream" || fail "a stream cut mid-way: $(cat "$T/cut.stream")"
echo "tls: ok"
