# Ad-hoc servers (start NAME [--health PATH|tcp] -- CMD): a server without /health becomes ready
# through --health, and a running ad-hoc server is used by its name like a configured model
# (start prints its URL, chat, exec, restart in its own directory, logs, stop). A configured
# model's name, or another command under a running ad-hoc name, is a usage error.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"' 'startup_timeout = "20s"'
mock_model echo
pid_of() { ps_field "$1" pid; }

# 1. The man page's example: python's http.server answers / (not /health): --health /.
expect_rc 0 llmctl start web --health / -- python3 -m http.server {port} --bind {host}
url=$OUT
curl -sf "$url/" >/dev/null || fail "web does not answer at $url"
expect_rc 0 llmctl start web
[ "$OUT" = "$url" ] || fail "start web (by name) printed $OUT, want $url"
expect_rc 2 llmctl start web -- python3 -m http.server {port}
echo "$ERR" | grep -q "web already runs another command: python3 -m http.server {port} --bind {host}" || fail "another command: $ERR"
expect_rc 0 llmctl start web --health / -- python3 -m http.server {port} --bind {host}   # the same: its URL
[ "$OUT" = "$url" ] || fail "the same command again: $OUT"

# 2. --health tcp: a server with no HTTP at all is ready once its port accepts.
raw='import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); time.sleep(600)'
expect_rc 0 llmctl start raw --health tcp -- python3 -c "$raw" {host} {port}
expect_rc 0 llmctl ps --health
echo "$OUT" | grep -E "^raw +running .* ok +http" >/dev/null || fail "ps --health of a tcp server: $OUT"

# 3. An ad-hoc mock by name: chat, exec, logs, restart (its command, in the directory it was
#    started from, whatever the current one), stop.
mkdir -p "$T/proj"
cp "$MOCK_BIN" "$T/proj/srv"
(cd "$T/proj" && "$LLMCTL_BIN" start adm -- ./srv --port {port}) >/dev/null || fail "start adm from its directory"
expect_rc 0 llmctl chat adm "hello adm"
[ "$OUT" = "hello adm" ] || fail "chat adm: $OUT"
expect_rc 0 llmctl exec adm -- sh -c 'curl -sf "$LLMCTL_URL/health"'
expect_rc 0 llmctl logs adm -n 5
echo "$OUT" | grep -q "request POST /v1/chat/completions 200" || fail "logs adm: $OUT"
old=$(pid_of adm)
expect_rc 0 llmctl restart adm
new=$(pid_of adm)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "restart adm: pid $old -> $new"
[ "$(readlink "/proc/$new/cwd")" = "$T/proj" ] || fail "restart ran adm in $(readlink "/proc/$new/cwd"), not $T/proj"
expect_rc 0 llmctl stop adm
[ -z "$(pid_of adm)" ] || fail "stop adm left it"

# 4. A configured model's name is not an ad-hoc name.
expect_rc 2 llmctl start echo -- python3 -m http.server {port}
echo "$ERR" | grep -q '"echo" is a model of .*: an ad-hoc server needs a name of its own' || fail "start echo -- other: $ERR"
[ -z "$(pid_of echo)" ] || fail "start echo -- other started something"
expect_rc 2 llmctl start echo --health /x
# A failed ad-hoc command does not hold its name: the corrected one starts.
expect_rc 5 llmctl start typo -- python3 -m http.server {port} --bind {host} --no-such-flag
expect_rc 0 llmctl start typo --health / -- python3 -m http.server {port} --bind {host}
expect_rc 2 llmctl start bad --health x -- true
llmctl stop --all -q
[ -z "$(marked)" ] || fail "left $(marked)"
echo "adhoc: ok"
