# The local multi-user threat model (docs/SECURITY.md), point by point: private modes, a
# tampered or foreign state dir refused, symlinks planted for the state file and logs not
# followed, API keys sent but never stored or printed, and reap never signalling another
# user's process even when it carries our markers.
. "$TEST_LIB"
mock_config
mock_model a
config_add <<EOT
[models.ext]
url = "http://127.0.0.1:$((PORT_BASE + 30))"
api_key_env = "EXT_SECRET_KEY"
EOT
mode() { stat -c %a "$1"; }

# 1. Modes: the state dir 700, its files 600.
llmctl start a -q >/dev/null
[ "$(mode "$LLMCTL_HOME")" = 700 ] || fail "state dir mode $(mode "$LLMCTL_HOME")"
[ "$(mode "$LLMCTL_HOME/logs")" = 700 ] || fail "logs dir mode $(mode "$LLMCTL_HOME/logs")"
for f in state.db state.lock logs/a.log; do [ "$(mode "$LLMCTL_HOME/$f")" = 600 ] || fail "$f mode $(mode "$LLMCTL_HOME/$f")"; done
llmctl stop a -q

# 2. A state dir others may write is refused, untouched.
chmod 770 "$LLMCTL_HOME"
expect_rc 1 llmctl start a
echo "$ERR" | grep -q "is writable by group or others (mode 770)" || fail "group-writable state dir: $ERR"
[ -z "$(marked)" ] || fail "started a server in a group-writable state dir"
chmod 700 "$LLMCTL_HOME"

# 3. Symlinks planted where the log and the state file go are not followed.
echo precious >"$T/victim"
rm -f "$LLMCTL_HOME/logs/a.log"
ln -s "$T/victim" "$LLMCTL_HOME/logs/a.log"
expect_rc 1 llmctl start a
echo "$ERR" | grep -q "a.log" || fail "symlinked log: $ERR"
[ "$(cat "$T/victim")" = precious ] || fail "the log symlink was followed"
[ -z "$(marked)" ] || fail "a server started with a symlinked log"
rm "$LLMCTL_HOME/logs/a.log"
mv "$LLMCTL_HOME/state.db" "$T/real.db"; rm -f "$LLMCTL_HOME"/state.db-*
ln -s "$T/victim" "$LLMCTL_HOME/state.db"
expect_rc 1 llmctl start a
[ "$(cat "$T/victim")" = precious ] || fail "the state file symlink was followed"
rm "$LLMCTL_HOME/state.db"

# 4. An API key is sent as a Bearer token and appears nowhere else.
python3 - "$((PORT_BASE + 30))" "$T/headers" <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        open(sys.argv[2], "a").write(self.headers.get("Authorization", "") + "\n")
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
wait_for 10 port_open $((PORT_BASE + 30)) || fail "nothing listens on $((PORT_BASE + 30))"
key="sk-test-$RANDOM$RANDOM-do-not-leak"
EXT_SECRET_KEY=$key expect_rc 0 llmctl -v chat ext --no-stream --session s "hello"
[ "$OUT" = ok ] || fail "external chat: $OUT"
grep -qx "Bearer $key" "$T/headers" || fail "the key was not sent as a Bearer token: $(cat "$T/headers")"
[[ "$OUT$ERR" != *"$key"* ]] || fail "the key was printed"
EXT_SECRET_KEY=$key llmctl config show --json >"$T/show" 2>&1
EXT_SECRET_KEY=$key llmctl ps --json >>"$T/show" 2>&1
! grep -q "$key" "$T/show" || fail "the key appears in config show or ps"
! grep -rqa "$key" "$LLMCTL_HOME" || fail "the key was stored under the state dir: $(grep -rla "$key" "$LLMCTL_HOME")"

# 5. reap signals only processes of this user: another user's process carrying our markers
#    exactly (as a forged orphan would) is left alone.
setpriv --reuid=nobody --regid=nogroup --clear-groups \
  env LLMCTL_HOME="$LLMCTL_HOME" LLMCTL_INSTANCE=forged LLMCTL_NAME=a sleep 300 &
forged=$!
wait_for 10 grep -qz '^LLMCTL_INSTANCE=forged' /proc/$forged/environ
expect_rc 0 llmctl reap
kill -0 $forged || fail "reap signalled another user's process"
[ -z "$OUT" ] || fail "reap acted on another user's process: $OUT"
kill $forged
# 6. A hosted provider over HTTPS through serve (issue 21): serve sends the provider's key and
# the model's headers, never the key clients send it; clients without serve's key get 401; the
# provider's key is in no answer, no log and no file of the state dir.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/prov.key" -out "$T/prov.pem" -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" 2>/dev/null || fail "openssl could not make a certificate"
python3 - "$((PORT_BASE + 31))" "$T/prov.headers" "$T/prov.pem" "$T/prov.key" <<'PY' &
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        open(sys.argv[2], "a").write("%s|%s\n" % (self.headers.get("Authorization", ""), self.headers.get("X-Title", "")))
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
wait_for 10 port_open $((PORT_BASE + 31)) || fail "the HTTPS provider never listened"
config_add <<EOT
[serve]
api_key_env = "GATEWAY_KEY"
[models.provider]
url = "https://localhost:$((PORT_BASE + 31))"
ca_file = "$T/prov.pem"
api_key_env = "PROVIDER_KEY"
headers = { X-Title = "llmctl test" }
EOT
pkey="sk-provider-$RANDOM$RANDOM-do-not-leak"
gkey="gw-$RANDOM$RANDOM"
PROVIDER_KEY=$pkey GATEWAY_KEY=$gkey "$LLMCTL_BIN" serve --listen "127.0.0.1:$((PORT_BASE + 32))" 2>"$T/serve.log" &
serve=$!
gw="http://127.0.0.1:$((PORT_BASE + 32))"
wait_for 20 curl -sf -o /dev/null "$gw/health" || fail "serve never answered: $(cat "$T/serve.log")"
code=$(curl -s -o "$T/noauth" -w '%{http_code}' "$gw/v1/chat/completions" -d '{"model":"provider","messages":[{"role":"user","content":"hi"}]}')
[ "$code" = 401 ] || fail "a client without serve's key got HTTP $code: $(cat "$T/noauth")"
code=$(curl -s -D "$T/answer.head" -o "$T/answer" -w '%{http_code}' -H "Authorization: Bearer $gkey" "$gw/v1/chat/completions" \
  -d '{"model":"provider","messages":[{"role":"user","content":"hi"}]}')
[ "$code" = 200 ] && grep -q '"ok"' "$T/answer" || fail "through serve: HTTP $code: $(cat "$T/answer")"
grep -qx "Bearer $pkey|llmctl test" "$T/prov.headers" || fail "the provider got: $(cat "$T/prov.headers")"
! grep -q "$gkey" "$T/prov.headers" || fail "serve sent its clients' key to the provider"
kill -TERM $serve
wait $serve || true
! grep -qa "$pkey" "$T/answer" "$T/answer.head" "$T/noauth" "$T/serve.log" || fail "the provider's key reached a client or serve's log"
! grep -rqa "$pkey" "$LLMCTL_HOME" || fail "the provider's key was stored under the state dir"
echo "security: ok"
