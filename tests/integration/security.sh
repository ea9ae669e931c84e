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
echo "security: ok"
