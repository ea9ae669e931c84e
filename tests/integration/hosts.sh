# IPv6 and wildcard hosts give URLs a client can use, in start, ps and exec's variables; chat
# reaches them; a host that is not an IP address or localhost is a config error.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
mock_model six --host {host}
config_add 'host = "::1"'
mock_model bracketed --host {host}
config_add 'host = "[::1]"'
mock_model any4 --host {host}
config_add 'host = "0.0.0.0"'
mock_model any6 --host {host}
config_add 'host = "::"'
for m in six bracketed any4 any6; do
  expect_rc 0 llmctl start $m
  url=$OUT
  case $m in
    six | bracketed | any6) [[ $url == "http://[::1]:"* ]] || fail "$m: start printed $url" ;;
    any4) [[ $url == "http://127.0.0.1:"* ]] || fail "$m: start printed $url" ;;
  esac
  curl -sfg "$url/health" >/dev/null || fail "$m: $url does not answer"
  [ "$(ps_field $m url)" = "$url" ] || fail "$m: ps shows another URL"
  expect_rc 0 llmctl exec $m -- sh -c 'echo "$LLMCTL_URL $OPENAI_BASE_URL"'
  [ "$OUT" = "$url $url/v1" ] || fail "$m: exec's variables: $OUT"
  expect_rc 0 llmctl chat $m "hi $m"
  [ "$OUT" = "hi $m" ] || fail "$m: chat: $OUT"
done
expect_rc 0 llmctl ps --health
[ "$(echo "$OUT" | grep -c ' ok ')" = 4 ] || fail "ps --health: $OUT"
llmctl stop --all -q
for bad in "my host" "localhost:8080" "127.0.0.1:8080" "[127.0.0.1]" "example.com" ""; do
  printf '[models.x]\ncommand = ["x"]\nhost = "%s"\n' "$bad" >"$T/bad.toml"
  expect_rc 3 llmctl --config "$T/bad.toml" config check
  echo "$ERR" | grep -qF "bad.toml:3:8: \"host\" = \"$bad\" is not an IP address or \"localhost\"" || fail "host \"$bad\": $ERR"
done
# The Host header for an IPv6 server is [::1]:PORT (RFC 7230), and messages bracket it too: a
# server on ::1 that records the header and answers 400.
python3 - "$((PORT_BASE + 30))" "$T/host.hdr" >/dev/null 2>&1 <<'PY' &
import http.server, socket, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        open(sys.argv[2], "w").write(self.headers["Host"])
        body = b'{"error": {"message": "recorded", "type": "invalid_request_error"}}'
        self.send_response(400); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
class S(http.server.HTTPServer): address_family = socket.AF_INET6
S(("::1", int(sys.argv[1])), H).serve_forever()
PY
printf '[models.v6ext]\nurl = "http://[::1]:%d"\nmodel = "m"\n' $((PORT_BASE + 30)) >"$T/ext.toml"
wait_for 10 port_open $((PORT_BASE + 30)) ::1 || fail "the IPv6 recorder never listened"
expect_rc 1 llmctl --config "$T/ext.toml" chat v6ext "hi"
[ "$(cat "$T/host.hdr")" = "[::1]:$((PORT_BASE + 30))" ] || fail "Host header: $(cat "$T/host.hdr")"
printf '[models.v6ext]\nurl = "http://[::1]:%d"\nmodel = "m"\n' $((PORT_BASE + 31)) >"$T/ext.toml"  # nothing listens
expect_rc 5 llmctl --config "$T/ext.toml" chat v6ext "hi"
echo "$ERR" | grep -qF "http://[::1]:$((PORT_BASE + 31))/" || fail "the error names an unbracketed address: $ERR"
echo "hosts: ok"
