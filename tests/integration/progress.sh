# start's status line: on a terminal (a pty from script(1)) a spinner, the elapsed time and the
# server's last log line; NO_COLOR keeps the spinner without colour codes; -q and a pipe get
# neither; the URL is printed either way.
. "$TEST_LIB"
mock_config
mock_model slow --startup-delay 600ms
url_re="http://127\.0\.0\.1:$PORT_BASE"
# on_tty CMD...: runs CMD with stdin/stdout/stderr on a pseudo-terminal; output in $T/tty.
on_tty() { script -qec "$(printf '%q ' "$@")" /dev/null >"$T/tty" </dev/null; }

LANG=C.UTF-8 on_tty "$LLMCTL_BIN" start slow
grep -q "starting slow [0-9]*\.[0-9]s" "$T/tty" || fail "no elapsed time on the tty: $(cat -v "$T/tty")"
grep -q "⠋" "$T/tty" || fail "no spinner on the tty"
grep -q "request GET /health 503" "$T/tty" || fail "no log line on the tty"
grep -q $'\e\[2m' "$T/tty" || fail "no colour on a colour tty"
grep -q "$url_re" "$T/tty" || fail "no URL: $(cat -v "$T/tty")"
llmctl stop slow -q

NO_COLOR=1 LANG=C.UTF-8 on_tty "$LLMCTL_BIN" start slow
grep -q "starting slow" "$T/tty" || fail "NO_COLOR dropped the status line"
! grep -q $'\e' "$T/tty" || fail "escape codes with NO_COLOR: $(cat -v "$T/tty")"
llmctl stop slow -q

LANG=C on_tty "$LLMCTL_BIN" start slow
grep -q '[|/\\-] starting slow' "$T/tty" || fail "no ASCII spinner outside UTF-8: $(cat -v "$T/tty")"
llmctl stop slow -q

on_tty "$LLMCTL_BIN" -q start slow
! grep -q "starting slow" "$T/tty" || fail "status line despite -q"
grep -q "$url_re" "$T/tty" || fail "-q dropped the URL"
llmctl stop slow -q

expect_rc 0 llmctl start slow
[ "$OUT" = "http://127.0.0.1:$PORT_BASE" ] || fail "piped stdout: $OUT"
[[ "$ERR" != *$'\r'* && "$ERR" != *$'\e'* ]] || fail "control characters on a piped stderr: $(cat -v <<<"$ERR")"
llmctl stop slow -q
echo "progress: ok"
